"""Both JSON paths (orjson when installed, the standard library otherwise) agree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reise import _json

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                    st.floats(allow_nan=False, allow_infinity=False), st.text())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)), max_leaves=12)
SHARED: dict[str, Any] = {"library": {"name": "reise-python", "version": "0"}}


@settings(max_examples=300, deadline=None)
@given(event=st.text(), user=st.text(min_size=1), props=st.dictionaries(st.text(), values))
def test_stdlib_event_encoder_round_trips(event: str, user: str, props: dict[str, Any]) -> None:
    msg = {"type": "track", "event": event, "properties": props, "userId": user,
           "context": SHARED}
    try:
        data = _json.dumps_event_std(msg, SHARED, json.dumps(SHARED))
    except ValueError:  # lone surrogates cannot be UTF-8: the client turns this into
        return  # a ValidationError at the call
    assert json.loads(data) == msg
    if _json.backend == "orjson":
        assert json.loads(_json.dumps_event(msg, SHARED, "")) == msg


def test_non_finite_numbers_are_refused_by_the_stdlib_path() -> None:
    with pytest.raises(ValueError):
        _json.dumps_event_std({"properties": {"x": float("inf")}}, None, "")
