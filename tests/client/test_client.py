"""The Client against a real ChatServer on the same event loop, over 127.0.0.1 sockets."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chattycat.client.client import (
    Client,
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
)
from chattycat.net.listener import listen
from chattycat.net.loop import EventLoop
from chattycat.protocol.messages import Error, History, Message, Notice, Roster, Whisper
from chattycat.server.app import ChatServer, ServerConfig
from chattycat.server.sqlite_store import SQLiteStore
from chattycat.server.state import RoomsConfig
from tests.scripted_server import ScriptedServer, welcome_for

WAIT_S = 5.0
QUIET = RoomsConfig(flood_rate_per_s=0, heartbeat_s=0, handshake_timeout_s=5.0)


def messages_shown(events: list[ClientEvent], room: str) -> list[Message]:
    """Of a client's ``events``, the messages shown for ``room``, live and from
    history, in order."""
    shown: list[Message] = []
    for event in events:
        if isinstance(event, Message) and event.room == room:
            shown.append(event)
        elif isinstance(event, History) and event.room == room:
            shown.extend(event.messages)
    return shown


@dataclass
class Recorder:
    """Collects a client's events."""

    events: list[ClientEvent] = field(default_factory=list)

    def __call__(self, event: ClientEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[ClientEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def messages(self, room: str) -> list[Message]:
        """Messages shown for ``room``, live and from history, in order."""
        return messages_shown(self.events, room)


class Harness:
    """One loop, one server (restartable on the same port and history file), clients."""

    def __init__(self, loop: EventLoop, db: Path, rooms: RoomsConfig) -> None:
        self.loop = loop
        self.db = db
        self.rooms = rooms
        self.port = 0
        self.server: ChatServer | None = None
        self.store: SQLiteStore | None = None
        self.clients: list[Client] = []
        self.start_server()

    def start_server(self) -> None:
        self.store = SQLiteStore(self.db)
        config = ServerConfig(host="127.0.0.1", port=self.port, rooms=self.rooms)
        self.server = ChatServer(self.loop, self.store, config)
        self.port = self.server.start()[0][1]

    def stop_server(self) -> None:
        server, store = self.server, self.store
        assert server is not None and store is not None
        stopped: list[bool] = []
        server.on_stopped = lambda: stopped.append(True)
        server.stop()
        assert self.loop.run_until(lambda: bool(stopped), timeout_s=WAIT_S)
        store.close()
        self.server = self.store = None

    def client(self, name: str, **kwargs: object) -> tuple[Client, Recorder]:
        recorder = Recorder()
        client = Client(self.loop, name, port=self.port, on_event=recorder, **kwargs)  # type: ignore[arg-type]
        self.clients.append(client)
        client.start()
        return client, recorder

    def online(self, name: str, **kwargs: object) -> tuple[Client, Recorder]:
        """A client that is connected and in its first room."""
        client, recorder = self.client(name, **kwargs)
        first = [*kwargs.get("rooms", ()), "lobby"][0]  # type: ignore[misc]
        self.wait(lambda: client.state is ClientState.ONLINE and bool(client.members(first)))
        return client, recorder

    def wait(self, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        assert self.loop.run_until(condition, timeout_s=timeout_s), "timed out"


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


def _harness(loop: EventLoop, tmp_path: Path, rooms: RoomsConfig) -> Iterator[Harness]:
    harness = Harness(loop, tmp_path / "history.db", rooms)
    yield harness
    for client in harness.clients:
        client.close()
    if harness.server is not None:
        harness.stop_server()


@pytest.fixture
def chat(loop: EventLoop, tmp_path: Path) -> Iterator[Harness]:
    yield from _harness(loop, tmp_path, QUIET)


@pytest.fixture
def strict_chat(loop: EventLoop, tmp_path: Path) -> Iterator[Harness]:
    """Flood control at 2 requests/s, burst 2."""
    yield from _harness(loop, tmp_path, RoomsConfig(flood_rate_per_s=2, flood_burst=2,
                                                    heartbeat_s=0))


def test_two_clients_chat_and_the_echo_acknowledges(chat: Harness) -> None:
    alice, alice_events = chat.online("alice")
    bob, bob_events = chat.online("bob")
    message_id = alice.say("lobby", "hello bob")
    assert alice.pending() == 1
    chat.wait(lambda: alice.pending() == 0)
    chat.wait(lambda: bool(bob_events.messages("lobby")))
    [seen] = bob_events.messages("lobby")
    assert (seen.sender, seen.text, seen.id) == ("alice", "hello bob", message_id)
    assert alice.last_seq("lobby") == seen.seq == bob.last_seq("lobby")
    assert isinstance(alice_events.events[0], Connected)
    assert alice.color is not None and alice.color.startswith("#")


def test_action_messages_carry_the_flag(chat: Harness) -> None:
    alice, _ = chat.online("alice")
    _, bob_events = chat.online("bob")
    alice.say("lobby", "waves", action=True)
    chat.wait(lambda: bool(bob_events.messages("lobby")))
    assert bob_events.messages("lobby")[0].action


def test_whisper_reaches_only_its_target_and_is_acknowledged(chat: Harness) -> None:
    alice, alice_events = chat.online("alice")
    _, bob_events = chat.online("bob")
    _, carol_events = chat.online("carol")
    alice.whisper("bob", "psst")
    chat.wait(lambda: bool(bob_events.of(Whisper)) and alice.pending() == 0)
    [whisper] = bob_events.of(Whisper)
    assert (whisper.sender, whisper.to, whisper.text) == ("alice", "bob", "psst")  # type: ignore[attr-defined]
    assert alice_events.of(Whisper)
    chat.loop.run_until(lambda: False, timeout_s=0.1)
    assert not carol_events.of(Whisper)


def test_nick_renames_self_and_in_others_member_lists(chat: Harness) -> None:
    alice, _ = chat.online("alice")
    bob, _ = chat.online("bob")
    chat.wait(lambda: len(alice.members("lobby")) == 2)
    alice.nick("al")
    chat.wait(lambda: alice.name == "al")
    chat.wait(lambda: [m.name for m in bob.members("lobby")] == ["al", "bob"])


def test_join_and_part_update_rooms_and_members(chat: Harness) -> None:
    alice, _ = chat.online("alice")
    bob, _ = chat.online("bob")
    alice.join("dev")
    bob.join("dev")
    chat.wait(lambda: [m.name for m in alice.members("dev")] == ["alice", "bob"])
    assert alice.rooms == ["lobby", "dev"]
    bob.part("dev")
    chat.wait(lambda: [m.name for m in alice.members("dev")] == ["alice"])
    assert bob.rooms == ["lobby"]
    assert bob.members("dev") == []


def test_rooms_given_at_start_are_joined_after_welcome_instead_of_the_default(
    chat: Harness,
) -> None:
    alice, _ = chat.client("alice", rooms=["dev", "ops"])
    assert alice.rooms == ["dev", "ops"]
    chat.wait(lambda: bool(alice.members("dev")) and bool(alice.members("ops")))
    chat.wait(lambda: set(alice.rooms) == {"dev", "ops"})
    assert chat.server is not None
    chat.wait(lambda: chat.server is not None and chat.server.state.members("lobby") == [])


def test_the_default_room_is_kept_when_asked_for(chat: Harness) -> None:
    alice, _ = chat.client("alice", rooms=["dev", "lobby"])
    chat.wait(lambda: bool(alice.members("dev")) and bool(alice.members("lobby")))
    assert set(alice.rooms) == {"dev", "lobby"}


def test_says_before_the_connection_is_up_are_sent(chat: Harness) -> None:
    alice, _ = chat.client("alice", rooms=["dev"])
    alice.say("dev", "early bird")
    _, bob_events = chat.online("bob", rooms=["dev"])
    chat.wait(lambda: alice.pending() == 0)
    chat.wait(lambda: [m.text for m in bob_events.messages("dev")] == ["early bird"])


def test_refused_say_is_dropped_from_pending_with_an_error(chat: Harness) -> None:
    alice, events = chat.online("alice")
    message_id = alice.say("dev", "nobody here")
    chat.wait(lambda: bool(events.of(Error)))
    [error] = events.of(Error)
    assert error.code == "not_in_room" and error.id == message_id  # type: ignore[attr-defined]
    assert alice.pending() == 0


def test_who_rooms_and_history_paging(chat: Harness) -> None:
    alice, _ = chat.online("alice")
    for n in range(1, 8):
        alice.say("lobby", f"m{n}")
    chat.wait(lambda: alice.pending() == 0)
    bob, events = chat.online("bob")
    chat.wait(lambda: bob.last_seq("lobby") == 7)
    assert bob.oldest_seq("lobby") == 1
    bob.who("lobby")
    bob.list_rooms()
    bob.history("lobby", before=4, limit=2)
    chat.wait(lambda: len(events.of(History)) == 2 and bool(events.of(Roster)))
    page = events.of(History)[-1]
    assert [m.seq for m in page.messages] == [2, 3]  # type: ignore[attr-defined]
    assert bob.last_seq("lobby") == 7  # a page back does not move the live position


def test_rate_limited_says_are_retried_and_arrive_once_in_order(strict_chat: Harness) -> None:
    alice, alice_events = strict_chat.online("alice")
    _, bob_events = strict_chat.online("bob")
    for n in range(8):
        alice.say("lobby", f"line {n}")
    strict_chat.wait(lambda: alice.pending() == 0, timeout_s=15)
    strict_chat.wait(lambda: len(bob_events.messages("lobby")) == 8)
    texts = [m.text for m in bob_events.messages("lobby")]
    assert sorted(texts) == [f"line {n}" for n in range(8)]
    assert not [e for e in alice_events.of(Error) if e.code == "rate_limited"]  # type: ignore[attr-defined]


def test_name_taken_fails_and_closes(chat: Harness) -> None:
    chat.online("alice")
    twin, events = chat.client("alice")
    chat.wait(lambda: twin.state is ClientState.CLOSED)
    [failed] = events.of(Failed)
    assert failed.code == "name_taken"  # type: ignore[attr-defined]
    assert "alice" in failed.reason  # type: ignore[attr-defined]


def test_unreachable_server_fails_naming_host_and_port(loop: EventLoop) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        events = Recorder()
        client = Client(loop, "alice", port=port, on_event=events)
        client.start()
        assert loop.run_until(lambda: client.state is ClientState.CLOSED, timeout_s=WAIT_S)
    [failed] = events.of(Failed)
    assert failed.reason == f"cannot connect to 127.0.0.1:{port}: connection refused"  # type: ignore[attr-defined]


def test_quit_emits_closed_and_the_room_sees_the_reason(chat: Harness) -> None:
    alice, alice_events = chat.online("alice")
    bob, _ = chat.online("bob")
    chat.wait(lambda: len(alice.members("lobby")) == 2)
    bob.quit("bye")
    assert bob.state is ClientState.CLOSED
    chat.wait(lambda: [m.name for m in alice.members("lobby")] == ["alice"])
    assert bob.drained()
    assert any(getattr(e, "reason", None) == "bye" for e in alice_events.events)
    closed = [e for e in alice_events.events if isinstance(e, Closed)]
    assert not closed


def test_server_restart_resumes_without_loss_or_duplicates(chat: Harness) -> None:
    alice, alice_events = chat.online("alice")
    bob, bob_events = chat.online("bob")
    alice.say("lobby", "before")
    chat.wait(lambda: bob.last_seq("lobby") == 1)
    chat.stop_server()
    chat.wait(lambda: bool(bob_events.of(ConnectionLost)) and bool(alice_events.of(Notice)))
    assert bob.state is ClientState.WAITING_TO_RETRY and bob.retry_in_s is not None
    assert bob.retry_in_s <= 1.0
    alice.say("lobby", "while away 1")  # typed while disconnected
    alice.say("lobby", "while away 2")
    chat.start_server()
    chat.wait(lambda: alice.pending() == 0 and bob.last_seq("lobby") == 3, timeout_s=10)
    assert [m.text for m in bob_events.messages("lobby")] == ["before", "while away 1",
                                                             "while away 2"]
    assert [m.seq for m in alice_events.messages("lobby")] == [1, 2, 3]
    resumed = [e for e in bob_events.of(Connected) if e.resumed]  # type: ignore[attr-defined]
    assert resumed and bob.rooms == ["lobby"]


# -- a scripted fake server, for what a real one does only on a timer ---------------


class FakeServer(ScriptedServer):
    """Sends a welcome and a ping; records what the client sends."""

    def __init__(self, heartbeat: float) -> None:
        super().__init__()
        self.heartbeat = heartbeat

    def answer(self, frame: dict[str, object]) -> None:
        if frame["type"] == "hello":
            self.send(welcome_for(frame, "fake", self.heartbeat))
            self.send({"type": "ping", "token": "tok-7"})


def test_server_ping_is_answered_with_the_same_token(loop: EventLoop) -> None:
    fakes: list[FakeServer] = []
    listener = listen(loop, lambda: fakes.append(FakeServer(0)) or fakes[-1], "127.0.0.1", 0)
    client = Client(loop, "alice", port=listener.addresses()[0][1])
    client.start()
    try:
        assert loop.run_until(lambda: any(f["type"] == "pong" for f in fakes[0].frames)
                              if fakes else False, timeout_s=WAIT_S)
        assert {"type": "pong", "token": "tok-7"} in fakes[0].frames
    finally:
        client.close()
        listener.close()


def test_a_silent_server_is_treated_as_lost_after_two_heartbeats(loop: EventLoop) -> None:
    fakes: list[FakeServer] = []
    listener = listen(loop, lambda: fakes.append(FakeServer(0.2)) or fakes[-1], "127.0.0.1", 0)
    events = Recorder()
    client = Client(loop, "alice", port=listener.addresses()[0][1], on_event=events)
    client.start()
    try:
        assert loop.run_until(lambda: bool(events.of(ConnectionLost)), timeout_s=WAIT_S)
        [lost] = events.of(ConnectionLost)
        assert "no data from the server" in lost.reason  # type: ignore[attr-defined]
        # Before giving up it asked the server whether it is still there.
        assert any(f["type"] == "ping" for f in fakes[0].frames)
    finally:
        client.close()
        listener.close()


def test_client_over_tls(loop: EventLoop, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    store = SQLiteStore(tmp_path / "tls.db")
    server = ChatServer(loop, store, ServerConfig(host="127.0.0.1", port=0, rooms=QUIET,
                                                  ssl_context=server_context))
    port = server.start()[0][1]
    events = Recorder()
    client = Client(loop, "alice", port=port, ssl_context=client_context,
                    server_hostname="localhost", on_event=events)
    untrusted_events = Recorder()
    untrusted = Client(loop, "bob", port=port, ssl_context=ssl.create_default_context(),
                       server_hostname="localhost", on_event=untrusted_events)
    try:
        client.start()
        untrusted.start()
        client.say("lobby", "secret")
        assert loop.run_until(lambda: client.pending() == 0 and bool(events.messages("lobby")),
                              timeout_s=WAIT_S)
        assert loop.run_until(lambda: untrusted.state is ClientState.CLOSED, timeout_s=WAIT_S)
        [failed] = untrusted_events.of(Failed)
        assert "certificate" in failed.reason  # type: ignore[attr-defined]
    finally:
        client.close()
        untrusted.close()
        stopped: list[bool] = []
        server.on_stopped = lambda: stopped.append(True)
        server.stop()
        loop.run_until(lambda: bool(stopped), timeout_s=WAIT_S)
        store.close()


def test_fired_heartbeat_timers_are_not_kept_by_the_client_or_the_server(
    loop: EventLoop, tmp_path: Path
) -> None:
    # Both reschedule a timer many times a second for as long as they run; a
    # handle kept per firing would grow without bound.
    rooms = RoomsConfig(flood_rate_per_s=0, heartbeat_s=0.2, handshake_timeout_s=0.5)
    for harness in _harness(loop, tmp_path, rooms):
        client, _ = harness.online("alice")
        loop.run_until(lambda: False, timeout_s=1.0)
        assert client.state is ClientState.ONLINE
        assert harness.server is not None
        assert list(harness.server._timers) == ["tick"]
        assert list(client._timers) == ["watchdog"]
