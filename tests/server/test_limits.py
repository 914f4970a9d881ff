"""The state machine's bounds under abuse (docs/security.md): each one is hit here."""

from __future__ import annotations

from typing import Any

import pytest

from chattycat.protocol.messages import (
    Error,
    Hello,
    Join,
    Joined,
    Parted,
    Ping,
    Pong,
    Say,
    WhisperTo,
)
from chattycat.server.effects import Close, DropSession
from chattycat.server.idempotence import IdWindows, SentWhisper, WhisperWindows
from chattycat.server.memory_store import MemoryStore
from chattycat.server.sessions import SessionBook
from chattycat.server.state import ChatState, ConnState, Effect, RoomsConfig, Send
from tests.server.driving import Driven

pytestmark = pytest.mark.timeout(60)

T = 1_000.0


def machine(**config: Any) -> Driven:
    config.setdefault("flood_rate_per_s", 0.0)
    return Driven(ChatState(RoomsConfig(**config)), MemoryStore())


def codes(effects: list[Effect]) -> list[str]:
    return [e.frame.code for e in effects if isinstance(e, Send) and isinstance(e.frame, Error)]


def frames_of(effects: list[Effect], kind: type) -> list[Any]:
    return [e.frame for e in effects if isinstance(e, Send) and isinstance(e.frame, kind)]


def test_pings_over_their_own_bucket_are_dropped_unanswered() -> None:
    chat = machine(ping_rate_per_s=1.0, ping_burst=5)
    chat.connect(1, T)
    chat.receive(1, Hello("alice"), T)
    answered = [chat.receive(1, Ping(str(i)), T) for i in range(50)]
    assert sum(len(frames_of(e, Pong)) for e in answered) == 5
    assert chat.state_of(1) is ConnState.ACTIVE
    assert len(frames_of(chat.receive(1, Ping("later"), T + 1.0), Pong)) == 1


def test_malformed_pings_are_dropped_past_the_bucket_too() -> None:
    chat = machine(ping_rate_per_s=1.0, ping_burst=3)
    chat.connect(1, T)
    chat.receive(1, Hello("alice"), T)
    bad = b'{"type":"ping","token":[1]}'
    replies = [chat.receive_payload(1, bad, T) for _ in range(20)]
    assert sum(len(codes(r)) for r in replies) == 3


def test_a_few_failed_hellos_then_the_connection_is_closed() -> None:
    chat = machine(max_failed_hellos=3)
    chat.connect(1, T)
    for _ in range(3):
        effects = chat.receive_payload(1, b'{"type":"rooms"}', T)
        assert codes(effects) == ["hello_required"]
        assert chat.state_of(1) is ConnState.AWAITING_HELLO
    effects = chat.receive_payload(1, b'{"type":"hello","name":"bad name!","protocol":1}', T)
    assert codes(effects) == ["bad_name"]
    assert any(isinstance(e, Close) and e.conn == 1 for e in effects)
    assert chat.state_of(1) is ConnState.CLOSED


def test_join_beyond_the_room_limit_is_a_bad_request() -> None:
    chat = machine(max_rooms_per_user=3)
    chat.connect(1, T)
    chat.receive(1, Hello("alice"), T)  # lobby
    chat.receive(1, Join("a"), T)
    chat.receive(1, Join("b"), T)
    assert codes(chat.receive(1, Join("c"), T)) == ["bad_request"]
    assert codes(chat.receive(1, Join("b"), T)) == []  # already in: fine
    assert chat.members("c") == []


def test_a_resume_naming_too_many_rooms_fails_without_a_trace() -> None:
    chat = machine(max_rooms_per_user=3)
    chat.connect(1, T)
    chat.receive(1, Hello("bob"), T)
    chat.connect(2, T)
    effects = chat.receive(2, Hello("alice", resume={"lobby": 0, "a": 0, "b": 0, "c": 0}), T)
    assert codes(effects) == ["bad_request"]
    assert frames_of(effects, Joined) == [] and frames_of(effects, Parted) == []
    assert chat.user_names() == ["bob"] and chat.state_of(2) is ConnState.AWAITING_HELLO
    chat.disconnected(2, T)
    assert chat.members("lobby") == ["bob"]


