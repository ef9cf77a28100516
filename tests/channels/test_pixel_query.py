"""The pixel's query split (query_params) reads a query as parse_qsl would: first value of a name, no blanks."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.ingest.pixels import MAX_PARAMS, query_params

names = st.sampled_from(["k", "uid", "e", "c", "mid", "x", ""])
values = st.text(alphabet="abz09-_.=", max_size=6)
fields = st.builds(lambda n, sep, v: f"{n}{sep}{v}", names, st.sampled_from(["=", ""]), values)


def _parse_qsl(raw: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=False, max_num_fields=MAX_PARAMS):
        params.setdefault(name, value)
    return params


@given(st.lists(fields, max_size=MAX_PARAMS).map("&".join))
def test_an_unescaped_query_reads_as_parse_qsl_reads_it(raw: str) -> None:
    assert query_params(raw) == _parse_qsl(raw)


def test_the_first_value_wins_and_blank_values_are_left_out() -> None:
    assert query_params("uid=a&uid=b&e=&e=open&c") == {"uid": "a", "e": "open"}
    assert query_params("uid=a%20b&uid=c") == {"uid": "a b"}  # escaped: parse_qsl itself


def test_too_many_fields_are_refused() -> None:
    assert len(query_params("&".join(f"f{n}=1" for n in range(MAX_PARAMS)))) == MAX_PARAMS
    for raw in ("&".join(["a=1"] * (MAX_PARAMS + 1)), "&".join(["a=%41"] * (MAX_PARAMS + 1))):
        with pytest.raises(ValueError):
            query_params(raw)
