"""Conformance of the running server to PROTOCOL.md, section by section, over real sockets.

Each test is one rule of the spec, written from PROTOCOL.md with the raw
client in ``tests/wire.py``. Most run an in-process server (``chat_server``);
those that need a command-line option or a signal run ``chattycat serve``
(``server_process``).
"""

from __future__ import annotations

import re
import signal
import socket
import struct
import threading
import time
from typing import Any

import pytest

from chattycat.protocol.messages import Message
from chattycat.server.effects import StoredSession
from chattycat.server.sessions import new_secret, secret_digest
from chattycat.server.sqlite_store import SQLiteStore
from tests.conftest import FakeClock, InProcessServer, StartInProcess, StartServer
from tests.wire import ConnectionClosed, Frame, WireClient, frame_bytes

COLOR_RE = re.compile(r"#[0-9a-f]{6}")


@pytest.fixture
def server(chat_server: StartInProcess) -> InProcessServer:
    """An in-process server with the quiet defaults (no flood control, no heartbeat)."""
    return chat_server()


def alive(client: WireClient) -> None:
    """Assert the connection is still open and in sync: a ping gets its pong."""
    client.send({"type": "ping", "token": "still-there"})
    assert client.recv_until("pong")["token"] == "still-there"


def say_and_ack(client: WireClient, room: str, text: str, **extra: Any) -> Frame:
    """Send a say and return its acknowledgement (the sender's own message copy)."""
    client.say(room, text, **extra)
    return client.recv_until("message", where=lambda f: f["room"] == room and f["text"] == text)


def history_messages(frames: list[Frame], room: str) -> list[Frame]:
    """Messages of every ``history`` part for ``room`` in ``frames``, in order."""
    return [m for f in frames if f["type"] == "history" and f["room"] == room
            for m in f["messages"]]


def fetch_history(client: WireClient, room: str, **query: Any) -> list[Frame]:
    """Send a history query and collect all its parts."""
    client.send({"type": "history", "room": room, "ref": "h", **query})
    frames = client.recv_all_until("history", where=lambda f: not f.get("more"))
    return history_messages([f for f in frames if f.get("ref") == "h"], room)


def fill_room(room: str, count: int, *, text: str = "message {seq}") -> Any:
    """A ``prepare`` callback that stores ``count`` messages in ``room`` directly."""

    def prepare(store: SQLiteStore) -> None:
        start = store.last_seq(room)
        for seq in range(start + 1, start + count + 1):
            store.add(Message(room, seq, "filler", "#e06c75", text.format(seq=seq), time.time()))

    return prepare


# ---------------------------------------------------------------------------
# 1. Transport and framing


def test_header_over_max_frame_gets_frame_too_large_then_close(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(max_frame=1024)
    watcher = server.user("watcher")
    client = server.user("alice")
    watcher.recv_until("joined")
    client.send_raw(struct.pack(">I", 1025))
    frames = client.expect_eof()
    assert [f["code"] for f in frames if f["type"] == "error"] == ["frame_too_large"]
    assert watcher.recv_until("parted")["reason"] == "disconnected"


def test_frame_of_exactly_max_frame_is_accepted(chat_server: StartInProcess) -> None:
    server = chat_server(max_frame=1024)
    client = server.user("alice")
    base = b'{"type":"ping","token":"full","pad":"%s"}'
    payload = base % (b"x" * (1024 - len(base) + 2))
    assert len(payload) == 1024
    client.send_payload(payload)
    assert client.recv()["type"] == "pong"


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe{}", b"not json", b"[1, 2]", b'"type"', b'{"room": "lobby"}', b'{"type": 3}',
     b""],
    ids=["not-utf8", "not-json", "array", "string", "no-type", "type-not-string", "empty"],
)
def test_malformed_payload_gets_bad_frame_and_connection_stays_open(
    server: InProcessServer, payload: bytes
) -> None:
    client = server.user("alice")
    client.send_payload(payload)
    error = client.recv()
    assert (error["type"], error["code"]) == ("error", "bad_frame")
    assert isinstance(error["message"], str)
    alive(client)


def test_malformed_payload_before_hello_gets_bad_frame(server: InProcessServer) -> None:
    client = server.connect()
    client.send_payload(b"{oops")
    assert client.recv()["code"] == "bad_frame"
    client.hello("alice")


def test_frames_split_into_single_bytes_are_reassembled(server: InProcessServer) -> None:
    client = server.connect()
    data = b"".join(
        frame_bytes(p) for p in (b'{"type":"hello","name":"bytewise","protocol":1}',
                                 b'{"type":"ping","token":"b"}')
    )
    for i in range(len(data)):
        client.send_raw(data[i : i + 1])
    assert client.recv()["type"] == "welcome"
    assert client.recv_until("pong")["token"] == "b"


