"""Safe destinations: outside the allow-list, a redirect and a private address are all refused (and recorded)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry

from collector.errors import ConfigError
from collector.store.clickhouse import Store
from collector.triggers.config import parse_trigger_config
from collector.triggers.deliver import Deliverer, DeliveryPolicy, retry_after_seconds
from collector.triggers.destinations import DestinationRefused, check_destination
from collector.triggers.metrics import TriggerMetrics
from collector.triggers.outbox import Outbox
from tests.triggers.conftest import SECRET
from tests.triggers.receiver import Receiver

WHEN = {"enters_stage": "purchase"}


def test_a_host_outside_the_allow_list_is_refused_at_start() -> None:
    """The file is checked at start: the error names the trigger and the host."""
    trigger = {"name": "t", "when": WHEN, "url": "https://evil.example.net/x", "secret": SECRET}
    with pytest.raises(ConfigError, match=r"trigger 't'.*'evil.example.net' is not in REISE_TRIGGER_HOSTS"):
        parse_trigger_config([trigger], [], hosts=("hooks.example.com",))
    assert parse_trigger_config([{**trigger, "url": "https://a.hooks.example.com/x"}], [],
                                hosts=("*.hooks.example.com",)).triggers
    with pytest.raises(DestinationRefused):
        check_destination("evil.example.net", ("hooks.example.com",), allow_private=True)


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "t", "when": WHEN, "url": "ftp://x/", "secret": SECRET}, "http"),
    ({"name": "t", "when": WHEN, "url": "https://h/", "secret": "short"}, "at least 16"),
    ({"name": "t", "when": {"enters_stage": "bought"}, "url": "https://h/", "secret": SECRET}, "expected a stage"),
    ({"name": "t", "when": {"enters_segment": "nope"}, "url": "https://h/", "secret": SECRET}, "no segment"),
    ({"name": "t", "when": {}, "url": "https://h/", "secret": SECRET}, "exactly one of"),
    ({"name": "t", "when": WHEN, "url": "https://h/", "secret": SECRET, "colour": 1}, "unknown field"),
    ({"name": "t", "when": WHEN, "url": "https://h/a b", "secret": SECRET}, "percent-encoded"),
    ({"name": "t", "when": WHEN, "url": "https://h/?q=\u00e9", "secret": SECRET}, "percent-encoded"),
])
def test_mistakes_in_the_file_are_named(entry: dict[str, object], message: str) -> None:
    """Each mistake is a ConfigError saying which field is wrong."""
    with pytest.raises(ConfigError, match=message):
        parse_trigger_config([entry], [], hosts=("h",))


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    """Both forms of Retry-After."""
    assert retry_after_seconds("7", 0) == 7
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", 40) == 60
    assert retry_after_seconds("soon", 0) is None


async def _deliver(store: Store, receiver: Receiver, url: str, *, allow_private: bool) -> list[dict[str, object]]:
    """Queue one transition to ``url`` and let a deliverer try it; the attempts recorded in ClickHouse."""
    host = url.split("/")[2].split(":")[0]
    config = parse_trigger_config([{"name": "safety", "when": WHEN, "url": url, "secret": SECRET}], [],
                                  hosts=(host,))
    outbox = Outbox(None)
    pool = ThreadPoolExecutor(max_workers=1)
    deliverer = Deliverer(config=config, outbox=outbox, store=store, metrics=TriggerMetrics(CollectorRegistry()),
                          policy=DeliveryPolicy(hosts=(host,), allow_private=allow_private, max_attempts=3,
                                                backoff=0.05), pool=pool)
    key = f"safety-{time.time_ns()}"
    items = outbox.commit_detection([(key, "safety", config.triggers[0].destination, "c", b'{"x": 1}')], {}, [], [])
    await deliverer.start()
    deliverer.add(items)
    for _ in range(100):
        await asyncio.sleep(0.05)
        if outbox.parked() or outbox.counts().get("delivered"):
            break
    await deliverer.close()
    pool.shutdown()
    return store.query("SELECT outcome, status, error FROM trigger_attempts WHERE idempotency_key = {k:String}",
                       {"k": key}).records()


async def test_a_redirect_is_not_followed(store: Store, receiver: Receiver) -> None:
    """A 302 is refused and parked at once; its Location is never requested."""
    receiver.status, receiver.headers = 302, {"Location": receiver.url + "/followed"}
    attempts = await _deliver(store, receiver, receiver.url + "/hook", allow_private=True)
    assert [r.path for r in receiver.received] == ["/hook"]
    assert [(a["outcome"], a["status"]) for a in attempts] == [("refused", 302)]
    assert "redirect refused" in str(attempts[0]["error"])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_address_is_refused_unless_allowed(store: Store, receiver: Receiver, host: str) -> None:
    """Loopback by address or by a name resolving to it: nothing is sent, the attempt says why."""
    attempts = await _deliver(store, receiver, f"http://{host}:{receiver.port}/hook", allow_private=False)
    assert receiver.received == []
    assert [a["outcome"] for a in attempts] == ["refused"]
    assert "private or loopback" in str(attempts[0]["error"])
    allowed = await _deliver(store, receiver, f"http://{host}:{receiver.port}/hook", allow_private=True)
    assert [a["outcome"] for a in allowed] == ["delivered"] and len(receiver.received) == 1
