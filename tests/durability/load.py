"""Load for durability tests: batches posted from threads, remembering which events got a 2xx."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import Collector, basic

RECOUNT_SQL = """
SELECT count() FROM
(SELECT customer_id, contacts, purchases, revenue FROM customer_journey
 WHERE startsWith(customer_id, {p:String})) AS j
FULL OUTER JOIN
(SELECT if(m.customer_id != '', m.customer_id, t.journey_id) AS cid, count() AS c,
        countIf(t.stage_rank = 3) AS purchases, sum(t.revenue) AS revenue
 FROM touchpoints AS t LEFT JOIN identity_map AS m ON t.journey_id = m.anonymous_id
 WHERE t.type IN ('track', 'page', 'screen') AND startsWith(t.journey_id, {p:String})
 GROUP BY cid) AS r
ON j.customer_id = r.cid
WHERE j.contacts != r.c OR j.purchases != r.purchases OR j.revenue != r.revenue OR j.customer_id = ''
   OR r.cid = ''
"""


@dataclass
class Load:
    """Posts batches from several threads until told to stop; records acknowledged message ids."""

    collector: Collector
    batches: Sequence[list[dict[str, Any]]]
    threads: int = 4
    acked: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    retry_after: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0

    def _take(self) -> list[dict[str, Any]] | None:
        with self._lock:
            if self._next >= len(self.batches) or self.stop.is_set():
                return None
            self._next += 1
            return self.batches[self._next - 1]

    def _worker(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.collector.port, timeout=30)
        headers = {"Authorization": basic(self.collector.write_key), "Content-Type": "application/json"}
        while (batch := self._take()) is not None:
            try:
                connection.request("POST", "/v1/batch", json.dumps({"batch": batch}), headers)
                reply = connection.getresponse()
                body = reply.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.collector.port, timeout=30)
                continue
            with self._lock:
                self.statuses[reply.status] = self.statuses.get(reply.status, 0) + 1
                if reply.status == 200:
                    assert json.loads(body)["rejected"] == []
                    self.acked.update(e["messageId"] for e in batch)
                elif reply.status == 503:
                    self.retry_after.append(reply.getheader("Retry-After") or "")
        connection.close()

    def run(self) -> list[threading.Thread]:
        """Start the sender threads."""
        workers = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        return workers


def batches_of(events: Sequence[dict[str, Any]], size: int = 100) -> list[list[dict[str, Any]]]:
    """Events cut into batches."""
    return [list(events[i:i + size]) for i in range(0, len(events), size)]


def stored_once(collector: Collector, prefix: str) -> tuple[int, int, int]:
    """Rows, distinct message ids and message ids stored more than once, for one test's events."""
    row = collector.query(
        "SELECT count() AS n, uniqExact(message_id) AS ids,"
        " (SELECT count() FROM (SELECT message_id FROM touchpoints WHERE startsWith(message_id, {p:String})"
        "  GROUP BY message_id HAVING count() > 1)) AS doubled"
        " FROM touchpoints WHERE startsWith(message_id, {p:String})", {"p": prefix})[0]
    return int(row["n"]), int(row["ids"]), int(row["doubled"])


def missing(collector: Collector, prefix: str, acked: set[str]) -> set[str]:
    """Acknowledged message ids that are not in the store."""
    stored = {r["message_id"] for r in collector.query(
        "SELECT message_id FROM touchpoints WHERE startsWith(message_id, {p:String})", {"p": prefix})}
    return acked - stored
