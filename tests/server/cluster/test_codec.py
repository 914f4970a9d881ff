"""Ops to script arguments and Redis replies back to the machine's values (no Redis).

A stream entry is built here the way the Lua scripts write it (the field
names of ``XADD`` in :mod:`chattycat.server.cluster.scripts`), as hiredis
hands it over: bytes everywhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message, Whisper
from chattycat.server.cluster import codec
from chattycat.server.cluster.ops import (
    Claim,
    Claimed,
    Publish,
    RemoteAccount,
    RemoteIn,
    RemoteJoin,
    RemoteMove,
    RemoteNick,
    RemoteOut,
    RemotePart,
    RemoteUser,
    RemoteWhisper,
    SendWhisper,
)
from chattycat.server.colors import PALETTE
from chattycat.server.effects import LoadHistory, Page, StoredAccount

pytestmark = pytest.mark.timeout(60)

RULES = codec.Settings("n1", grace_s=120.0, session_ttl_s=3600.0, window=1000,
                       whisper_window=500)


def b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def entry(entry_id: str, *fields: Any) -> list[Any]:
    return [b(entry_id), [b(f) for f in fields]]


def stored_entry(op: Publish, seq: int) -> list[Any]:
    """The stream entry the publish script writes for ``op`` (ARGV 2..8)."""
    args = codec.publish_args(op, RULES)
    return entry(f"0-{seq}", "f", args[1], "c", args[2], "t", args[3], "ts", args[4],
                 "i", args[5], "a", args[6], "s", args[7])


texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=50)
stamps = st.floats(min_value=0, max_value=4e9, allow_nan=False).map(lambda t: round(t, 3))


@given(texts, stamps, st.one_of(st.none(), st.text("abc123-", min_size=1, max_size=20)),
       st.booleans(), st.integers(1, 2**40))
def test_publish_args_round_trip_through_a_stream_entry(
        text: str, ts: float, msg_id: str | None, action: bool, seq: int) -> None:
    message = Message("lobby", 1, "ann", "#e06c75", text, ts, msg_id, action)
    op = Publish(7, message, "digest")
    args = codec.publish_args(op, RULES)
    assert args[0] == "lobby" and args[7] == "digest"
    assert args[8:] == [RULES.window, RULES.ttl_s]
    back = codec.decode_message("lobby", stored_entry(op, seq))
    assert back == Message("lobby", seq, "ann", "#e06c75", text, ts, msg_id, action)


def test_seq_of_reads_the_entry_id() -> None:
    assert codec.seq_of(b"0-42") == 42 and codec.seq_of("0-1") == 1


def _page(page: Page, reply_seqs: list[int], *, limit: int = 3,
          top: int = 9) -> tuple[int, list[int], bool]:
    read = LoadHistory(1, "lobby", page, 0, limit, top)
    entries = [entry(f"0-{s}", "f", "ann", "c", "#e06c75", "t", f"#{s}", "ts", "1.5")
               for s in reply_seqs]
    got_top, messages, truncated = codec.decode_page(read, [top, entries])
    return got_top, [m.seq for m in messages], truncated


def test_decode_page_orders_oldest_first() -> None:
    assert _page(Page.LATEST, [9, 8, 7]) == (9, [7, 8, 9], False)  # XREVRANGE
    assert _page(Page.BEFORE, [4, 3, 2]) == (9, [2, 3, 4], False)
    assert _page(Page.AFTER, [3, 4, 5]) == (9, [3, 4, 5], False)  # XRANGE


def test_decode_page_resume_marks_truncated() -> None:
    # The script reads limit + 1 newest-first: one too many means some were left out.
    assert _page(Page.RESUME, [9, 8, 7, 6], limit=3) == (9, [7, 8, 9], True)
    assert _page(Page.RESUME, [9, 8, 7], limit=3) == (9, [7, 8, 9], False)
    assert _page(Page.RESUME, [], limit=3, top=0) == (0, [], False)


def test_page_args() -> None:
    read = LoadHistory(3, "den", Page.RESUME, 12, 50, -1)
    assert codec.page_args(read) == ["den", "resume", 12, 50, -1]


def test_claim_args_and_reply() -> None:
    op = Claim(1, "ann", "Ann", "hd", "nd", "open", "#e06c75", ("#aaaaaa", "#bbbbbb"), 5.25,
               ("lobby", "dev"))
    assert codec.claim_args(op, RULES) == ["ann", "Ann", "n1", "hd", "nd", "open", "#e06c75",
                                           "#aaaaaa,#bbbbbb", 5.25, 120.0, 3_600_000,
                                           "lobby,dev", ",".join(PALETTE)]
    assert codec.decode_claimed([b"takeover", b"#e06c75", b"d", b"n2"]) == \
        Claimed("takeover", "#e06c75", "d", "n2")
    assert codec.decode_claimed([b"taken"]) == Claimed("taken")
    assert codec.decode_claimed([b"takeover", b"#e06c75", b"d", b"n2", [b"lobby", b"den"]]) == \
        Claimed("takeover", "#e06c75", "d", "n2", ("den", "lobby"))


def test_decode_whispered() -> None:
    whisper = Whisper("ann", "cat", "#e06c75", "psst", 9.0, "w1", False)
    op = SendWhisper(4, whisper, "cat", "digest")
    assert codec.decode_whispered(op, [b"new", b"n2", b"cat"]) == ("new", "n2", None)
    assert codec.decode_whispered(op, [b"gone"]) == ("gone", "", None)
    outcome, node, first = codec.decode_whispered(op, [b"again", b"Cat", b"3.5"])
    assert (outcome, node) == ("again", "")
    assert first == Whisper("ann", "Cat", "#e06c75", "psst", 3.5, "w1", False)


WHISPER = Whisper("ann", "cat", "#e06c75", "psst", 2.5, "w1", True)
ACCOUNT = StoredAccount("ann", "Ann", "scrypt$record", 7.0)

# Each kind as the scripts write it (see event(...) in scripts.py).
EVENTS = [
    (["k", "in", "node", "n2", "key", "cat", "n", "Cat", "c", "#aaaaaa"],
     RemoteIn("n2", "cat", "Cat", "#aaaaaa")),
    (["k", "move", "node", "n2", "key", "cat", "n", "Cat", "c", "#aaaaaa", "rooms", "lobby,den"],
     RemoteMove("n2", "cat", "Cat", "#aaaaaa", ("den", "lobby"))),
    (["k", "join", "node", "n2", "key", "cat", "room", "den", "ts", "4.5"],
     RemoteJoin("n2", "cat", "den", 4.5)),
    (["k", "part", "node", "n2", "key", "cat", "room", "den", "r", "part"],
     RemotePart("n2", "cat", "den", "part")),
    (["k", "out", "node", "n2", "key", "cat", "r", "disconnected"],
     RemoteOut("n2", "cat", "disconnected")),
    (["k", "nick", "node", "n2", "key", "cat", "n", "Kit", "c", "#aaaaaa"],
     RemoteNick("n2", "cat", "Kit", "#aaaaaa")),
    (["k", "wh", "node", "n1", "key", "cat", "to", "n2", "n", "cat", "f", "ann",
      "c", "#e06c75", "t", "psst", "ts", "2.5", "i", "w1", "a", "1"],
     RemoteWhisper("n1", "cat", "n2", WHISPER)),
    (["k", "acct", "node", "n3", "key", "ann", "v", codec.account_json(ACCOUNT)],
     RemoteAccount("n3", ACCOUNT)),
]


@pytest.mark.parametrize(("fields", "expected"), EVENTS, ids=[e[0][1] for e in EVENTS])
def test_decode_event_every_kind(fields: list[str], expected: Any) -> None:
    assert codec.decode_event(entry("1700000000000-0", *fields)) == expected


def test_decode_event_of_an_unknown_kind_is_none() -> None:
    assert codec.decode_event(entry("1-0", "k", "future", "node", "n9", "key", "x")) is None
    assert codec.decode_event(entry("1-0", "node", "n9")) is None


def test_a_move_event_without_rooms() -> None:
    fields = ["k", "move", "node", "n2", "key", "cat", "n", "Cat", "c", "#aaaaaa", "rooms", ""]
    assert codec.decode_event(entry("1-0", *fields)) == RemoteMove("n2", "cat", "Cat", "#aaaaaa")


def test_a_whisper_event_without_an_id() -> None:
    fields = ["k", "wh", "node", "n1", "key", "cat", "to", "n2", "n", "cat", "f", "ann",
              "c", "#e06c75", "t", "psst", "ts", "2.5", "i", "", "a", ""]
    event = codec.decode_event(entry("1-0", *fields))
    assert isinstance(event, RemoteWhisper)
    assert event.whisper.id is None and event.whisper.action is False


def test_decode_snapshot() -> None:
    record = json.dumps({"n": "Cat", "c": "#aaaaaa", "node": "n2", "d": "x"}).encode()
    reply = [b"5-0", [[b"cat", record, [b"lobby", b"den"]]],
             [b"ann", codec.account_json(ACCOUNT).encode()]]
    last, users, accounts = codec.decode_snapshot(reply)
    assert last == "5-0"
    assert users == [RemoteUser("cat", "Cat", "#aaaaaa", "n2", ("den", "lobby"))]
    assert accounts == [ACCOUNT]


def test_an_unreadable_account_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        codec.decode_account("ann", b"{not json")
    with pytest.raises(StoreError):
        codec.decode_account("ann", b'{"name": "Ann"}')
