"""A client with several server addresses: a dead node costs one reconnect and nothing else.

Servers here are independent (each its own store): they stand for nodes of
one cluster only as far as the client can tell. What is tested is the
client's side: it moves to the next address at once, resumes its session
there (the hello carries the session and the resume seqs) and sends again
whatever was not acknowledged, with the original ids.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from chattycat.client.client import (
    Client,
    ClientState,
    Connected,
    ConnectionLost,
    Failed,
)
from chattycat.net.listener import Listener, listen
from chattycat.net.loop import EventLoop
from chattycat.server.app import ChatServer, ServerConfig
from chattycat.server.memory_store import MemoryStore
from tests.client.test_client import QUIET, Recorder
from tests.conftest import InProcessServer, StartInProcess, chattycat_command, child_env
from tests.scripted_server import ScriptedServer, welcome_for

WAIT_S = 5.0


class DyingNode(ScriptedServer):
    """A node that welcomes (session ``s1``), puts the user in lobby, and never acknowledges."""

    def __init__(self, nodes: list[DyingNode]) -> None:
        super().__init__()
        nodes.append(self)

    def answer(self, frame: dict[str, object]) -> None:
        if frame["type"] == "hello":
            self.send(welcome_for(frame, "node"))
            self.send({"type": "joined", "room": "lobby", "name": frame["name"],
                       "color": "#112233", "ts": 0})


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port where connections are refused (bound, not listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def live_server(loop: EventLoop) -> Iterator[ChatServer]:
    """A real server on the test's loop, history in memory."""
    server = ChatServer(loop, MemoryStore(), ServerConfig(host="127.0.0.1", port=0, rooms=QUIET))
    server.start()
    yield server
    stopped: list[bool] = []
    server.on_stopped = lambda: stopped.append(True)
    server.stop()
    loop.run_until(lambda: bool(stopped), timeout_s=WAIT_S)


def port_of(server: ChatServer | Listener) -> int:
    if isinstance(server, Listener):
        return server.addresses()[0][1]
    assert server._listener is not None
    return server._listener.addresses()[0][1]


def test_a_dead_first_address_costs_no_pause_before_the_second(
        loop: EventLoop, dead_port: int, live_server: ChatServer) -> None:
    events = Recorder()
    live = port_of(live_server)
    client = Client(loop, "alice", addresses=[("127.0.0.1", dead_port), ("127.0.0.1", live)],
                    on_event=events)
    client.start()
    try:
        assert loop.run_until(lambda: client.state is ClientState.ONLINE, timeout_s=WAIT_S)
        assert (client.host, client.port) == ("127.0.0.1", live)
        [lost] = events.of(ConnectionLost)
        assert lost.retry_in_s == 0.0  # type: ignore[attr-defined]
        assert f"127.0.0.1:{dead_port}" in lost.reason  # type: ignore[attr-defined]
        assert not events.of(Failed)
    finally:
        client.close()


def test_every_address_dead_fails_naming_each_and_why(loop: EventLoop, dead_port: int) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other_port = other.getsockname()[1]
        events = Recorder()
        client = Client(loop, "alice", on_event=events,
                        addresses=[("127.0.0.1", dead_port), ("127.0.0.1", other_port)])
        client.start()
        assert loop.run_until(lambda: client.state is ClientState.CLOSED, timeout_s=WAIT_S)
    [failed] = events.of(Failed)
    assert failed.reason == (  # type: ignore[attr-defined]
        f"cannot connect to 127.0.0.1:{dead_port}: connection refused; "
        f"127.0.0.1:{other_port}: connection refused")


def test_a_dying_node_hands_the_session_to_the_next_with_resume_and_the_same_ids(
        loop: EventLoop) -> None:
    first: list[DyingNode] = []
    second: list[DyingNode] = []
    node1 = listen(loop, lambda: DyingNode(first), "127.0.0.1", 0)
    node2 = listen(loop, lambda: DyingNode(second), "127.0.0.1", 0)
    events = Recorder()
    client = Client(loop, "alice", on_event=events,
                    addresses=[("127.0.0.1", port_of(node1)), ("127.0.0.1", port_of(node2))])
    client.start()
    try:
        assert loop.run_until(lambda: client.state is ClientState.ONLINE
                              and bool(client.members("lobby")), timeout_s=WAIT_S)
        ids = [client.say("lobby", "one"), client.say("lobby", "two")]
        assert loop.run_until(lambda: len(first[0].of_type("say")) == 2, timeout_s=WAIT_S)
        node1.close()
        assert first[0].transport is not None
        first[0].transport.abort()  # the node dies with both says unacknowledged
        assert loop.run_until(lambda: bool(second) and len(second[0].of_type("say")) == 2,
                              timeout_s=WAIT_S)
        [hello] = second[0].of_type("hello")
        assert hello["session"] == "s1" and hello["resume"] == {"rooms": {"lobby": 0}}
        assert [s["id"] for s in second[0].of_type("say")] == ids
        [lost] = events.of(ConnectionLost)
        assert lost.retry_in_s == 0.0  # type: ignore[attr-defined]
        assert [e.resumed for e in events.of(Connected)] == [False, True]  # type: ignore[attr-defined]
        assert client.pending() == 2  # this fake node acknowledges nothing either
    finally:
        client.close()
        node2.close()


def test_says_unacknowledged_by_a_dead_node_are_acknowledged_by_the_next(
        loop: EventLoop, live_server: ChatServer) -> None:
    dying: list[DyingNode] = []
    node1 = listen(loop, lambda: DyingNode(dying), "127.0.0.1", 0)
    events = Recorder()
    client = Client(loop, "alice", on_event=events, addresses=[
        ("127.0.0.1", port_of(node1)), ("127.0.0.1", port_of(live_server))])
    client.start()
    try:
        assert loop.run_until(lambda: client.state is ClientState.ONLINE
                              and bool(client.members("lobby")), timeout_s=WAIT_S)
        ids = [client.say("lobby", "one"), client.say("lobby", "two")]
        assert loop.run_until(lambda: len(dying[0].of_type("say")) == 2, timeout_s=WAIT_S)
        node1.close()
        assert dying[0].transport is not None
        dying[0].transport.abort()
        assert loop.run_until(lambda: client.pending() == 0, timeout_s=WAIT_S)
        assert client.port == port_of(live_server)
        shown = events.messages("lobby")
        assert [(m.id, m.text) for m in shown] == list(zip(ids, ["one", "two"], strict=True))
        assert [m.seq for m in shown] == [1, 2]
    finally:
        client.close()


def test_join_takes_a_server_list_and_skips_a_dead_address(
        chat_server: StartInProcess, dead_port: int) -> None:
    server: InProcessServer = chat_server()
    result = subprocess.run(
        chattycat_command("join", "--name", "bot", "--server", f"127.0.0.1:{dead_port}",
                          "--server", f"127.0.0.1:{server.port}"),
        input="hello\n", capture_output=True, text=True, timeout=30, env=child_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "[lobby] bot: hello" in result.stdout
