"""Arguments are validated at the call, in the caller's thread; nothing is queued then."""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import uuid
from collections.abc import Callable, Iterator
from typing import Any, get_type_hints

import pytest
import reise
from reise._ids import new_message_id
from reise.options import ClientOptions, Overflow

from .conftest import WRITE_KEY, FakeCollector


@pytest.fixture
def client(fake: FakeCollector) -> Iterator[reise.Client]:
    c = reise.Client(WRITE_KEY, fake.url, flush_interval=0.05)
    yield c
    c.shutdown(5)


def _circular() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


# The client is typed Any here: these calls break the signatures on purpose.
BAD_CALLS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("event missing", lambda c: c.track("u1"), "event must be a non-empty str"),
    ("event not str", lambda c: c.track("u1", 42), "event must be a non-empty str"),
    ("event empty", lambda c: c.track("u1", ""), "event must be a non-empty str"),
    ("no ids", lambda c: c.track(None, "E"), "user_id or anonymous_id is required"),
    ("user_id float", lambda c: c.track(1.5, "E"), "user_id must be"),
    ("user_id bool", lambda c: c.track(True, "E"), "user_id must be"),
    ("anon empty", lambda c: c.track(None, "E", anonymous_id=""), "anonymous_id must be"),
    ("properties list", lambda c: c.track("u", "E", [1, 2]), "properties must be a dict"),
    ("traits str", lambda c: c.identify("u", "x"), "traits must be a dict"),
    ("context str", lambda c: c.track("u", "E", context="x"), "context must be a dict"),
    ("naive ts", lambda c: c.track("u", "E", timestamp=dt.datetime(2024, 1, 1)),
     "timezone-aware"),
    ("ts str", lambda c: c.track("u", "E", timestamp="2024-01-01"), "must be a datetime"),
    ("channel", lambda c: c.track("u", "E", channel="tv"), "channel must be one of"),
    ("stage", lambda c: c.track("u", "E", stage="love"), "stage must be one of"),
    ("message_id", lambda c: c.track("u", "E", message_id=5), "message_id must be"),
    ("not json", lambda c: c.track("u", "E", {"x": object()}), "not JSON-serialisable"),
    ("circular", lambda c: c.track("u", "E", _circular()), "not JSON-serialisable"),
    ("too large", lambda c: c.track("u", "E", {"x": "a" * 40_000}), "the limit is 32768"),
    ("alias no prev", lambda c: c.alias(None, "u"), "previous_id must be"),
    ("alias no user", lambda c: c.alias("a", None), "user_id is required"),
    ("revenue str", lambda c: c.purchase("o1", "12", "EUR", user_id="u"), "revenue must be"),
    ("revenue nan", lambda c: c.purchase("o1", float("nan"), "EUR", user_id="u"), "finite"),
    ("currency", lambda c: c.purchase("o1", 1, "EURO", user_id="u"), "currency must be"),
    ("items", lambda c: c.purchase("o1", 1, "EUR", items="x", user_id="u"), "items must"),
    ("item not dict", lambda c: c.purchase("o1", 1, "EUR", items=[1], user_id="u"),
     "items[] must be a dict"),
    ("purchase no ids", lambda c: c.purchase("o1", 1, "EUR"), "user_id or anonymous_id"),
    ("screen name", lambda c: c.screen("u", None, ["Basket"]), "name must be a str"),
    ("screen no ids", lambda c: c.screen(None, None, "Basket"), "user_id or anonymous_id"),
]


@pytest.mark.parametrize(("call", "message"), [(c, m) for _, c, m in BAD_CALLS],
                         ids=[n for n, _, _ in BAD_CALLS])
def test_bad_arguments_raise_at_the_call(client: reise.Client, call: Callable[[Any], Any],
                                         message: str) -> None:
    with pytest.raises(reise.ValidationError, match=message.replace("[", r"\[")):
        call(client)
    assert client.stats()["queued"] == 0


def test_validation_error_is_in_the_hierarchy() -> None:
    assert issubclass(reise.ValidationError, reise.ReiseError)
    assert issubclass(reise.ValidationError, ValueError)
    assert issubclass(reise.EventRejected, reise.DeliveryError)
    assert issubclass(reise.DeliveryError, reise.ReiseError)


@pytest.mark.parametrize("kwargs", [
    {"write_key": ""}, {"host": ""}, {"host": "ftp://x"}, {"overflow": "explode"},
    {"batch_bytes": 600_000}, {"channel": "tv"}, {"flush_interval": 0},
    {"on_error": "not callable"}, {"spool_sync": "sometimes"},
])
def test_bad_options_raise_configuration_error(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"write_key": WRITE_KEY, "host": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(reise.ConfigurationError):
        reise.Client(args.pop("write_key"), args.pop("host"), **args)


def test_accepted_oddities_are_normalised(client: reise.Client, fake: FakeCollector) -> None:
    mid = client.purchase(1001, decimal.Decimal("19.90"), "eur", user_id=4711)
    client.track("u", "E", {"when": dt.date(2024, 5, 1), "id": uuid.UUID(int=1),
                            "tags": {"a"}, "amount": decimal.Decimal("1.5")})
    assert client.flush(10)
    ev = fake.events[mid]
    assert ev["userId"] == "4711"
    assert ev["properties"]["order_id"] == "1001"
    assert ev["properties"]["revenue"] == 19.9
    assert ev["properties"]["currency"] == "EUR"
    other = next(e for e in fake.events.values() if e["event"] == "E")
    assert other["properties"] == {"when": "2024-05-01", "id": str(uuid.UUID(int=1)),
                                   "tags": ["a"], "amount": 1.5}


def test_message_ids_are_uuid4_and_distinct() -> None:
    ids = {new_message_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for mid in list(ids)[:100]:
        u = uuid.UUID(mid)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == mid


def test_client_options_type_names_every_keyword_option_of_client() -> None:
    """``ClientOptions`` (what AsyncClient's ``**options`` is checked against) matches Client's keywords."""
    parameters = inspect.signature(reise.Client.__init__).parameters.values()
    keywords = {p.name: p.annotation for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords.keys() == ClientOptions.__annotations__.keys()
    assert get_type_hints(ClientOptions)["overflow"] == Overflow