def test_a_resume_is_charged_for_the_rooms_it_names() -> None:
    chat = machine(flood_rate_per_s=1.0, flood_burst=10)
    chat.connect(1, T)
    rooms = {f"r{i}": 0 for i in range(30)}
    effects = chat.receive(1, Hello("alice", resume=rooms), T)
    assert len(frames_of(effects, Joined)) == 30
    # 29 tokens of debt beyond the hello: the next requests wait about 20 s.
    assert codes(chat.receive(1, Join("more"), T + 5.0)) == ["rate_limited"]
    assert codes(chat.receive(1, Join("more"), T + 25.0)) == []


def test_parked_requests_are_bounded() -> None:
    chat = machine(max_parked_requests=4)
    chat.connect(1, T)
    chat.receive(1, Hello("alice"), T)
    conn = chat.machine._conns[1]
    conn.waiting = 999  # as if a store read were outstanding
    replies = [chat.receive(1, Say("lobby", f"m{i}"), T) for i in range(10)]
    assert len(conn.parked) == 4
    assert sum(codes(r).count("rate_limited") for r in replies) == 6


def test_whisper_window_keeps_no_text_and_answers_a_retry() -> None:
    chat = machine()
    chat.connect(1, T)
    chat.receive(1, Hello("alice"), T)
    chat.connect(2, T)
    chat.receive(2, Hello("bob"), T)
    first = chat.receive(1, WhisperTo("bob", "x" * 4000, "w-1"), T)
    retry = chat.receive(1, WhisperTo("bob", "x" * 4000, "w-1"), T + 1)
    sent = [e for e in retry if isinstance(e, Send)]
    assert len(sent) == 1 and sent[0].conns == (1,)
    assert sent[0].frame == next(e.frame for e in first if isinstance(e, Send))
    windows = chat.machine._messaging.whispers
    assert windows.get(chat.machine._directory.user("alice").session_key, "w-1") == \
        SentWhisper("bob", sent[0].frame.ts)


def test_whisper_windows_are_bounded_per_session_and_in_total() -> None:
    windows = WhisperWindows(size=10, total=100)
    for session in range(50):
        for i in range(20):
            windows.remember(f"s{session}", f"w{i}", SentWhisper("bob", 1.0))
    assert windows.id_count() <= 100
    assert windows.get("s49", "w19") is not None and windows.get("s49", "w0") is None
    assert windows.get("s0", "w19") is None  # the least recently active went first
    windows.forget("s49")
    assert windows.get("s49", "w19") is None


def test_say_windows_are_bounded_in_total_least_recently_used_first() -> None:
    windows = IdWindows(size=10, total=50)
    for session in range(20):
        window = windows.load(f"s{session}", "lobby", [])
        for i in range(15):
            windows.remember(window, f"c{i}", i + 1)
    assert windows.id_count() <= 50
    assert windows.get("s19", "lobby") is not None
    assert windows.get("s0", "lobby") is None  # read from the store again if needed


def test_parked_sessions_are_bounded_the_longest_idle_go_first() -> None:
    writes: list[Any] = []
    book = SessionBook(3600.0, writes.append, max_parked=3)
    evicted = [book.park(f"u{i}", f"secret{i}", "#000000", T + i) for i in range(5)]
    assert book.parked_count() == 3
    assert [len(e) for e in evicted] == [0, 0, 0, 1, 1]
    assert DropSession("u0") in writes and DropSession("u1") in writes
    assert book.claim("u0", "secret0")[0] is None
    assert book.claim("u4", "secret4")[0] is not None


def test_hello_spam_leaves_a_bounded_number_of_sessions() -> None:
    chat = machine(max_sessions=20)
    for conn in range(1, 201):
        chat.connect(conn, T + conn)
        chat.receive(conn, Hello(f"u{conn}"), T + conn)
        chat.disconnected(conn, T + conn)
    assert chat.machine._sessions.parked_count() == 20
    assert len(chat.store.sessions()) == 20