def test_many_frames_in_one_write_are_all_answered(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send_raw(b"".join(frame_bytes(b'{"type":"ping","token":%d}' % i) for i in range(50)))
    assert [client.recv()["token"] for _ in range(50)] == list(range(50))


def test_unknown_type_gets_unknown_type_with_ref(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "dance", "ref": "d1"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("unknown_type", "d1")
    alive(client)


@pytest.mark.parametrize(
    ("request_", "ref"),
    [
        ({"type": "join"}, "r-1"),
        ({"type": "join", "room": 5}, 7),
        ({"type": "say", "room": "lobby"}, "no-text"),
        ({"type": "say", "room": "lobby", "text": ["x"]}, 0),
        ({"type": "history", "room": "lobby", "limit": 501}, "limit"),
        ({"type": "history", "room": "lobby", "limit": 0}, 99),
        ({"type": "history", "room": "lobby", "after": -1}, "neg"),
        ({"type": "say", "room": "lobby", "text": "x", "action": "yes"}, "a" * 64),
        ({"type": "ping", "token": {"a": 1}}, 12345678901),
    ],
    ids=["missing-room", "room-not-string", "missing-text", "text-not-string",
         "limit-too-big", "limit-zero", "after-negative", "action-not-bool", "token-object"],
)
def test_bad_member_gets_bad_request_echoing_ref(
    server: InProcessServer, request_: Frame, ref: str | int
) -> None:
    client = server.user("alice")
    client.send({**request_, "ref": ref})
    error = client.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "bad_request", ref)
    alive(client)


def test_unknown_extra_members_are_ignored(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "ping", "token": "t", "future": {"nested": [1, 2]}, "flag": True})
    assert client.recv()["type"] == "pong"
    message = say_and_ack(client, "lobby", "hi", colour="ignored")
    assert message["seq"] == 1


def test_ref_is_echoed_on_every_direct_reply(server: InProcessServer) -> None:
    client = server.connect()
    client.send({"type": "hello", "name": "alice", "protocol": 1, "ref": "h"})
    assert client.recv()["ref"] == "h"
    client.recv_until("history")
    client.send({"type": "join", "room": "dev", "ref": 41})
    frames = client.recv_all_until("history")
    assert [(f["type"], f.get("ref")) for f in frames] == [
        ("joined", None), ("roster", 41), ("history", 41)]
    for request, reply in [({"type": "who", "room": "dev"}, "roster"),
                           ({"type": "rooms"}, "room_list"),
                           ({"type": "history", "room": "dev"}, "history"),
                           ({"type": "ping", "token": "p"}, "pong")]:
        client.send({**request, "ref": f"ref-{reply}"})
        answer = client.recv()
        assert (answer["type"], answer["ref"]) == (reply, f"ref-{reply}")


def test_ref_longer_than_64_characters_is_bad_request(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "ping", "ref": "r" * 65})
    assert client.recv()["code"] == "bad_request"


def test_join_history_over_max_frame_is_split_with_more(server_process: StartServer) -> None:
    proc = server_process("--max-frame", "1024", "--flood-rate", "0", "--heartbeat", "0")
    writer = proc.connect()
    assert writer.hello("writer")["max_frame"] == 1024
    for i in range(60):
        writer.say("lobby", f"{i:03d} " + "x" * 150, id=f"w{i}")
    writer.recv_until("message", where=lambda f: f["seq"] == 60)
    reader = proc.connect()
    reader.hello("reader")
    parts = [f for f in reader.join_frames if f["type"] == "history"]
    assert len(parts) > 1
    assert all(f["_size"] <= 1024 for f in parts)
    assert [bool(f.get("more")) for f in parts] == [True] * (len(parts) - 1) + [False]
    assert {f["room"] for f in parts} == {"lobby"}
    assert [m["seq"] for m in history_messages(parts, "lobby")] == list(range(11, 61))


def test_roster_over_max_frame_is_split_with_more(server_process: StartServer) -> None:
    proc = server_process("--max-frame", "1024", "--flood-rate", "0", "--heartbeat", "0")
    names = [f"user{i:02d}-" + "n" * 24 for i in range(30)]
    for name in names:
        proc.connect().hello(name)
    client = proc.connect()
    client.hello("zz-last")
    client.send({"type": "who", "room": "lobby", "ref": "w"})
    parts = client.recv_all_until("roster", where=lambda f: not f.get("more"))
    parts = [f for f in parts if f["type"] == "roster"]
    assert len(parts) > 1
    assert all(f["_size"] <= 1024 and f["ref"] == "w" for f in parts)
    assert [bool(f.get("more")) for f in parts] == [True] * (len(parts) - 1) + [False]
    assert [m["name"] for f in parts for m in f["members"]] == [*names, "zz-last"]


