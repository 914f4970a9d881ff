"""The Client against a real in-process server: entering rooms, parts in flight, snapshots.

The server runs on its own thread (``chat_server``); the client on the test's
loop. A raw protocol client watches what the server broadcasts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chattycat.client.client import (
    Client,
    ClientEvent,
    ClientState,
    Connected,
    PendingChanged,
    SessionChanged,
)
from chattycat.client.session import ENTRY_HISTORY_MESSAGES
from chattycat.net.loop import EventLoop
from chattycat.protocol.messages import History, Joined, Parted, Renamed
from tests.conftest import InProcessServer, StartInProcess

WAIT_S = 5.0


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def server(chat_server: StartInProcess) -> InProcessServer:
    return chat_server()


class Session:
    """A Client on ``loop`` and everything it emitted."""

    def __init__(self, loop: EventLoop, server: InProcessServer, name: str, **kwargs: object
                 ) -> None:
        self.loop = loop
        self.events: list[ClientEvent] = []
        self.client = Client(loop, name, port=server.port, on_event=self.events.append,
                             **kwargs)  # type: ignore[arg-type]
        self.client.start()

    def wait(self, condition: Callable[[], bool]) -> None:
        assert self.loop.run_until(condition, timeout_s=WAIT_S), "timed out"

    def of(self, kind: type) -> list[ClientEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def sessions(loop: EventLoop, server: InProcessServer) -> Iterator[Callable[..., Session]]:
    started: list[Session] = []

    def start(name: str, **kwargs: object) -> Session:
        session = Session(loop, server, name, **kwargs)
        started.append(session)
        return session

    yield start
    for session in started:
        session.close()


def test_rooms_given_at_start_are_entered_without_passing_through_the_lobby(
    server: InProcessServer, sessions: Callable[..., Session],
) -> None:
    # The reported defect: "join --room ops" showed the whole lobby history
    # and a join and part in the lobby before getting to #ops.
    lobby = server.user("watcher")
    lobby.say("lobby", "old lobby talk")
    poster = server.user("poster")
    poster.send({"type": "join", "room": "ops"})
    poster.recv_until("history", where=lambda f: f["room"] == "ops")
    total = ENTRY_HISTORY_MESSAGES + 20
    for n in range(1, total + 1):
        poster.say("ops", f"ops {n}")
    poster.recv_until("message", where=lambda f: f["text"] == f"ops {total}")
    lobby.drain()

    alice = sessions("alice", rooms=["ops"])
    alice.wait(lambda: alice.client.members("ops") != [] and bool(alice.of(History)))
    assert alice.client.rooms == ["ops"]
    [history] = alice.of(History)
    assert isinstance(history, History) and history.room == "ops"
    shown = [m.text for m in history.messages]
    assert shown == [f"ops {n}" for n in range(total - ENTRY_HISTORY_MESSAGES + 1, total + 1)]
    assert history.truncated  # the user can page back with /history
    assert not [e for e in alice.of(Joined) if e.room == "lobby"]  # type: ignore[attr-defined]
    lobby.expect_no_frame(0.3)  # no joined, no parted in the lobby
    assert [m.name for m in alice.client.members("ops")] == ["alice", "poster"]


def test_a_part_sent_before_the_join_is_answered_applies_after_it(
    server: InProcessServer, sessions: Callable[..., Session],
) -> None:
    watcher = server.user("watcher")
    alice = sessions("alice")
    alice.wait(lambda: alice.client.members("lobby") != [])
    alice.client.join("qa")
    alice.client.part("qa")  # the join has not even left yet
    assert alice.client.rooms == ["lobby"]
    alice.client.say("lobby", "after")
    alice.wait(lambda: alice.client.pending() == 0 and bool(alice.of(Parted)))
    assert alice.client.rooms == ["lobby"]
    # The server carried out both, in order, and alice is not in #qa.
    mine = [(type(e).__name__, e.room) for e in alice.events  # type: ignore[attr-defined]
            if isinstance(e, Joined | Parted) and e.name == "alice"]
    assert mine == [("Joined", "lobby"), ("Joined", "qa"), ("Parted", "qa")]
    watcher.send({"type": "rooms", "ref": "w"})
    reply = watcher.recv_until("room_list", where=lambda f: f.get("ref") == "w")
    assert [info["room"] for info in reply["rooms"]] == ["lobby"]


def test_snapshots_and_pending_counts_follow_the_events_that_change_them(
    server: InProcessServer, sessions: Callable[..., Session],
) -> None:
    alice = sessions("alice")
    alice.wait(lambda: alice.client.members("lobby") != [])
    connected = next(i for i, e in enumerate(alice.events) if isinstance(e, Connected))
    first = next(e for e in alice.events[connected:] if isinstance(e, SessionChanged))
    assert isinstance(first, SessionChanged) and first.me == "alice"
    alice.client.say("lobby", "one")
    assert alice.events[-1] == PendingChanged(1)
    alice.wait(lambda: alice.of(PendingChanged)[-1] == PendingChanged(0))
    alice.client.nick("al")
    alice.wait(lambda: alice.client.name == "al")
    renamed = next(i for i, e in enumerate(alice.events) if isinstance(e, Renamed))
    after = alice.events[renamed + 1]
    assert isinstance(after, SessionChanged) and after.me == "al"  # the event, then the state
    assert after.members("lobby")[0].name == "al"
    assert alice.client.snapshot() == after
    assert alice.client.state is ClientState.ONLINE
