"""Specification of the sans-IO chat server (PROTOCOL sections 2-8), effect by effect.

Every test feeds :class:`ChatState` requests with explicit times and asserts on
the exact effects it answers with: which frame goes to which connections, in
which order, and when a connection is closed. No sockets, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chattycat.errors import ErrorCode, FrameTooLarge
from chattycat.protocol.messages import (
    Error,
    Frame,
    Hello,
    History,
    HistoryQuery,
    Join,
    Joined,
    Member,
    Message,
    Nick,
    Notice,
    Part,
    Parted,
    Ping,
    Pong,
    Quit,
    Renamed,
    Request,
    RoomInfo,
    RoomList,
    Rooms,
    Roster,
    Say,
    Welcome,
    Whisper,
    WhisperTo,
    Who,
    parse_request,
    to_payload,
)
from chattycat.server.colors import PALETTE
from chattycat.server.memory_store import MemoryStore
from chattycat.server.state import ChatState, Close, ConnId, ConnState, Effect, RoomsConfig, Send
from tests.server.driving import Driven

pytestmark = pytest.mark.timeout(60)

START = 1_000.0
RED, SKY, LEAF = PALETTE[0], PALETTE[1], PALETTE[2]

Delivery = tuple[Any, Any]


class Chat:
    """A ChatState driven against an in-memory store, a clock, and the sessions handed out.

    Flood control is off unless a test configures it, so that tests which send
    many requests at one instant are not rate limited by accident.
    """

    def __init__(self, **config: Any) -> None:
        config.setdefault("flood_rate_per_s", 0.0)
        self.store = MemoryStore()
        self.state = Driven(ChatState(RoomsConfig(**config)), self.store)
        self.now = START
        self.sessions: dict[str, str] = {}

    def config_grace(self) -> float:
        return self.state.config.name_grace_s

    def send(self, conn: ConnId, request: Request | dict[str, Any]) -> list[Effect]:
        if isinstance(request, dict):
            request = parse_request(request)
        return self.state.receive(conn, request, self.now)

    def sign_in(self, conn: ConnId, name: str, **hello: Any) -> list[Effect]:
        self.state.connect(conn, self.now)
        effects = self.send(conn, Hello(name, **hello))
        welcome = effects[0].frame if isinstance(effects[0], Send) else None
        assert isinstance(welcome, Welcome), effects
        self.sessions[name] = welcome.session
        return effects

    def say(self, conn: ConnId, room: str, text: str, id: str | None = None) -> list[Effect]:
        return self.send(conn, Say(room, text, id))

    def store_messages(self, room: str, count: int, sender: str = "old") -> list[Message]:
        """Put ``count`` messages into the store directly (the room must have no members)."""
        start = self.state.last_seq(room)
        messages = [
            Message(room, start + i, sender, RED, f"{room} #{start + i}", START + i)
            for i in range(1, count + 1)
        ]
        for message in messages:
            self.store.add(message)
        self.store.commit()
        self.state.restore(self.now, sessions=False)  # as if the server started on this store
        return messages


@pytest.fixture
def chat() -> Iterator[Chat]:
    harness = Chat()
    yield harness
    harness.store.close()


def deliveries(effects: list[Effect]) -> list[Delivery]:
    """Effects as (set of connections, frame) and ("close", conn), order of conns ignored."""
    out: list[Delivery] = []
    for effect in effects:
        if isinstance(effect, Send):
            out.append((frozenset(effect.conns), effect.frame))
        else:
            out.append(("close", effect.conn))
    return out


def frames_to(effects: list[Effect], conn: ConnId) -> list[Frame]:
    return [e.frame for e in effects if isinstance(e, Send) and conn in e.conns]


def errors(effects: list[Effect]) -> list[tuple[frozenset[ConnId], str, Any, str | None]]:
    """Error frames as (conns, code, ref, id); the human-readable text is not specified."""
    return [
        (frozenset(e.conns), e.frame.code, e.frame.ref, e.frame.id)
        for e in effects
        if isinstance(e, Send) and isinstance(e.frame, Error)
    ]


def messages_in(effects: list[Effect]) -> list[Message]:
    return [e.frame for e in effects if isinstance(e, Send) and isinstance(e.frame, Message)]


def history_frames(effects: list[Effect]) -> list[History]:
    return [e.frame for e in effects if isinstance(e, Send) and isinstance(e.frame, History)]


def seqs(messages: Any) -> list[int]:
    return [m.seq for m in messages]


# -- 3. session: hello, welcome, handshake ------------------------------------


def test_hello_is_answered_with_welcome_then_the_default_room_join() -> None:
    chat = Chat(flood_rate_per_s=5.0)
    effects = chat.sign_in(1, "alice")
    session = chat.sessions["alice"]
    config = RoomsConfig()
    assert deliveries(effects) == [
        ({1}, Welcome("alice", RED, session, config.server_name, 65536, 30)),
        ({1}, Joined("lobby", "alice", RED, START)),
        ({1}, Roster("lobby", (Member("alice", RED),))),
        ({1}, History("lobby", ())),
    ]


def test_welcome_carries_protocol_server_session_max_frame_and_heartbeat() -> None:
    chat = Chat(max_frame=4096, heartbeat_s=12.5)
    welcome = chat.sign_in(1, "alice")[0].frame
    assert isinstance(welcome, Welcome)
    payload = welcome.to_dict()
    assert payload["protocol"] == 1
    assert payload["server"].startswith("chattycat/")
    assert payload["max_frame"] == 4096
    assert payload["heartbeat"] == 12.5
    assert isinstance(payload["session"], str) and len(payload["session"]) >= 16


def test_hello_joins_exactly_as_join_joined_to_all_then_roster_and_history_to_joiner(
    chat: Chat,
) -> None:
    chat.sign_in(1, "alice")
    chat.say(1, "lobby", "hi")
    chat.now += 1
    effects = chat.sign_in(2, "Bob")
    session = chat.sessions["Bob"]
    hi = Message("lobby", 1, "alice", RED, "hi", START)
    assert deliveries(effects) == [
        ({2}, Welcome("Bob", SKY, session, chat.state.config.server_name, 65536, 30)),
        ({1, 2}, Joined("lobby", "Bob", SKY, START + 1)),
        ({2}, Roster("lobby", (Member("alice", RED), Member("Bob", SKY)))),
        ({2}, History("lobby", (hi,))),
    ]


def test_hello_joins_the_configured_default_room() -> None:
    chat = Chat(default_room="hall")
    effects = chat.sign_in(1, "alice")
    assert Joined("hall", "alice", RED, START) in frames_to(effects, 1)
    assert chat.state.members("hall") == ["alice"]
    assert chat.state.members("lobby") == []


@pytest.mark.parametrize(
    "request_obj",
    [
        {"type": "join", "room": "dev", "ref": 7},
        {"type": "say", "room": "lobby", "text": "hi", "ref": 7},
        {"type": "ping", "ref": 7},
        {"type": "rooms", "ref": 7},
        {"type": "quit", "ref": 7},
    ],
)
def test_any_request_before_hello_is_hello_required(
    chat: Chat, request_obj: dict[str, Any]
) -> None:
    chat.state.connect(1, START)
    effects = chat.send(1, request_obj)
    assert errors(effects) == [({1}, "hello_required", 7, None)]
    assert chat.state.state_of(1) is ConnState.AWAITING_HELLO


@pytest.mark.parametrize(
    "payload",
    [b'{"type":"join","room":"NOT A ROOM"}', b'{"type":"frobnicate"}', b'{"type":"say"}'],
)
def test_malformed_or_unknown_request_before_hello_is_hello_required(
    chat: Chat, payload: bytes
) -> None:
    chat.state.connect(1, START)
    effects = chat.state.receive_payload(1, payload, START)
    assert [code for _, code, _, _ in errors(effects)] == ["hello_required"]


def test_second_hello_after_welcome_is_bad_state(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    effects = chat.send(1, Hello("alice", ref="again"))
    assert errors(effects) == [({1}, "bad_state", "again", None)]


def test_hello_with_other_protocol_is_unsupported_protocol_and_may_be_retried(
    chat: Chat,
) -> None:
    chat.state.connect(1, START)
    effects = chat.send(1, {"type": "hello", "name": "alice", "protocol": 2, "ref": 1})
    assert errors(effects) == [({1}, "unsupported_protocol", 1, None)]
    assert chat.state.user_names() == []
    retry = chat.send(1, Hello("alice"))
    assert isinstance(retry[0], Send) and isinstance(retry[0].frame, Welcome)


@pytest.mark.parametrize("taken", ["alice", "ALICE", "aLiCe"])
def test_hello_with_a_taken_name_in_any_case_is_name_taken_and_may_be_retried(
    chat: Chat, taken: str
) -> None:
    chat.sign_in(1, "Alice")
    chat.state.connect(2, START)
    effects = chat.send(2, Hello(taken, ref="h"))
    assert errors(effects) == [({2}, "name_taken", "h", None)]
    assert chat.state.state_of(2) is ConnState.AWAITING_HELLO
    retry = chat.send(2, Hello("bob"))
    assert isinstance(retry[0], Send) and isinstance(retry[0].frame, Welcome)
    assert sorted(chat.state.user_names()) == ["Alice", "bob"]


def test_hello_with_a_bad_name_is_bad_name_and_may_be_retried(chat: Chat) -> None:
    chat.state.connect(1, START)
    bad = b'{"type":"hello","name":"no spaces","protocol":1,"ref":3}'
    assert errors(chat.state.receive_payload(1, bad, START)) == [({1}, "bad_name", 3, None)]
    good = b'{"type":"hello","name":"alice","protocol":1}'
    effects = chat.state.receive_payload(1, good, START)
    assert isinstance(effects[0], Send) and isinstance(effects[0].frame, Welcome)


def test_connection_without_hello_is_closed_at_the_handshake_timeout(chat: Chat) -> None:
    chat.state.connect(1, START)
    assert chat.state.tick(START + 9.9) == []
    assert chat.state.tick(START + 10.0) == [Close(1)]
    assert chat.state.state_of(1) is ConnState.CLOSED
    assert chat.state.tick(START + 11.0) == []


def test_handshake_timeout_does_not_close_a_connection_that_said_hello(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    assert chat.state.tick(START + 10.0) == []


# -- 4. rooms -----------------------------------------------------------------


def test_join_sends_joined_to_every_member_then_roster_and_history_to_the_joiner(
    chat: Chat,
) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(2, Join("dev"))
    chat.say(2, "dev", "first")
    chat.now += 5
    effects = chat.send(1, Join("dev", ref="j"))
    first = Message("dev", 1, "bob", SKY, "first", START)
    assert deliveries(effects) == [
        ({1, 2}, Joined("dev", "alice", RED, START + 5)),
        ({1}, Roster("dev", (Member("alice", RED), Member("bob", SKY)), ref="j")),
        ({1}, History("dev", (first,), ref="j")),
    ]


def test_roster_is_sorted_by_name_case_insensitively(chat: Chat) -> None:
    for conn, name in enumerate(["carol", "Bob", "alice", "Dave"], start=1):
        chat.sign_in(conn, name)
    roster = [f for f in frames_to(chat.send(1, Who("lobby")), 1) if isinstance(f, Roster)]
    assert [m.name for m in roster[0].members] == ["alice", "Bob", "carol", "Dave"]


def test_join_history_holds_the_50_most_recent_messages_oldest_first(chat: Chat) -> None:
    stored = chat.store_messages("dev", 70)
    chat.sign_in(1, "alice")
    (history,) = history_frames(chat.send(1, Join("dev")))
    assert list(history.messages) == stored[-50:]


def test_rejoining_a_room_sends_only_roster_and_history_to_the_requester(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    effects = chat.send(1, Join("lobby", ref=9))
    assert deliveries(effects) == [
        ({1}, Roster("lobby", (Member("alice", RED), Member("bob", SKY)), ref=9)),
        ({1}, History("lobby", (), ref=9)),
    ]


def test_part_sends_parted_to_every_member_including_the_leaver(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    effects = chat.send(1, Part("lobby", ref="p"))
    assert deliveries(effects) == [({1, 2}, Parted("lobby", "alice", "part"))]
    assert chat.state.members("lobby") == ["bob"]


def test_part_when_not_member_is_not_in_room(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    assert errors(chat.send(1, Part("dev", ref=1))) == [({1}, "not_in_room", 1, None)]


def test_quit_sends_parted_quit_to_each_room_and_closes_the_connection(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(1, Join("dev"))
    chat.sign_in(3, "carol")
    chat.send(3, Join("dev"))
    effects = chat.send(1, Quit())
    assert deliveries(effects) == [
        ({2, 3}, Parted("lobby", "alice", "quit")),
        ({3}, Parted("dev", "alice", "quit")),
        ("close", 1),
    ]
    assert chat.state.user_names() == ["bob", "carol"]


def test_quit_with_a_reason_parts_with_that_reason_text(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    effects = chat.send(1, Quit("off to lunch"))
    assert deliveries(effects) == [({2}, Parted("lobby", "alice", "off to lunch")), ("close", 1)]


def test_lost_connection_parts_with_reason_disconnected_and_frees_the_name(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    effects = chat.state.disconnected(1, START)
    assert deliveries(effects) == [({2}, Parted("lobby", "alice", "disconnected"))]
    assert chat.state.user_names() == ["bob"]
    assert chat.state.disconnected(1, START) == []


def test_room_without_members_is_forgotten_but_its_seq_goes_on(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.send(1, Join("dev"))
    chat.say(1, "dev", "one")
    chat.send(1, Part("dev"))
    chat.send(1, Join("dev"))
    assert seqs(messages_in(chat.say(1, "dev", "two"))) == [2]


def test_who_answers_the_roster_of_a_room_with_ref(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(2, Join("dev"))
    effects = chat.send(1, Who("dev", ref="w"))
    assert deliveries(effects) == [({1}, Roster("dev", (Member("bob", SKY),), ref="w"))]


def test_who_for_a_room_without_members_or_history_is_no_such_room(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    assert errors(chat.send(1, Who("nowhere", ref=4))) == [({1}, "no_such_room", 4, None)]


def test_who_for_a_room_with_history_but_no_members_is_an_empty_roster(chat: Chat) -> None:
    chat.store_messages("archive", 1)
    chat.sign_in(1, "alice")
    effects = chat.send(1, Who("archive"))
    assert deliveries(effects) == [({1}, Roster("archive", ()))]


def test_rooms_lists_rooms_with_members_sorted_by_name(chat: Chat) -> None:
    chat.store_messages("archive", 1)
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(2, Join("zoo"))
    chat.send(2, Join("dev"))
    chat.send(1, Join("dev"))
    effects = chat.send(1, Rooms(ref="r"))
    expected = RoomList((RoomInfo("dev", 2), RoomInfo("lobby", 2), RoomInfo("zoo", 1)), ref="r")
    assert deliveries(effects) == [({1}, expected)]


def test_bad_room_name_is_bad_room(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    effects = chat.state.receive_payload(1, b'{"type":"join","room":"Dev","ref":2}', START)
    assert errors(effects) == [({1}, "bad_room", 2, None)]


# -- 5. messages --------------------------------------------------------------


def test_say_is_sent_to_every_member_including_the_sender(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.sign_in(3, "carol")
    chat.send(3, Part("lobby"))
    chat.now = START + 2.5
    effects = chat.say(1, "lobby", "hi", id="c-17")
    assert deliveries(effects) == [
        ({1, 2}, Message("lobby", 1, "alice", RED, "hi", START + 2.5, "c-17")),
    ]


def test_say_with_action_marks_the_message_as_an_emote(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    (message,) = messages_in(chat.send(1, {"type": "say", "room": "lobby", "text": "waves",
                                          "action": True}))
    assert message.action
    assert message.to_dict()["action"] is True


def test_say_when_not_member_is_not_in_room(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    effects = chat.send(1, Say("dev", "hi", ref="s"))
    assert errors(effects) == [({1}, "not_in_room", "s", None)]
    assert chat.state.last_seq("dev") == 0


def test_seq_starts_at_1_and_grows_by_1_per_message_in_each_room(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.send(1, Join("dev"))
    lobby = [m for i in range(5) for m in messages_in(chat.say(1, "lobby", f"l{i}"))]
    dev = [m for i in range(3) for m in messages_in(chat.say(1, "dev", f"d{i}"))]
    assert seqs(lobby) == [1, 2, 3, 4, 5]
    assert seqs(dev) == [1, 2, 3]


def test_seq_continues_from_the_store(chat: Chat) -> None:
    chat.store_messages("lobby", 41)
    chat.sign_in(1, "alice")
    assert seqs(messages_in(chat.say(1, "lobby", "hi"))) == [42]


def test_say_with_a_repeated_id_resends_the_original_to_the_sender_alone(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    (original,) = messages_in(chat.say(1, "lobby", "hi", id="c-1"))
    chat.now += 30
    effects = chat.say(1, "lobby", "hi again?", id="c-1")
    assert deliveries(effects) == [({1}, original)]
    assert chat.state.last_seq("lobby") == 1


def test_say_with_a_repeated_id_is_idempotent_across_reconnects(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    (original,) = messages_in(chat.say(1, "lobby", "hi", id="c-1"))
    chat.state.disconnected(1, START)
    chat.sign_in(2, "alice", session=chat.sessions["alice"])
    assert deliveries(chat.say(2, "lobby", "hi", id="c-1")) == [({2}, original)]
    assert chat.state.last_seq("lobby") == 1


def test_the_same_id_from_another_user_or_room_is_a_new_message(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(1, Join("dev"))
    chat.say(1, "lobby", "hi", id="x")
    assert seqs(messages_in(chat.say(2, "lobby", "hi", id="x"))) == [2]
    assert seqs(messages_in(chat.say(1, "dev", "hi", id="x"))) == [1]


def test_idempotence_remembers_the_last_1000_ids_and_forgets_the_1001st_oldest(
    chat: Chat,
) -> None:
    chat.sign_in(1, "alice")
    for i in range(1001):
        chat.say(1, "lobby", f"m{i}", id=f"id-{i}")
    assert chat.state.last_seq("lobby") == 1001
    # id-1 is the oldest one still remembered: resent, not stored
    assert seqs(messages_in(chat.say(1, "lobby", "m1", id="id-1"))) == [2]
    assert chat.state.last_seq("lobby") == 1001
    # id-0 fell out of the window: stored as a new message
    assert seqs(messages_in(chat.say(1, "lobby", "m0", id="id-0"))) == [1002]


def test_whisper_reaches_the_recipient_and_the_sender(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.sign_in(3, "carol")
    effects = chat.send(1, WhisperTo("BOB", "psst", "c-18"))
    assert deliveries(effects) == [({1, 2}, Whisper("alice", "bob", RED, "psst", START, "c-18"))]


def test_whisper_is_not_stored(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(1, WhisperTo("bob", "psst"))
    assert chat.state.last_seq("lobby") == 0
    assert chat.store.all_messages("lobby") == []


def test_a_retried_whisper_id_goes_back_to_the_sender_alone(chat: Chat) -> None:
    # Whispers are not stored, but a client resending an unacknowledged one after
    # a reconnect must not make it reach the recipient twice.
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    original = Whisper("alice", "bob", RED, "psst", START, "c-18")
    assert deliveries(chat.send(1, WhisperTo("bob", "psst", "c-18"))) == [({1, 2}, original)]
    assert deliveries(chat.send(1, WhisperTo("bob", "psst", "c-18"))) == [({1}, original)]
    assert deliveries(chat.send(1, WhisperTo("bob", "again", "c-19")))[0][0] == {1, 2}


def test_whisper_to_an_unknown_or_offline_user_is_no_such_user(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.state.disconnected(2, START)
    effects = chat.send(1, WhisperTo("bob", "psst", ref="w"))
    assert errors(effects) == [({1}, "no_such_user", "w", None)]
    effects = chat.send(1, WhisperTo("nobody", "psst", ref="w"))
    assert errors(effects) == [({1}, "no_such_user", "w", None)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"after": 40, "limit": 5}, [41, 42, 43, 44, 45]),
        ({"after": 95}, [96, 97, 98, 99, 100]),
        ({"before": 10, "limit": 3}, [7, 8, 9]),
        ({"before": 3}, [1, 2]),
        ({"limit": 4}, [97, 98, 99, 100]),
        ({}, list(range(51, 101))),
        ({"after": 100}, []),
    ],
)
def test_history_query_pages_after_or_before_a_seq_oldest_first(
    chat: Chat, query: dict[str, int], expected: list[int]
) -> None:
    chat.store_messages("lobby", 100)
    chat.sign_in(1, "alice")
    effects = chat.send(1, {"type": "history", "room": "lobby", "ref": "q", **query})
    (history,) = history_frames(effects)
    assert seqs(history.messages) == expected
    assert history.ref == "q"
    assert [e.conns for e in effects if isinstance(e, Send)] == [(1,)]


def test_history_of_a_room_one_is_not_in_is_not_in_room(chat: Chat) -> None:
    chat.store_messages("dev", 3)
    chat.sign_in(1, "alice")
    effects = chat.send(1, HistoryQuery("dev", ref=5))
    assert errors(effects) == [({1}, "not_in_room", 5, None)]


# -- 6. identity, liveness, leaving --------------------------------------------


def test_nick_sends_renamed_once_to_the_user_and_everyone_sharing_a_room(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")  # shares lobby and dev with alice
    chat.sign_in(3, "carol")  # shares dev only
    chat.sign_in(4, "dave")  # shares nothing
    for conn in (1, 2, 3):
        chat.send(conn, Join("dev"))
    chat.send(3, Part("lobby"))
    chat.send(4, Part("lobby"))
    effects = chat.send(1, Nick("al"))
    renamed = [e for e in effects if isinstance(e, Send)]
    assert len(renamed) == 1
    assert renamed[0].frame == Renamed("alice", "al", RED)
    assert sorted(renamed[0].conns) == [1, 2, 3]
    assert sorted(chat.state.user_names()) == ["al", "bob", "carol", "dave"]
    assert "al" in chat.state.members("dev")


def test_nick_of_a_user_in_no_room_is_sent_to_that_user(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.send(1, Part("lobby"))
    assert deliveries(chat.send(1, Nick("al"))) == [({1}, Renamed("alice", "al", RED))]


@pytest.mark.parametrize("taken", ["bob", "BOB"])
def test_nick_to_a_name_taken_in_any_case_is_name_taken(chat: Chat, taken: str) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    assert errors(chat.send(1, Nick(taken, ref=1))) == [({1}, "name_taken", 1, None)]
    assert sorted(chat.state.user_names()) == ["alice", "bob"]


def test_nick_changing_only_the_case_of_ones_own_name_is_allowed(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    assert deliveries(chat.send(1, Nick("Alice"))) == [({1}, Renamed("alice", "Alice", RED))]
    assert chat.state.user_names() == ["Alice"]


def test_nick_frees_the_old_name(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.send(1, Nick("al"))
    chat.sign_in(2, "alice")
    assert sorted(chat.state.user_names()) == ["al", "alice"]


def test_idempotence_windows_belong_to_the_session_not_the_name(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    (original,) = messages_in(chat.say(1, "lobby", "hi", id="c-1"))
    for name in ("al", "ally"):
        chat.send(1, Nick(name))
        chat.say(1, "lobby", f"as {name}", id=f"as-{name}")
    # Renamed, the session's retry is still recognised...
    assert deliveries(chat.say(1, "lobby", "hi", id="c-1")) == [({1}, original)]
    # ...and whoever takes the name it left gets a window of its own.
    chat.sign_in(2, "alice")
    assert seqs(messages_in(chat.say(2, "lobby", "mine", id="c-1"))) == [4]


def test_a_fresh_hello_for_a_parked_name_ends_that_sessions_window(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.say(1, "lobby", "hi", id="c-1")
    chat.state.disconnected(1, START)
    chat.now = START + chat.config_grace()  # past the name's grace period
    chat.sign_in(2, "alice")  # no session: a new one, and the old one is over
    assert seqs(messages_in(chat.say(2, "lobby", "hi", id="c-1"))) == [2]
    assert list(chat.state.machine._messaging.windows._windows) == [
        (chat.state.machine._directory.user("alice").session_key, "lobby")]  # type: ignore[union-attr]


def test_a_say_retried_after_a_nick_is_still_recognised(chat: Chat) -> None:
    # A client resending after a reconnect keeps the ids it chose before /nick.
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    (original,) = messages_in(chat.say(1, "lobby", "hi", id="c-1"))
    chat.send(1, Nick("al"))
    assert deliveries(chat.say(1, "lobby", "hi", id="c-1")) == [({1}, original)]
    assert chat.state.last_seq("lobby") == 1


def test_nick_with_a_bad_name_is_bad_name(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    effects = chat.state.receive_payload(1, b'{"type":"nick","name":"","ref":1}', START)
    assert errors(effects) == [({1}, "bad_name", 1, None)]


def test_ping_is_answered_with_pong_echoing_token_and_ref(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    assert deliveries(chat.send(1, Ping("x", ref=3))) == [({1}, Pong("x", ref=3))]


def test_server_pings_a_connection_silent_for_heartbeat_seconds(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    assert chat.state.tick(START + 29.9) == []
    effects = chat.state.tick(START + 30.0)
    assert len(effects) == 1 and isinstance(effects[0], Send)
    assert effects[0].conns == (1,) and isinstance(effects[0].frame, Ping)
    assert chat.state.tick(START + 31.0) == []  # one ping, not one per tick


def test_server_closes_a_connection_silent_a_further_heartbeat_after_its_ping(
    chat: Chat,
) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.state.tick(START + 30.0)
    chat.state.receive(2, Pong("anything"), START + 45.0)
    assert chat.state.tick(START + 59.9) == []
    effects = chat.state.tick(START + 60.0)
    assert deliveries(effects) == [({2}, Parted("lobby", "alice", "disconnected")), ("close", 1)]
    assert chat.state.user_names() == ["bob"]


def test_answering_the_server_ping_keeps_the_connection(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    (ping,) = frames_to(chat.state.tick(START + 30.0), 1)
    assert isinstance(ping, Ping)
    assert chat.state.receive(1, Pong(ping.token), START + 45.0) == []
    assert chat.state.tick(START + 60.0) == []
    assert chat.state.state_of(1) is ConnState.ACTIVE
    assert isinstance(frames_to(chat.state.tick(START + 75.0), 1)[0], Ping)


def test_heartbeat_0_disables_server_pings_and_liveness_closes() -> None:
    chat = Chat(heartbeat_s=0.0)
    chat.sign_in(1, "alice")
    assert chat.state.tick(START + 10_000.0) == []
    assert chat.state.state_of(1) is ConnState.ACTIVE


# -- 7. reconnecting without loss ---------------------------------------------


def test_takeover_replaces_the_old_connection_without_joined_or_parted(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(1, Join("dev"))
    chat.state.connect(3, START)
    effects = chat.send(3, Hello("alice", session=chat.sessions["alice"]))
    assert errors(effects) == [({1}, "replaced", None, None)]
    assert ("close", 1) in deliveries(effects)
    assert deliveries(effects).index(("close", 1)) == 1  # the error first, then the close
    for conn in (1, 2, 3):
        kinds = {type(f) for f in frames_to(effects, conn)}
        assert not kinds & {Joined, Parted}, conn
    assert chat.state.state_of(1) is ConnState.CLOSED
    assert chat.state.user_names() == ["alice", "bob"]


def test_takeover_without_resume_keeps_the_rooms_and_sends_roster_and_history_of_each(
    chat: Chat,
) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(1, Join("dev"))
    chat.say(2, "lobby", "hello")
    chat.state.connect(3, START)
    effects = chat.send(3, Hello("alice", session=chat.sessions["alice"]))
    welcome = frames_to(effects, 3)[0]
    assert isinstance(welcome, Welcome)
    assert (welcome.name, welcome.color, welcome.session) == ("alice", RED, chat.sessions["alice"])
    hello_msg = Message("lobby", 1, "bob", SKY, "hello", START)
    assert frames_to(effects, 3)[1:] == [
        Roster("lobby", (Member("alice", RED), Member("bob", SKY))),
        History("lobby", (hello_msg,)),
        Roster("dev", (Member("alice", RED),)),
        History("dev", ()),
    ]
    assert chat.state.members("dev") == ["alice"]
    # the room now reaches the new connection, not the old one
    (message,) = [e for e in chat.say(2, "lobby", "again") if isinstance(e, Send)]
    assert sorted(message.conns) == [2, 3]


def test_takeover_with_resume_parts_unnamed_rooms_joins_new_ones_and_sends_missed_messages(
    chat: Chat,
) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.send(1, Join("dev"))
    chat.send(2, Join("ops"))
    for i in range(3):
        chat.say(2, "lobby", f"l{i}")
    chat.state.connect(3, START)
    effects = chat.send(
        3, Hello("alice", session=chat.sessions["alice"], resume={"lobby": 1, "ops": 0})
    )
    deliveries_ = deliveries(effects)
    # dev was not named: left with reason part; ops was not joined before: joined
    assert ({3}, Parted("dev", "alice", "part")) in deliveries_
    assert ({2, 3}, Joined("ops", "alice", RED, START)) in deliveries_
    lobby_history = [h for h in history_frames(effects) if h.room == "lobby"]
    assert [seqs(h.messages) for h in lobby_history] == [[2, 3]]
    assert not [d for d in deliveries_ if isinstance(d[1], Joined) and d[1].room == "lobby"]
    assert sorted(chat.state.members("ops")) == ["alice", "bob"]
    assert chat.state.members("dev") == []
    assert frames_to(effects, 3)[0] == Welcome(
        "alice", RED, chat.sessions["alice"], chat.state.config.server_name, 65536, 30
    )


def test_takeover_with_a_wrong_session_is_name_taken(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.state.connect(2, START)
    effects = chat.send(2, Hello("alice", session="not-the-session"))
    assert errors(effects) == [({2}, "name_taken", None, None)]
    assert chat.state.state_of(1) is ConnState.ACTIVE


def test_reconnect_with_a_parked_session_keeps_color_and_session(chat: Chat) -> None:
    chat.sign_in(1, "zed")
    chat.sign_in(2, "alice")
    chat.state.disconnected(2, START)
    session = chat.sessions["alice"]
    effects = chat.sign_in(3, "alice", session=session)
    welcome = frames_to(effects, 3)[0]
    assert isinstance(welcome, Welcome)
    assert (welcome.color, welcome.session) == (SKY, session)


def test_unknown_session_is_ignored_and_a_new_one_handed_out(chat: Chat) -> None:
    effects = chat.sign_in(1, "alice", session="from-a-previous-server-life")
    welcome = frames_to(effects, 1)[0]
    assert isinstance(welcome, Welcome)
    assert welcome.session != "from-a-previous-server-life"
    assert Joined("lobby", "alice", RED, START) in frames_to(effects, 1)


def test_parked_session_expires_after_the_session_ttl() -> None:
    chat = Chat(session_ttl_s=60.0)
    chat.sign_in(1, "alice")
    old = chat.sessions["alice"]
    chat.state.disconnected(1, START)
    chat.state.tick(START + 61.0)
    chat.sign_in(2, "alice", session=old)
    assert chat.sessions["alice"] != old


def test_resume_joins_exactly_the_named_rooms_and_sends_messages_after_their_seq(
    chat: Chat,
) -> None:
    chat.store_messages("dev", 10)
    chat.store_messages("ops", 2)
    effects = chat.sign_in(1, "alice", resume={"dev": 7, "ops": 2})
    assert deliveries(effects)[1:] == [
        ({1}, Joined("dev", "alice", RED, START)),
        ({1}, Roster("dev", (Member("alice", RED),))),
        ({1}, History("dev", tuple(chat.store.all_messages("dev")[7:17]))),
        ({1}, Joined("ops", "alice", RED, START)),
        ({1}, Roster("ops", (Member("alice", RED),))),
        ({1}, History("ops", ())),
    ]
    assert chat.state.members("lobby") == []


def test_resume_with_empty_rooms_joins_the_default_room(chat: Chat) -> None:
    effects = chat.sign_in(1, "alice", resume={})
    assert Joined("lobby", "alice", RED, START) in frames_to(effects, 1)


def test_resume_with_more_than_1000_missed_sends_the_latest_1000_truncated(chat: Chat) -> None:
    stored = chat.store_messages("lobby", 1205)
    effects = chat.sign_in(1, "alice", resume={"lobby": 5})
    frames = history_frames(effects)
    resent = [m for h in frames for m in h.messages]
    assert resent == stored[-1000:]
    assert all(h.truncated for h in frames)
    assert [h.more for h in frames] == [True] * (len(frames) - 1) + [False]


def test_resume_with_exactly_1000_missed_is_not_truncated(chat: Chat) -> None:
    chat.store_messages("lobby", 1005)
    frames = history_frames(chat.sign_in(1, "alice", resume={"lobby": 5}))
    assert sum(len(h.messages) for h in frames) == 1000
    assert not any(h.truncated for h in frames)


# -- 8. limits and abuse ------------------------------------------------------


def test_flood_allows_a_burst_then_rate_limits_with_the_ref() -> None:
    chat = Chat(flood_rate_per_s=1.0, flood_burst=3)
    chat.sign_in(1, "alice")
    for _ in range(3):
        assert errors(chat.send(1, Rooms())) == []
    effects = chat.send(1, Rooms(ref="r4"))
    assert errors(effects) == [({1}, "rate_limited", "r4", None)]
    assert len(effects) == 1


def test_rate_limited_say_echoes_its_id_and_is_not_carried_out() -> None:
    chat = Chat(flood_rate_per_s=1.0, flood_burst=1)
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.say(1, "lobby", "one", id="c-1")
    effects = chat.say(1, "lobby", "two", id="c-2")
    assert len(effects) == 1
    (error,) = errors(effects)
    assert error[:2] == ({1}, "rate_limited")
    assert "c-2" in (error[2], error[3])
    assert chat.state.last_seq("lobby") == 1


def test_flood_bucket_refills_at_the_configured_rate() -> None:
    chat = Chat(flood_rate_per_s=2.0, flood_burst=2)
    chat.sign_in(1, "alice")
    chat.send(1, Rooms())
    chat.send(1, Rooms())
    assert errors(chat.send(1, Rooms()))[0][1] == "rate_limited"
    chat.now += 0.5
    assert errors(chat.send(1, Rooms())) == []
    assert errors(chat.send(1, Rooms()))[0][1] == "rate_limited"


def test_ping_and_pong_do_not_count_against_flood_control() -> None:
    chat = Chat(flood_rate_per_s=1.0, flood_burst=1)
    chat.sign_in(1, "alice")
    for i in range(20):
        assert deliveries(chat.send(1, Ping(i))) == [({1}, Pong(i))]
        assert chat.send(1, Pong(i)) == []
    assert errors(chat.send(1, Rooms())) == []


def test_hello_does_not_count_against_flood_control() -> None:
    chat = Chat(flood_rate_per_s=1.0, flood_burst=1)
    chat.state.connect(1, START)
    for _ in range(3):
        chat.send(1, Hello("alice", protocol=9))
    chat.send(1, Hello("alice"))
    assert errors(chat.send(1, Rooms())) == []


def test_malformed_requests_count_against_flood_control() -> None:
    chat = Chat(flood_rate_per_s=1.0, flood_burst=2)
    chat.sign_in(1, "alice")
    bad = b'{"type":"join","room":"NO"}'
    codes = [code for _ in range(3) for _, code, _, _ in errors(
        chat.state.receive_payload(1, bad, START))]
    assert codes == ["bad_room", "bad_room", "rate_limited"]


def test_flood_rate_0_disables_flood_control() -> None:
    chat = Chat(flood_rate_per_s=0.0, flood_burst=1)
    chat.sign_in(1, "alice")
    for _ in range(200):
        assert errors(chat.send(1, Rooms())) == []


def test_slow_consumer_gets_an_error_then_is_closed_and_its_rooms_see_it_leave(
    chat: Chat,
) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    effects = chat.state.drop_slow_consumer(1, START)
    assert errors(effects) == [({1}, "slow_consumer", None, None)]
    assert deliveries(effects)[1:] == [
        ({2}, Parted("lobby", "alice", "disconnected")),
        ("close", 1),
    ]
    assert chat.state.drop_slow_consumer(1, START) == []


def test_frame_too_large_is_answered_then_the_connection_closed(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    effects = chat.state.reject(1, FrameTooLarge(70_000, 65536), START)
    assert errors(effects) == [({1}, "frame_too_large", None, None)]
    assert deliveries(effects)[-1] == ("close", 1)


def test_shutdown_sends_a_notice_to_everyone_then_closes_every_connection(chat: Chat) -> None:
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    chat.state.connect(3, START)  # not signed in yet: told as well
    effects = chat.state.shutdown()
    assert len(effects) == 4
    notice = effects[0]
    assert isinstance(notice, Send) and sorted(notice.conns) == [1, 2, 3]
    assert isinstance(notice.frame, Notice) and notice.frame.code == "shutdown"
    assert sorted(e.conn for e in effects[1:] if isinstance(e, Close)) == [1, 2, 3]
    assert chat.state.receive(1, Rooms(), START) == []


# -- 1. ref echo and max_frame -------------------------------------------------


@pytest.mark.parametrize(
    ("request_obj", "reply_types"),
    [
        ({"type": "join", "room": "dev"}, {Roster, History}),
        ({"type": "who", "room": "lobby"}, {Roster}),
        ({"type": "history", "room": "lobby"}, {History}),
        ({"type": "rooms"}, {RoomList}),
        ({"type": "ping", "token": 1}, {Pong}),
        ({"type": "part", "room": "nowhere"}, {Error}),
        ({"type": "say", "room": "nowhere", "text": "x"}, {Error}),
        ({"type": "hello", "name": "alice", "protocol": 1}, {Error}),
    ],
)
@pytest.mark.parametrize("ref", ["a-ref", 42])
def test_every_direct_reply_echoes_the_ref(
    chat: Chat, request_obj: dict[str, Any], reply_types: set[type], ref: str | int
) -> None:
    chat.sign_in(1, "alice")
    effects = chat.send(1, {**request_obj, "ref": ref})
    replies = [f for f in frames_to(effects, 1) if type(f) in reply_types]
    assert replies
    assert all(getattr(f, "ref", None) == ref for f in replies)


def test_welcome_echoes_the_hello_ref(chat: Chat) -> None:
    welcome = chat.sign_in(1, "alice", ref="h-1")[0].frame
    assert isinstance(welcome, Welcome) and welcome.ref == "h-1"


def test_history_larger_than_max_frame_is_split_in_order_with_more() -> None:
    chat = Chat(max_frame=1024)
    chat.sign_in(1, "alice")
    sent = [m for i in range(30) for m in messages_in(chat.say(1, "lobby", f"{i:03d} " * 20))]
    frames = history_frames(chat.send(1, HistoryQuery("lobby", ref="h")))
    assert len(frames) > 1
    assert [m for h in frames for m in h.messages] == sent
    assert [h.more for h in frames] == [True] * (len(frames) - 1) + [False]
    assert all(h.room == "lobby" and h.ref == "h" for h in frames)
    assert all(len(to_payload(h)) <= 1024 for h in frames)


def test_roster_larger_than_max_frame_is_split_in_order_with_more() -> None:
    chat = Chat(max_frame=512)
    for conn in range(1, 31):
        chat.sign_in(conn, f"user-{conn:03d}")
    frames = [f for f in frames_to(chat.send(1, Who("lobby")), 1) if isinstance(f, Roster)]
    assert len(frames) > 1
    names = [m.name for r in frames for m in r.members]
    assert names == [f"user-{conn:03d}" for conn in range(1, 31)]
    assert [r.more for r in frames] == [True] * (len(frames) - 1) + [False]
    assert all(len(to_payload(r)) <= 512 for r in frames)


def test_the_largest_message_accepted_under_max_frame_still_fits_in_a_history_frame() -> None:
    chat = Chat(max_frame=1024)
    chat.sign_in(1, "alice")
    for size in range(700, 1000, 4):
        if errors(chat.say(1, "lobby", "x" * size)):
            break
    assert 1 < chat.state.last_seq("lobby") < 75  # some were accepted, then one was not
    effects = chat.send(1, HistoryQuery("lobby", ref="r" * 64))
    assert history_frames(effects)
    assert all(len(to_payload(e.frame)) <= 1024 for e in effects if isinstance(e, Send))


def test_parted_with_a_long_quit_reason_fits_max_frame() -> None:
    chat = Chat(max_frame=1024)
    chat.sign_in(1, "alice")
    chat.sign_in(2, "bob")
    effects = chat.send(1, Quit("bye " * 1000))
    (parted,) = [f for f in frames_to(effects, 2) if isinstance(f, Parted)]
    assert parted.reason and ("bye " * 1000).startswith(parted.reason)
    assert all(len(to_payload(e.frame)) <= 1024 for e in effects if isinstance(e, Send))


def test_error_for_an_unknown_type_fits_max_frame() -> None:
    chat = Chat(max_frame=1024)
    chat.sign_in(1, "alice")
    payload = b'{"type":"' + b"z" * 1000 + b'"}'
    effects = chat.state.receive_payload(1, payload, START)
    assert [code for _, code, _, _ in errors(effects)] == ["unknown_type"]
    assert all(len(to_payload(e.frame)) <= 1024 for e in effects if isinstance(e, Send))


def test_error_for_a_whisper_to_a_long_unknown_name_fits_max_frame() -> None:
    chat = Chat(max_frame=1024)
    chat.sign_in(1, "alice")
    payload = b'{"type":"whisper","text":"a","to":"' + b"z" * 980 + b'"}'
    effects = chat.state.receive_payload(1, payload, START)
    assert [code for _, code, _, _ in errors(effects)] == ["no_such_user"]
    assert all(len(to_payload(e.frame)) <= 1024 for e in effects if isinstance(e, Send))


def test_room_list_larger_than_max_frame_is_split_and_fits() -> None:
    chat = Chat(max_frame=512)
    chat.sign_in(1, "alice")
    names = [f"room-{i:02d}-" + "x" * 20 for i in range(30)]
    for name in names:
        chat.send(1, Join(name))
    frames = [f for f in frames_to(chat.send(1, Rooms(ref=1)), 1) if isinstance(f, RoomList)]
    assert [r.room for f in frames for r in f.rooms] == sorted([*names, "lobby"])
    assert all(len(to_payload(f)) <= 512 and f.ref == 1 for f in frames)


def test_say_whose_message_frame_would_exceed_max_frame_is_bad_request() -> None:
    chat = Chat(max_frame=1024)
    chat.sign_in(1, "alice")
    effects = chat.say(1, "lobby", "x" * 2000)
    assert [code for _, code, _, _ in errors(effects)] == ["bad_request"]
    assert chat.state.last_seq("lobby") == 0


def test_error_code_values_match_the_protocol() -> None:
    assert {code.value for code in ErrorCode} >= {
        "hello_required", "bad_state", "unsupported_protocol", "name_taken", "not_in_room",
        "no_such_room", "no_such_user", "rate_limited", "slow_consumer", "replaced",
    }
