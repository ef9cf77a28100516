"""The Snowplow tracker protocol, read as Snowplow's collector reads it, into Segment-shaped events.

A request carries tracker payloads: the query string of ``GET /i``, or the ``data`` list of a
``POST /com.snowplowanalytics.snowplow/tp2`` body (``payload_data`` schema). Each payload's ``e`` says what it
is: ``pv`` a page view (a ``page``: attributed from ``url``, ``refr`` and the URL's UTM fields), ``pp`` a page
ping (``Page Ping``, kept once per page view), ``se`` a structured event (its action is the event name), ``ue``
a self-describing event (named after its schema; ``ue_pr`` JSON or ``ue_px`` base64), ``tr`` a transaction
(``Order Completed`` with ``tr_tt`` as revenue and the request's ``ti`` items as products) and ``ti`` an item
sent without its transaction (``Order Item``). ``uid`` is the user id, ``duid`` (else ``tnuid``/``nuid``) the
anonymous id, ``tv`` the library, ``eid`` the idempotency key, ``dtm``/``ttm`` the time and ``stm`` the send
time (clock-skew correction). Contexts (``co``, ``cx``) are kept in ``properties.contexts``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from collector.errors import EventRejected, PayloadInvalid

__all__ = ["PAYLOAD_SCHEMA", "Payload", "decode_base64", "payloads_of_post", "to_events"]

PAYLOAD_SCHEMA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
WEB_PAGE_SCHEMA = "iglu:com.snowplowanalytics.snowplow/web_page/"
Payload = Mapping[str, Any]
_PLATFORM_CHANNELS = {"web": "web", "mob": "app", "app": "app", "tv": "app"}


def decode_base64(value: str, field: str) -> bytes:
    """Snowplow's base64 (URL-safe or standard, padding optional)."""
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EventRejected(f"{field}: not base64") from None


def _json(payload: Payload, plain: str, encoded: str) -> Any:
    """A JSON field sent plain (``ue_pr``, ``co``) or base64-encoded (``ue_px``, ``cx``); None when absent."""
    if payload.get(encoded):
        raw, field = decode_base64(str(payload[encoded]), encoded), encoded
    elif payload.get(plain):
        raw, field = str(payload[plain]).encode(), plain
    else:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise EventRejected(f"{field}: not JSON") from None


