"""Integers a peer sends are checked against what any store can hold (at most 2^63-1)."""

from __future__ import annotations

import json

import pytest

from chattycat.errors import RemoteProtocolError
from chattycat.protocol.fields import MAX_WIRE_INT
from chattycat.protocol.messages import parse_request


def _parse(obj: dict[str, object]) -> object:
    return parse_request(json.dumps(obj).encode())


@pytest.mark.parametrize("request_", [
    {"type": "history", "room": "lobby", "after": 2**63},
    {"type": "history", "room": "lobby", "before": 10**40},
    {"type": "hello", "name": "a", "protocol": 1, "resume": {"rooms": {"lobby": 2**63}}},
    {"type": "hello", "name": "a", "protocol": 2**64},
])
def test_integers_past_2_63_are_bad_requests(request_: dict[str, object]) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        _parse(request_)
    assert str(caught.value.code) == "bad_request"


def test_the_largest_wire_integer_is_accepted() -> None:
    query = _parse({"type": "history", "room": "lobby", "after": MAX_WIRE_INT})
    assert query.after == MAX_WIRE_INT  # type: ignore[attr-defined]
