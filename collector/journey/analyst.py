"""Read-only queries for analysts: through the collector (embedded store) or straight to a server."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from collector.errors import QueryRefused, StoreUnavailable
from collector.identity.rebuild import unlink as unlink_id
from collector.ingest.suppression import unsuppress as unsuppress_id
from collector.journey.forget import forget_person
from collector.journey.insights import Runner
from collector.keys import read_dev_admin_key
from collector.settings import ClientSettings, is_embedded
from collector.store.clickhouse import QueryResult, Store

__all__ = ["CUSTOMER_SQL", "LINKS_SQL", "TIMELINE_SQL", "CustomerView", "forget", "look_up_customer", "post_admin",
           "run_query", "unlink", "unsuppress"]

# customer_journey_of(id = {id:String}) written out: the same rows (the id's key, itself when no link maps it), a
# quarter less time, since the engine analyses a parameterised view's body a second time (bench/README.md,
# journey_scale.py)
CUSTOMER_SQL = """
SELECT * FROM customer_journey
WHERE customer_id = (
    SELECT if(count() = 0, {id:String}, argMax(customer_id, version)) FROM identity_keys WHERE journey_id = {id:String})
"""

TIMELINE_SQL = """
SELECT timestamp, channel, type, event, stage, journey_id AS via_id, revenue, campaign, store_id
FROM touchpoints
WHERE journey_id IN {ids:Array(String)}
ORDER BY timestamp, message_id
LIMIT 1000
"""

# The links from or to any of the ids: the links from them by identity_links' key, those to them (from another id)
# by its bloom filter on customer_id (migration 0020); an OR of the two would read the whole table
LINKS_SQL = """
SELECT anonymous_id, customer_id, linked_at, toString(source) AS source
FROM
(
    SELECT anonymous_id, customer_id, linked_at, source
    FROM identity_links
    WHERE anonymous_id IN {ids:Array(String)}
    UNION ALL
    SELECT anonymous_id, customer_id, linked_at, source
    FROM identity_links
    WHERE customer_id IN {ids:Array(String)} AND anonymous_id NOT IN {ids:Array(String)}
)
ORDER BY linked_at, anonymous_id
LIMIT 1000
"""


@dataclass(frozen=True)
class CustomerView:
    """One customer's merged journey (one row), their touchpoints in order and, when asked, identity links."""

    journey: QueryResult
    timeline: QueryResult
    links: QueryResult | None


def look_up_customer(run: Runner, customer_id: str, *, with_links: bool = False) -> CustomerView | None:
    """A customer by id or by any id merged into them; None when there is none."""
    journey = run(CUSTOMER_SQL, {"id": customer_id})
    if not journey.rows:
        return None
    ids = list(journey.records()[0]["ids"])
    return CustomerView(journey, run(TIMELINE_SQL, {"ids": ids}),
                        run(LINKS_SQL, {"ids": ids}) if with_links else None)


def run_query(settings: ClientSettings, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
    """Run one read-only query the way this deployment allows."""
    if not is_embedded(settings.dsn):
        store = Store(dsn=settings.reader_dsn)
        try:
            return store.query_readonly(sql, params, limits=settings.query_limits)
        finally:
            store.close()
    return _query_collector(settings, sql, params or {})


def _query_collector(settings: ClientSettings, sql: str, params: Mapping[str, Any]) -> QueryResult:
    doc = post_admin(settings, "/v1/query", {"sql": sql, "params": dict(params)},
                     key=settings.read_key or None)
    return QueryResult(doc["columns"], doc["types"], [tuple(r) for r in doc["rows"]])


def post_admin(settings: ClientSettings, path: str, body: Mapping[str, Any], *, key: str | None = None) -> Any:
    """POST JSON to one of the collector's endpoints with ``key`` (else the admin key); the parsed answer."""
    admin_key = key or settings.admin_key or read_dev_admin_key(settings)
    if not admin_key:
        raise QueryRefused("no key: set REISE_READ_KEY (to read) or REISE_ADMIN_KEY")
    request = urllib.request.Request(
        settings.url.rstrip("/") + path,
        data=json.dumps(dict(body)).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{admin_key}:".encode()).decode(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.query_timeout + settings.drain_timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            reason = exc.reason
        raise QueryRefused(f"{reason} (HTTP {exc.code})") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise StoreUnavailable(f"cannot reach the collector at {settings.url}: {exc}") from None


def _admin(settings: ClientSettings, path: str, body: Mapping[str, Any],
           direct: Callable[[Store], dict[str, Any]]) -> Any:
    """An admin operation: through the collector's endpoint (embedded store), or straight on a server.

    ``direct`` returns the endpoint's answer, so both ways give the same dict.
    """
    if is_embedded(settings.dsn):
        return dict(post_admin(settings, path, body))
    store = Store(dsn=settings.dsn)
    try:
        return direct(store)
    finally:
        store.close()


def forget(settings: ClientSettings, customer_id: str, *, suppress: bool = False) -> dict[str, Any]:
    """Forget a person by any of their ids (see journey.forget); ``suppress``: keep their later events out.

    Straight on a server, the collectors' memory of recent message ids is not cleared and they see the
    suppression at their next reload (REISE_SUPPRESSION_RELOAD); see docs/security.md.
    """
    return dict(_admin(settings, "/v1/admin/forget", {"customer_id": customer_id, "suppress": suppress},
                       lambda store: forget_person(store, customer_id, suppress=suppress).answer()))


def unsuppress(settings: ClientSettings, id_: str) -> dict[str, Any]:
    """Lift the suppression of an id and of the ids suppressed with it (see ingest.suppression)."""
    return dict(_admin(settings, "/v1/admin/unsuppress", {"id": id_},
                       lambda store: asdict(unsuppress_id(store, id_))))


def unlink(settings: ClientSettings, id_: str) -> dict[str, Any]:
    """Undo a wrong link (see identity.rebuild)."""
    return dict(_admin(settings, "/v1/admin/unlink", {"id": id_}, lambda store: asdict(unlink_id(store, id_))))
