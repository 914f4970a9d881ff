"""to_payload (orjson, with the standard library behind it) writes what the
standard library alone would: the same bytes, or for floats in exponent form
the same JSON value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.protocol.codec import to_payload
from chattycat.protocol.messages import Frame, Joined, Member, Roster
from tests.strategies import EVENT_STRATEGIES, REQUEST_STRATEGIES

STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {**REQUEST_STRATEGIES, **EVENT_STRATEGIES}


def stdlib_payload(frame: Frame) -> bytes:
    return json.dumps(frame.to_dict(), separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


@settings(max_examples=60, deadline=None)
@pytest.mark.parametrize("kind", list(STRATEGIES), ids=lambda c: c.__name__)
@given(data=st.data())
def test_payload_is_what_the_standard_library_writes(
    kind: type[Frame], data: st.DataObject
) -> None:
    frame = data.draw(STRATEGIES[kind])
    payload = to_payload(frame)
    expected = stdlib_payload(frame)
    if payload != expected:  # only a float's notation may differ (1e-05 / 1e-5)
        assert json.loads(payload) == json.loads(expected)
        assert b"e" in payload.lower()


def test_values_orjson_refuses_or_writes_as_null_take_the_standard_path() -> None:
    with pytest.raises(ValueError):
        to_payload(Joined(room="lobby", name="alice", color="#e06c75", ts=float("nan")))
    big = Roster("lobby", (Member("a", "#ffffff"),), ref=10**40)
    assert to_payload(big) == stdlib_payload(big)
    text = Roster("lobby", (Member("null", "#ffffff"),))
    assert to_payload(text) == stdlib_payload(text)