def test_history_frame_holding_a_near_max_frame_message_stays_within_max_frame(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(max_frame=1024)
    writer = server.user("writer")
    # Grow the text until the server refuses it: the last accepted one has a
    # message frame as close to max_frame as the server allows.
    largest = None
    for length in range(600, 1024, 4):
        writer.say("lobby", "x" * length, ref=length)
        reply = writer.recv()
        if reply["type"] == "error":
            break
        largest = reply
    assert largest is not None
    reader = server.user("reader")
    sizes = [f["_size"] for f in reader.join_frames if f["type"] == "history"]
    assert max(sizes) <= 1024


def test_error_for_a_long_unknown_type_stays_within_max_frame(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(max_frame=1024)
    client = server.user("alice")
    client.send({"type": "x" * 990})
    error = client.recv()
    assert error["code"] == "unknown_type"
    assert error["_size"] <= 1024


def test_room_list_stays_within_max_frame(chat_server: StartInProcess) -> None:
    server = chat_server(max_frame=1024)
    client = server.user("alice")
    for i in range(40):
        client.send({"type": "join", "room": f"room{i:02d}" + "r" * 26})
        client.recv_until("history")
    client.send({"type": "rooms"})
    frames = client.recv_all_until("room_list", where=lambda f: not f.get("more"))
    assert all(f["_size"] <= 1024 for f in frames)


# ---------------------------------------------------------------------------
# 2. Names


@pytest.mark.parametrize(
    "name", ["", "a" * 33, "al ice", "ålice", "alice!", "al.ice"],
    ids=["empty", "too-long", "space", "non-ascii", "bang", "dot"],
)
def test_hello_with_invalid_name_gets_bad_name(server: InProcessServer, name: str) -> None:
    client = server.connect()
    client.send({"type": "hello", "name": name, "protocol": 1, "ref": 3})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("bad_name", 3)


def test_names_of_32_allowed_characters_are_accepted(server: InProcessServer) -> None:
    name = "Az09_-" + "q" * 26
    assert server.user(name).welcome["name"] == name  # type: ignore[index]


def test_names_are_unique_case_insensitively(server: InProcessServer) -> None:
    server.user("alice")
    client = server.connect()
    client.send({"type": "hello", "name": "ALICE", "protocol": 1})
    assert client.recv()["code"] == "name_taken"


@pytest.mark.parametrize("room", ["", "Dev", "d" * 33, "de v", "dév", "dev!"])
def test_join_with_invalid_room_gets_bad_room(server: InProcessServer, room: str) -> None:
    client = server.user("alice")
    client.send({"type": "join", "room": room, "ref": "j"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("bad_room", "j")
    alive(client)


def test_room_names_of_32_allowed_characters_are_accepted(server: InProcessServer) -> None:
    client = server.user("alice")
    room = "az09_-" + "r" * 26
    client.send({"type": "join", "room": room})
    assert client.recv()["type"] == "joined"


def test_users_sharing_a_room_get_distinct_colors_while_the_palette_lasts(
    server: InProcessServer,
) -> None:
    colors = [server.user(f"user{i}").welcome["color"] for i in range(12)]  # type: ignore[index]
    assert all(COLOR_RE.fullmatch(c) for c in colors)
    assert len(set(colors)) == 12


def test_timestamps_are_server_set_epoch_seconds(server: InProcessServer) -> None:
    client = server.user("alice")
    before = time.time()
    message = say_and_ack(client, "lobby", "hi", ts=5)
    assert isinstance(message["ts"], int | float)
    assert before - 1 <= message["ts"] <= time.time() + 1


# ---------------------------------------------------------------------------
# 3. Session


@pytest.mark.parametrize(
    "request_",
    [{"type": "say", "room": "lobby", "text": "hi"}, {"type": "join", "room": "dev"},
     {"type": "ping"}, {"type": "rooms"}, {"type": "join"}, {"type": "dance"}],
    ids=["say", "join", "ping", "rooms", "malformed-join", "unknown-type"],
)
def test_any_other_type_before_hello_gets_hello_required(
    server: InProcessServer, request_: Frame
) -> None:
    client = server.connect()
    client.send({**request_, "ref": "early"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("hello_required", "early")
    client.hello("alice")


def test_failed_hello_may_be_retried_on_the_same_connection(server: InProcessServer) -> None:
    server.user("taken")
    client = server.connect()
    for hello, code in [({"name": "bad name", "protocol": 1}, "bad_name"),
                        ({"name": "TAKEN", "protocol": 1}, "name_taken"),
                        ({"name": "alice", "protocol": 2}, "unsupported_protocol")]:
        client.send({"type": "hello", **hello})
        assert client.recv()["code"] == code
    assert client.hello("alice")["name"] == "alice"


def test_second_hello_gets_bad_state(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "hello", "name": "bob", "protocol": 1, "ref": 2})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("bad_state", 2)
    alive(client)


def test_other_protocol_version_gets_unsupported_protocol(server: InProcessServer) -> None:
    client = server.connect()
    client.send({"type": "hello", "name": "alice", "protocol": 2})
    assert client.recv()["code"] == "unsupported_protocol"


def test_welcome_carries_every_member_then_the_default_room_is_joined(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(default_room="hall", max_frame=4096, heartbeat_s=30)
    client = server.connect()
    welcome = client.hello("alice")
    assert welcome["name"] == "alice"
    assert COLOR_RE.fullmatch(welcome["color"])
    assert welcome["protocol"] == 1
    assert re.fullmatch(r"chattycat/\S+", welcome["server"])
    assert isinstance(welcome["session"], str) and welcome["session"]
    assert (welcome["max_frame"], welcome["heartbeat"]) == (4096, 30)
    assert [(f["type"], f["room"]) for f in client.join_frames] == [
        ("joined", "hall"), ("roster", "hall"), ("history", "hall")]
    joined = client.join_frames[0]
    assert (joined["name"], joined["color"]) == ("alice", welcome["color"])


def test_connection_without_hello_is_closed_after_the_handshake_timeout(
    chat_server: StartInProcess,
) -> None:
    clock = FakeClock()
    server = chat_server(handshake_timeout_s=10.0, clock=clock)
    client = server.connect()
    client.send({"type": "ping", "token": "here"})  # the server has taken the connection
    assert client.recv()["code"] == "hello_required"
    clock.advance(9.75)
    server.call(server.server.tick)
    client.send({"type": "ping", "token": "still there?"})
    assert client.recv()["code"] == "hello_required"  # not closed yet
    clock.advance(0.25)
    server.call(server.server.tick)
    client.expect_eof(timeout_s=5)


def test_failed_hellos_do_not_extend_the_handshake_timeout(chat_server: StartInProcess) -> None:
    clock = FakeClock()
    server = chat_server(handshake_timeout_s=10.0, clock=clock)
    client = server.connect()
    client.send({"type": "ping", "token": "here"})  # the server has taken the connection
    assert client.recv()["code"] == "hello_required"
    for _ in range(5):
        clock.advance(2.0)
        client.send({"type": "hello", "name": "bad name", "protocol": 1})
        assert client.recv()["code"] == "bad_name"
    server.call(server.server.tick)
    client.expect_eof(timeout_s=5)


# ---------------------------------------------------------------------------
# 4. Rooms


def test_join_broadcasts_joined_then_sends_roster_and_history_to_the_joiner(
    server: InProcessServer,
) -> None:
    bob = server.user("bob")
    bob.send({"type": "join", "room": "dev"})
    bob.recv_until("history")
    alice = server.user("alice")
    alice.send({"type": "join", "room": "dev"})
    frames = alice.recv_all_until("history")
    assert [f["type"] for f in frames] == ["joined", "roster", "history"]
    assert frames[0]["name"] == "alice" and isinstance(frames[0]["ts"], int | float)
    assert [m["name"] for m in frames[1]["members"]] == ["alice", "bob"]
    assert all(COLOR_RE.fullmatch(m["color"]) for m in frames[1]["members"])
    joined = bob.recv_until("joined", where=lambda f: f["room"] == "dev")
    assert (joined["name"], joined["color"]) == ("alice", frames[0]["color"])
    bob.expect_no_frame()


def test_roster_is_sorted_by_name_case_insensitively(server: InProcessServer) -> None:
    for name in ["bob", "Dave", "alice", "Carol", "eve"]:
        server.user(name)
    client = server.user("Bea")
    roster = next(f for f in client.join_frames if f["type"] == "roster")
    assert [m["name"] for m in roster["members"]] == ["alice", "Bea", "bob", "Carol", "Dave",
                                                      "eve"]


def test_join_history_holds_the_50_most_recent_messages_oldest_first(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(prepare=fill_room("dev", 70))
    client = server.user("alice")
    client.send({"type": "join", "room": "dev"})
    messages = history_messages(client.recv_all_until("history"), "dev")
    assert [m["seq"] for m in messages] == list(range(21, 71))
    assert messages[0]["text"] == "message 21"


def test_joining_a_room_again_sends_only_roster_and_history(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    bob.recv_until("joined", where=lambda f: f["name"] == "alice")
    alice.send({"type": "join", "room": "lobby", "ref": "again"})
    frames = alice.recv_all_until("history")
    assert [f["type"] for f in frames] == ["roster", "history"]
    alice.expect_no_frame()
    bob.expect_no_frame()


def test_part_is_broadcast_to_every_member_including_the_leaver(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    bob.recv_until("joined", where=lambda f: f["name"] == "alice")
    alice.send({"type": "part", "room": "lobby"})
    expected = {"type": "parted", "room": "lobby", "name": "alice", "reason": "part"}
    for client in (alice, bob):
        parted = client.recv()
        parted.pop("_size")
        assert parted == expected
    alice.send({"type": "say", "room": "lobby", "text": "hi"})
    assert alice.recv()["code"] == "not_in_room"


def test_part_when_not_member_is_not_in_room(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "part", "room": "dev", "ref": "p"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("not_in_room", "p")


@pytest.mark.parametrize(
    ("leave", "reason"),
    [({"type": "quit"}, "quit"), ({"type": "quit", "reason": "gone fishing"}, "gone fishing"),
     (None, "disconnected")],
    ids=["quit", "quit-with-reason", "dropped"],
)
def test_end_of_connection_parts_every_room_with_its_reason(
    server: InProcessServer, leave: Frame | None, reason: str
) -> None:
    bob = server.user("bob")
    bob.send({"type": "join", "room": "dev"})
    alice = server.user("alice")
    alice.send({"type": "join", "room": "dev"})
    alice.recv_until("history")
    bob.recv_until("joined", where=lambda f: f["name"] == "alice" and f["room"] == "dev")
    if leave is None:
        alice.close()
    else:
        alice.send(leave)
        alice.expect_eof()
    parts = [bob.recv_until("parted") for _ in range(2)]
    assert sorted((p["room"], p["name"], p["reason"]) for p in parts) == [
        ("dev", "alice", reason), ("lobby", "alice", reason)]
    bob.expect_no_frame()


def test_who_answers_with_the_roster(server: InProcessServer) -> None:
    server.user("bob")
    client = server.user("alice")
    client.send({"type": "join", "room": "dev"})
    client.recv_until("history")
    client.send({"type": "who", "room": "lobby", "ref": 1})
    roster = client.recv()
    assert (roster["type"], roster["room"], roster["ref"]) == ("roster", "lobby", 1)
    assert [m["name"] for m in roster["members"]] == ["alice", "bob"]


def test_who_for_a_room_with_history_but_no_members_is_an_empty_roster(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(prepare=fill_room("archive", 3))
    client = server.user("alice")
    client.send({"type": "who", "room": "archive"})
    roster = client.recv()
    assert (roster["type"], roster["members"]) == ("roster", [])


def test_who_for_a_room_without_members_or_history_is_no_such_room(
    server: InProcessServer,
) -> None:
    client = server.user("alice")
    client.send({"type": "who", "room": "nowhere", "ref": "w"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("no_such_room", "w")


def test_rooms_lists_rooms_with_members_sorted_by_name(server: InProcessServer) -> None:
    alice = server.user("alice")
    bob = server.user("bob")
    for client, room in [(alice, "zoo"), (bob, "zoo"), (bob, "attic"), (alice, "empty")]:
        client.send({"type": "join", "room": room})
        client.recv_until("history")
    alice.send({"type": "part", "room": "empty"})
    alice.recv_until("parted")
    alice.send({"type": "rooms", "ref": "r"})
    room_list = alice.recv_until("room_list")
    assert room_list["rooms"] == [{"room": "attic", "members": 1}, {"room": "lobby", "members": 2},
                                  {"room": "zoo", "members": 2}]
    assert room_list["ref"] == "r"


# ---------------------------------------------------------------------------
# 5. Messages


def test_say_is_broadcast_to_every_member_including_the_sender(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    outsider = server.user("carol")
    outsider.send({"type": "part", "room": "lobby"})
    outsider.recv_until("parted", where=lambda f: f["name"] == "carol")
    bob.drain()
    alice.drain()
    for i in range(1, 4):
        alice.say("lobby", f"hello {i}", id=f"c-{i}")
    for client in (alice, bob):
        messages = [client.recv_until("message") for _ in range(3)]
        assert [m["seq"] for m in messages] == [1, 2, 3]
        first = messages[0]
        assert (first["room"], first["from"], first["text"], first["id"]) == (
            "lobby", "alice", "hello 1", "c-1")
        assert first["color"] == alice.welcome["color"]  # type: ignore[index]
        assert "action" not in first
    outsider.expect_no_frame()


def test_say_without_id_has_no_id_member(server: InProcessServer) -> None:
    client = server.user("alice")
    assert "id" not in say_and_ack(client, "lobby", "anonymous")


def test_action_marks_an_emote(server: InProcessServer) -> None:
    client = server.user("alice")
    assert say_and_ack(client, "lobby", "waves", action=True)["action"] is True


def test_seq_is_per_room(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "join", "room": "dev"})
    client.recv_until("history")
    assert say_and_ack(client, "lobby", "a")["seq"] == 1
    assert say_and_ack(client, "dev", "b")["seq"] == 1
    assert say_and_ack(client, "lobby", "c")["seq"] == 2


@pytest.mark.parametrize("length", [1, 4000])
def test_text_of_1_to_4000_characters_is_accepted(server: InProcessServer, length: int) -> None:
    client = server.user("alice")
    assert len(say_and_ack(client, "lobby", "é" * length)["text"]) == length


@pytest.mark.parametrize("text", ["", "x" * 4001], ids=["empty", "4001"])
def test_text_out_of_range_is_bad_request(server: InProcessServer, text: str) -> None:
    client = server.user("alice")
    client.send({"type": "say", "room": "lobby", "text": text, "ref": "t"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("bad_request", "t")


def test_id_longer_than_64_characters_is_bad_request(server: InProcessServer) -> None:
    client = server.user("alice")
    client.say("lobby", "hi", id="i" * 65)
    assert client.recv()["code"] == "bad_request"
    assert say_and_ack(client, "lobby", "ok", id="i" * 64)["seq"] == 1


def test_say_to_a_room_one_is_not_in_is_not_in_room(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "say", "room": "dev", "text": "hi", "ref": "s"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("not_in_room", "s")


def test_say_with_a_known_id_returns_the_original_to_the_sender_alone(
    server: InProcessServer,
) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    original = say_and_ack(alice, "lobby", "only once", id="c-17")
    bob.recv_until("message")
    alice.say("lobby", "only once (retry)", id="c-17")
    assert alice.recv() == original
    bob.expect_no_frame()
    assert say_and_ack(alice, "lobby", "next", id="c-18")["seq"] == original["seq"] + 1
    assert [m["id"] for m in fetch_history(alice, "lobby")] == ["c-17", "c-18"]


def test_idempotence_is_per_user_name(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    say_and_ack(alice, "lobby", "from alice", id="same")
    assert say_and_ack(bob, "lobby", "from bob", id="same")["seq"] == 2


def test_idempotence_covers_the_last_1000_ids(chat_server: StartInProcess) -> None:
    secret = new_secret()

    def prepare(store: SQLiteStore) -> None:
        # A session that sent 1001 messages before the server restarted.
        store.save_session(StoredSession("alice", secret_digest(secret), "#e06c75", False,
                                         time.time()))
        for seq in range(1, 1002):
            store.add(Message("lobby", seq, "alice", "#e06c75", f"m{seq}", time.time(),
                              f"id-{seq}"), secret_digest(secret))

    server = chat_server(prepare=prepare)
    alice = server.user("alice", session=secret)
    alice.say("lobby", "retry of the 1000th newest", id="id-2")
    assert alice.recv()["seq"] == 2
    alice.say("lobby", "too old to be recognised", id="id-1")
    assert alice.recv()["seq"] == 1002


def test_whisper_reaches_the_recipient_and_the_sender(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    carol = server.user("carol")
    bob.send({"type": "part", "room": "lobby"})  # whispers need no shared room
    bob.drain()
    alice.drain()
    carol.drain()
    alice.send({"type": "whisper", "to": "BOB", "text": "psst", "id": "c-18"})
    for client in (alice, bob):
        whisper = client.recv()
        assert whisper["type"] == "whisper"
        assert (whisper["from"], whisper["to"], whisper["text"], whisper["id"]) == (
            "alice", "bob", "psst", "c-18")
        assert whisper["color"] == alice.welcome["color"]  # type: ignore[index]
        assert isinstance(whisper["ts"], int | float)
    carol.expect_no_frame()
    alice.send({"type": "join", "room": "lobby"})
    assert fetch_history(alice, "lobby") == []


def test_whisper_to_an_unknown_user_is_no_such_user(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "whisper", "to": "nobody", "text": "hello?", "ref": "w"})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("no_such_user", "w")


def test_whisper_to_a_user_who_left_is_no_such_user(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    bob.send({"type": "quit"})
    bob.expect_eof()
    alice.recv_until("parted")
    alice.send({"type": "whisper", "to": "bob", "text": "still there?"})
    assert alice.recv()["code"] == "no_such_user"


def test_history_query_after_before_and_limit(chat_server: StartInProcess) -> None:
    server = chat_server(prepare=fill_room("lobby", 80))
    client = server.user("alice")
    assert [m["seq"] for m in fetch_history(client, "lobby", after=10, limit=5)] == [
        11, 12, 13, 14, 15]
    assert [m["seq"] for m in fetch_history(client, "lobby", before=10, limit=3)] == [7, 8, 9]
    assert [m["seq"] for m in fetch_history(client, "lobby")] == list(range(31, 81))
    assert [m["seq"] for m in fetch_history(client, "lobby", after=75)] == list(range(76, 81))
    assert len(fetch_history(client, "lobby", after=0, limit=500)) == 80


def test_history_of_a_room_one_is_not_in_is_not_in_room(chat_server: StartInProcess) -> None:
    server = chat_server(prepare=fill_room("secret", 3))
    client = server.user("alice")
    client.send({"type": "history", "room": "secret", "ref": 9})
    error = client.recv()
    assert (error["code"], error["ref"]) == ("not_in_room", 9)


# ---------------------------------------------------------------------------
# 6. Identity, liveness, leaving


def test_nick_is_announced_once_to_each_user_sharing_a_room(server: InProcessServer) -> None:
    alice = server.user("alice")
    bob = server.user("bob")
    carol = server.user("carol")
    for client in (alice, bob):
        client.send({"type": "join", "room": "dev"})
        client.recv_until("history")
    carol.send({"type": "part", "room": "lobby"})
    for client in (alice, bob, carol):
        client.drain()
    alice.send({"type": "nick", "name": "al"})
    for client in (alice, bob):
        renamed = client.recv()
        assert (renamed["type"], renamed["old"], renamed["new"]) == ("renamed", "alice", "al")
        assert renamed["color"] == alice.welcome["color"]  # type: ignore[index]
        client.expect_no_frame()
    carol.expect_no_frame()
    assert say_and_ack(alice, "dev", "as al")["from"] == "al"
    taker = server.connect()
    assert taker.hello("alice")["name"] == "alice"


@pytest.mark.parametrize(("name", "code"), [("BOB", "name_taken"), ("b b", "bad_name")])
def test_nick_to_a_taken_or_invalid_name_is_refused(
    server: InProcessServer, name: str, code: str
) -> None:
    server.user("bob")
    alice = server.user("alice")
    alice.send({"type": "nick", "name": name, "ref": "n"})
    error = alice.recv()
    assert (error["code"], error["ref"]) == (code, "n")


def test_ping_gets_pong_with_token_and_ref(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send({"type": "ping", "token": "x", "ref": 5})
    pong = client.recv()
    assert (pong["type"], pong["token"], pong["ref"]) == ("pong", "x", 5)


def test_server_pings_a_silent_connection_and_an_answer_keeps_it(
    chat_server: StartInProcess,
) -> None:
    clock = FakeClock()
    server = chat_server(heartbeat_s=30, clock=clock)
    client = server.user("alice")
    assert client.welcome["heartbeat"] == 30  # type: ignore[index]
    clock.advance(29.75)
    server.call(server.server.tick)
    alive(client)  # heard just now: no ping due yet
    for _ in range(3):
        clock.advance(30.0)
        server.call(server.server.tick)
        ping = client.recv_until("ping", timeout_s=3)
        client.send({"type": "pong", "token": ping.get("token")})
        alive(client)


def test_connection_silent_after_a_server_ping_is_closed(chat_server: StartInProcess) -> None:
    clock = FakeClock()
    server = chat_server(heartbeat_s=30, clock=clock)
    client = server.user("alice")
    watcher = server.user("watcher")
    clock.advance(30.0)
    watcher.send({"type": "ping", "token": "w"})  # the watcher keeps talking
    watcher.recv_until("pong")
    server.call(server.server.tick)
    client.recv_until("ping", timeout_s=3)
    clock.advance(29.75)
    watcher.send({"type": "ping", "token": "w"})
    watcher.recv_until("pong")
    server.call(server.server.tick)
    alive_before = client.sock.fileno() >= 0
    clock.advance(0.25)
    server.call(server.server.tick)
    client.expect_eof(timeout_s=3)
    parted = watcher.recv_until("parted", timeout_s=3)
    assert alive_before and (parted["name"], parted["reason"]) == ("alice", "disconnected")


def test_heartbeat_zero_disables_server_pings(server: InProcessServer) -> None:
    client = server.user("alice")
    assert client.welcome["heartbeat"] == 0  # type: ignore[index]
    client.expect_no_frame(1.0)


def test_quit_flushes_queued_frames_then_closes(server: InProcessServer) -> None:
    client = server.user("alice")
    client.send_raw(b"".join(
        frame_bytes(b'{"type":"say","room":"lobby","text":"last words %d"}' % i)
        for i in range(20)
    ) + frame_bytes(b'{"type":"quit","reason":"bye"}'))
    frames = client.expect_eof()
    assert [f["seq"] for f in frames if f["type"] == "message"] == list(range(1, 21))


def test_graceful_stop_sends_notice_shutdown_to_everyone_then_closes(
    server_process: StartServer,
) -> None:
    proc = server_process("--heartbeat", "0")
    clients = [proc.connect() for _ in range(3)]
    clients[0].hello("alice")
    clients[1].hello("bob")  # clients[2] has not said hello yet: it is told too
    proc.send_signal(signal.SIGTERM)
    for client in clients:
        frames = client.expect_eof(timeout_s=10)
        notices = [f for f in frames if f["type"] == "notice"]
        assert [n["code"] for n in notices] == ["shutdown"]
        assert isinstance(notices[0]["text"], str)
        assert frames[-1]["type"] == "notice"
    assert proc.wait() == 0


def test_sighup_stops_gracefully_like_sigterm(server_process: StartServer) -> None:
    # A closed terminal sends SIGHUP: the users still get the shutdown notice.
    proc = server_process("--heartbeat", "0")
    client = proc.connect()
    client.hello("alice")
    proc.send_signal(signal.SIGHUP)
    frames = client.expect_eof(timeout_s=10)
    assert [f["code"] for f in frames if f["type"] == "notice"] == ["shutdown"]
    assert proc.wait() == 0
    assert "SIGHUP: stopping" in proc.log


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_signals_the_server_does_not_use_do_not_kill_it(
    server_process: StartServer, sig: signal.Signals,
) -> None:
    proc = server_process("--heartbeat", "0")
    client = proc.connect()
    client.hello("alice")
    proc.send_signal(sig)
    assert proc.wait_for_log(f"{sig.name}: ignored", timeout_s=5)
    alive(client)


# ---------------------------------------------------------------------------
# 7. Reconnecting without loss


def test_hello_with_the_session_takes_the_name_over_silently(server: InProcessServer) -> None:
    bob = server.user("bob")
    old = server.user("alice")
    old.send({"type": "join", "room": "dev"})
    old.recv_until("history")
    say_and_ack(old, "dev", "before", id="b1")
    bob.drain()
    new = server.connect()
    welcome = new.hello("alice", session=old.welcome["session"], wait_joined=False)  # type: ignore[index]
    assert welcome["session"] == old.welcome["session"]  # type: ignore[index]
    assert welcome["color"] == old.welcome["color"]  # type: ignore[index]
    frames = old.expect_eof()
    assert [f["code"] for f in frames if f["type"] == "error"] == ["replaced"]
    state = new.recv_all_until("history", where=lambda f: f["room"] == "dev")
    state += new.drain()
    assert [(f["type"], f["room"]) for f in state] == [
        ("roster", "lobby"), ("history", "lobby"), ("roster", "dev"), ("history", "dev")]
    assert [m["text"] for m in history_messages(state, "dev")] == ["before"]
    bob.expect_no_frame(0.5)
    new.send({"type": "rooms"})
    assert {r["room"] for r in new.recv()["rooms"]} == {"dev", "lobby"}


def test_hello_with_a_wrong_session_for_a_held_name_is_name_taken(
    server: InProcessServer,
) -> None:
    server.user("alice")
    client = server.connect()
    client.send({"type": "hello", "name": "alice", "protocol": 1, "session": "guess"})
    assert client.recv()["code"] == "name_taken"


def test_unknown_session_is_ignored_and_a_new_one_issued(server: InProcessServer) -> None:
    client = server.connect()
    welcome = client.hello("alice", session="expired-or-forged")
    assert welcome["session"] not in ("", "expired-or-forged")
    assert [f["room"] for f in client.join_frames] == ["lobby"] * 3


def test_resume_replays_exactly_the_missed_messages(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    seen = [say_and_ack(bob, "lobby", f"seen {i}")["seq"] for i in range(3)]
    alice.recv_until("message", where=lambda f: f["seq"] == seen[-1])
    session = alice.welcome["session"]  # type: ignore[index]
    alice.send({"type": "quit"})
    alice.expect_eof()
    missed = [say_and_ack(bob, "lobby", f"missed {i}")["seq"] for i in range(4)]
    back = server.connect()
    back.hello("alice", session=session, resume={"rooms": {"lobby": seen[-1]}})
    assert back.welcome["session"] == session  # type: ignore[index]
    messages = history_messages(back.join_frames, "lobby")
    assert [m["seq"] for m in messages] == missed
    assert not any(f.get("truncated") for f in back.join_frames)


def test_resume_joins_exactly_the_named_rooms_not_the_default(chat_server: StartInProcess) -> None:
    server = chat_server(prepare=fill_room("dev", 5))
    client = server.connect()
    client.hello("alice", resume={"rooms": {"dev": 3, "ops": 0}})
    assert [(f["type"], f["room"]) for f in client.join_frames] == [
        ("joined", "dev"), ("roster", "dev"), ("history", "dev"),
        ("joined", "ops"), ("roster", "ops"), ("history", "ops")]
    assert [m["seq"] for m in history_messages(client.join_frames, "dev")] == [4, 5]
    client.send({"type": "rooms"})
    assert [r["room"] for r in client.recv()["rooms"]] == ["dev", "ops"]


def test_resume_with_no_rooms_joins_the_default_room(server: InProcessServer) -> None:
    client = server.connect()
    client.hello("alice", resume={"rooms": {}})
    assert {f["room"] for f in client.join_frames} == {"lobby"}


def test_resume_over_1000_missed_sends_the_latest_1000_truncated(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(prepare=fill_room("big", 1005))
    client = server.connect()
    client.hello("alice", resume={"rooms": {"big": 0}})
    parts = [f for f in client.join_frames if f["type"] == "history"]
    assert all(f.get("truncated") is True for f in parts)
    assert [m["seq"] for m in history_messages(parts, "big")] == list(range(6, 1006))
    assert [m["seq"] for m in fetch_history(client, "big", before=6)] == [1, 2, 3, 4, 5]


def test_takeover_with_resume_leaves_unnamed_rooms_with_part(server: InProcessServer) -> None:
    bob = server.user("bob")
    old = server.user("alice")
    for client in (bob, old):
        client.send({"type": "join", "room": "dev"})
        client.recv_until("history", where=lambda f: f["room"] == "dev")
    last = say_and_ack(old, "dev", "one")["seq"]
    bob.drain()
    new = server.connect()
    session = old.welcome["session"]  # type: ignore[index]
    new.hello("alice", session=session, resume={"rooms": {"dev": last, "ops": 0}},
              wait_joined=False)
    assert [f["code"] for f in old.expect_eof() if f["type"] == "error"] == ["replaced"]
    parted = bob.recv()
    assert (parted["type"], parted["room"], parted["name"], parted["reason"]) == (
        "parted", "lobby", "alice", "part")
    bob.expect_no_frame(0.5)
    frames = new.drain(0.5)
    assert ("joined", "ops") in [(f["type"], f["room"]) for f in frames]
    assert ("joined", "dev") not in [(f["type"], f["room"]) for f in frames]
    assert history_messages(frames, "dev") == []
    new.send({"type": "rooms"})
    rooms = {r["room"]: r["members"] for r in new.recv_until("room_list")["rooms"]}
    assert rooms == {"dev": 2, "lobby": 1, "ops": 1}


def test_retried_says_after_reconnecting_are_not_duplicated(server: InProcessServer) -> None:
    alice = server.user("alice")
    acked = say_and_ack(alice, "lobby", "was it sent?", id="c-1")
    session = alice.welcome["session"]  # type: ignore[index]
    alice.close()
    back = server.connect()
    back.hello("alice", session=session, resume={"rooms": {"lobby": 0}})
    assert [m["id"] for m in history_messages(back.join_frames, "lobby")] == ["c-1"]
    back.say("lobby", "was it sent?", id="c-1")
    assert back.recv() == acked


# ---------------------------------------------------------------------------
# 8. Limits and abuse


def test_requests_over_the_flood_limit_get_rate_limited_with_ref_or_id(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(flood_rate_per_s=0.5, flood_burst=3)
    other = server.user("bob")
    flooder = server.user("alice")
    for i in range(3):
        flooder.send({"type": "rooms", "ref": i})
    assert [flooder.recv_until("room_list")["ref"] for _ in range(3)] == [0, 1, 2]
    flooder.send({"type": "rooms", "ref": "over"})
    error = flooder.recv()
    assert (error["code"], error["ref"]) == ("rate_limited", "over")
    flooder.say("lobby", "not carried out", id="c-9")
    error = flooder.recv()
    assert (error["code"], error["ref"], error["id"]) == ("rate_limited", "c-9", "c-9")
    other.drain()
    say_and_ack(other, "lobby", "unaffected")
    other.expect_no_frame()
    assert fetch_history(other, "lobby")[-1]["text"] == "unaffected"
    assert len(fetch_history(other, "lobby")) == 1


def test_malformed_requests_count_against_the_flood_limit(chat_server: StartInProcess) -> None:
    server = chat_server(flood_rate_per_s=0.5, flood_burst=3)
    client = server.user("alice")
    for _ in range(3):
        client.send({"type": "join"})
    assert [client.recv()["code"] for _ in range(3)] == ["bad_request"] * 3
    client.send({"type": "rooms", "ref": "over"})
    error = client.recv()
    assert (error["type"], error.get("code")) == ("error", "rate_limited")


def test_ping_and_pong_do_not_count_against_the_flood_limit(chat_server: StartInProcess) -> None:
    server = chat_server(flood_rate_per_s=0.5, flood_burst=2)
    client = server.user("alice")
    for i in range(30):
        client.send({"type": "ping", "token": i})
        client.send({"type": "pong", "token": i})
    assert [client.recv()["type"] for _ in range(30)] == ["pong"] * 30
    client.send({"type": "rooms"})
    assert client.recv()["type"] == "room_list"


def test_slow_consumer_is_closed_and_others_keep_receiving(server_process: StartServer) -> None:
    proc = server_process("--max-outbuf", "65536", "--flood-rate", "0", "--heartbeat", "0")
    slow = proc.connect(rcvbuf_bytes=4096)
    slow.hello("slow")  # ...and never reads again until the end
    watcher = proc.connect()
    watcher.hello("watcher")
    flooder = proc.connect()
    flooder.hello("flooder")
    flooder.drain(0.1)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    slow_parted = threading.Event()

    def watch() -> None:
        while True:
            try:
                frame = watcher.recv(10)
            except (TimeoutError, ConnectionClosed):
                return
            if frame["type"] == "message":
                latencies.append(time.monotonic() - sent_at[frame["id"]])
                if frame["id"] == "done":
                    return
            elif frame["type"] == "parted" and frame["name"] == "slow":
                assert frame["reason"] == "disconnected"
                slow_parted.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    text = "z" * 3900
    for batch in range(200):  # at most ~8 MB, far beyond any kernel buffering
        for i in range(batch * 10, batch * 10 + 10):
            sent_at[str(i)] = time.monotonic()
            flooder.say("lobby", text, id=str(i))
        for _ in range(10):
            flooder.recv_until("message")
        if slow_parted.is_set():
            break
    sent_at["done"] = time.monotonic()
    flooder.say("lobby", "done", id="done")
    reader.join(15)
    assert slow_parted.is_set(), "the slow consumer was never dropped"
    assert latencies and latencies[-1] < 2.0
    assert max(latencies) < 2.0, "a slow consumer delayed another connection"
    frames = slow.expect_eof(timeout_s=10)
    assert {f["code"] for f in frames if f["type"] == "error"} <= {"slow_consumer"}
    assert proc.wait_for_log("slow consumer", timeout_s=1)


def test_garbage_on_one_connection_does_not_affect_others(server: InProcessServer) -> None:
    bob = server.user("bob")
    alice = server.user("alice")
    bob.drain()
    vandal = server.connect()
    vandal.send_raw(frame_bytes(b"\x00\x01\x02") + frame_bytes(b"{]") + frame_bytes(b"[]"))
    vandal.send_raw(b"\xff\xff\xff\xff")
    say_and_ack(alice, "lobby", "still fine")
    assert bob.recv()["text"] == "still fine"
    frames = vandal.expect_eof()
    assert [f["code"] for f in frames] == ["bad_frame", "bad_frame", "bad_frame",
                                           "frame_too_large"]
    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    alive(alice)
    alive(bob)