def payloads_of_post(body: bytes) -> list[Payload]:
    """The tracker payloads of a ``tp2`` POST body (PayloadInvalid when it is not one)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadInvalid(f"not JSON: {exc}") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise PayloadInvalid("expected a payload_data object: {\"schema\": ..., \"data\": [payload, ...]}")
    return data


def _time(payload: Payload, field: str) -> str | None:
    value = payload.get(field)
    if value in (None, ""):
        return None
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise EventRejected(f"{field}: expected milliseconds since 1970") from None
    if not math.isfinite(ms) or not 0 <= ms < 7.3e12:
        raise EventRejected(f"{field}: outside the years 1970 to 2200")
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _number(payload: Payload, field: str) -> float | None:
    value = payload.get(field)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EventRejected(f"{field}: not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise EventRejected(f"{field}: not a finite number")
    return number


def _schema_name(schema: Any) -> str:
    """``link_click`` of ``iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1``."""
    parts = schema.split("/") if isinstance(schema, str) else []
    return parts[1] if len(parts) >= 4 and schema.startswith("iglu:") else ""


def _library(tracker: str) -> dict[str, str]:
    platform, _, version = tracker.partition("-")
    return {"name": f"snowplow-{platform}" if version else "snowplow", "version": version or tracker}


def _contexts(payload: Payload) -> list[Any]:
    doc = _json(payload, "co", "cx")
    if doc is None:
        return []
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise EventRejected("co: expected a contexts object with a data list")
    return data


def _page_view_id(contexts: list[Any]) -> str:
    for context in contexts:
        if isinstance(context, dict) and str(context.get("schema", "")).startswith(WEB_PAGE_SCHEMA):
            data = context.get("data")
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                return str(data["id"])
    return ""


def _base(payload: Payload, ip: str, user_agent: str) -> dict[str, Any]:
    """What every event shares: ids, times, library, page, device and the properties Snowplow sends."""
    anonymous = payload.get("duid") or payload.get("tnuid") or payload.get("nuid") or ""
    context: dict[str, Any] = {"ip": payload.get("ip") or ip, "userAgent": payload.get("ua") or user_agent}
    if payload.get("tv"):
        context["library"] = _library(str(payload["tv"]))
    if payload.get("url") or payload.get("refr"):
        context["page"] = {"url": payload.get("url") or "", "referrer": payload.get("refr") or "",
                           "title": payload.get("page") or ""}
    if payload.get("lang"):
        context["locale"] = payload["lang"]
    properties = {name: payload[field] for field, name in (
        ("aid", "app_id"), ("p", "platform"), ("sid", "session_id"), ("vid", "session_index"),
        ("tnuid", "network_user_id"), ("nuid", "network_user_id"), ("tna", "tracker_namespace"))
        if payload.get(field)}
    event: dict[str, Any] = {"context": context, "properties": properties}
    if payload.get("eid"):
        event["messageId"] = payload["eid"]
    if payload.get("uid"):
        event["userId"] = payload["uid"]
    if anonymous:
        event["anonymousId"] = anonymous
    timestamp = _time(payload, "ttm") or _time(payload, "dtm")
    if timestamp:
        event["timestamp"] = timestamp
    sent = _time(payload, "stm")
    if sent and timestamp:
        event["sentAt"] = sent
    channel = _PLATFORM_CHANNELS.get(str(payload.get("p", "")))
    if channel:
        event["channel"] = channel
    return event


def _item(payload: Payload) -> dict[str, Any]:
    return {k: v for k, v in {"sku": payload.get("ti_sk"), "name": payload.get("ti_nm"),
                              "category": payload.get("ti_ca"), "price": _number(payload, "ti_pr"),
                              "quantity": _number(payload, "ti_qu")}.items() if v not in (None, "")}


def _event(payload: Any, items: Mapping[str, list[dict[str, Any]]], ip: str, user_agent: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise EventRejected("payload: expected an object of name-value pairs")
    kind = payload.get("e")
    event = _base(payload, ip, user_agent)
    properties = event["properties"]
    contexts = _contexts(payload)
    if contexts:
        properties["contexts"] = contexts
    if kind == "pv":
        event.update(type="page", name=payload.get("page") or "")
        event.pop("channel", None)  # a page view is attributed from its URL and referrer (web attribution)
    elif kind == "pp":
        view = _page_view_id(contexts)
        if view:  # one ping per page view: an engaged view, not a contact every few seconds
            event["messageId"] = f"pp:{view}"
        event.update(type="track", event="Page Ping")
        for field, name in (("pp_mix", "min_x"), ("pp_max", "max_x"), ("pp_miy", "min_y"), ("pp_may", "max_y")):
            if payload.get(field) not in (None, ""):
                properties[name] = _number(payload, field)
    elif kind == "se":
        if not payload.get("se_ac"):
            raise EventRejected("se_ac: a structured event needs its action")
        event.update(type="track", event=payload["se_ac"])
        properties.update({k: v for k, v in (("category", payload.get("se_ca")), ("label", payload.get("se_la")),
                                              ("property", payload.get("se_pr")), ("value", _number(payload, "se_va")))
                           if v not in (None, "")})
    elif kind == "ue":
        doc = _json(payload, "ue_pr", "ue_px")
        inner = doc.get("data") if isinstance(doc, dict) else None
        name = _schema_name(inner.get("schema")) if isinstance(inner, dict) else ""
        if not isinstance(inner, dict) or not name:
            field = "ue_px" if payload.get("ue_px") else "ue_pr"
            raise EventRejected(f"{field}: expected an unstruct_event with a data object naming its iglu schema")
        data = inner.get("data")
        event.update(type="track", event=name)
        properties.update(data if isinstance(data, dict) else {"data": data})
        properties["schema"] = inner["schema"]
    elif kind == "tr":
        if not payload.get("tr_id"):
            raise EventRejected("tr_id: a transaction needs its order id")
        event.update(type="track", event="Order Completed")
        properties.update({k: v for k, v in (
            ("order_id", payload["tr_id"]), ("revenue", _number(payload, "tr_tt")), ("currency", payload.get("tr_cu")),
            ("affiliation", payload.get("tr_af")), ("tax", _number(payload, "tr_tx")),
            ("shipping", _number(payload, "tr_sh")), ("city", payload.get("tr_ci")),
            ("products", items.get(str(payload["tr_id"])))) if v not in (None, "")})
    elif kind == "ti":
        event.update(type="track", event="Order Item")
        properties.update(_item(payload), transaction_id=payload.get("ti_id") or "",
                          currency=payload.get("ti_cu") or "")
    else:
        raise EventRejected(f"e: unknown Snowplow event type {str(kind)[:20]!r} (pv, pp, se, ue, tr, ti)")
    return event


def to_events(payloads: list[Any], *, ip: str, user_agent: str) -> list[tuple[Any, dict[str, Any] | str]]:
    """Each payload with its Segment-shaped event, or with the reason it cannot be read.

    Transaction items sent with their transaction (``ti`` and ``tr`` with the same order id in one request)
    become the transaction's products instead of events of their own.
    """
    transactions = {str(p.get("tr_id")) for p in payloads if isinstance(p, dict) and p.get("e") == "tr"}
    items: dict[str, list[dict[str, Any]]] = {}
    found: list[tuple[Any, dict[str, Any] | str]] = []
    for payload in payloads:
        if isinstance(payload, dict) and payload.get("e") == "ti" and str(payload.get("ti_id")) in transactions:
            try:
                items.setdefault(str(payload["ti_id"]), []).append(_item(payload))
            except EventRejected as exc:
                found.append((payload, exc.reason))
    for payload in payloads:
        if isinstance(payload, dict) and payload.get("e") == "ti" and str(payload.get("ti_id")) in transactions:
            continue
        try:
            found.append((payload, _event(payload, items, ip, user_agent)))
        except EventRejected as exc:
            found.append((payload, exc.reason))
    return found
