"""Cluster fixtures: a real ``redis-server`` and real ``chattycat serve --redis`` nodes.

``cluster`` is a factory: ``start(nodes=3, *extra_args)`` starts a Redis
(AOF on, a free loopback port, a temporary directory) and that many
``chattycat serve --redis URL --node-name node<i>`` child processes, and
waits until each has said ``listening on`` *and* has both of its Redis
connections up (a node answers ``internal`` until then). Everything it
started is stopped by PID at teardown. Without ``redis-server`` the tests
skip and say why.

Helpers for the tests: ``stored_messages`` (a room's stream as Redis holds
it), ``messages_until``, ``Tape`` (a raw client that keeps every frame it
read) and ``Member`` (a library client that keeps the events it was shown).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from chattycat.client.client import Client, ClientEvent, Connected
from chattycat.protocol.messages import Message
from tests.client.test_client import messages_shown
from tests.conftest import (
    LISTENING_RE,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    ServerProcess,
    _LineCollector,
    chattycat_command,
    child_env,
    wait_for,
)
from tests.redis_server import REDIS_MISSING, RedisServer, redis_binary
from tests.wire import Frame, WireClient

#: A node is linked once Redis lists both of its connections by these names.
LINK_NAMES = ("chattycat-{node}", "chattycat-{node}-wake")
LINK_TIMEOUT_S = 15.0
WAIT_S = 20.0
PLAIN_ARGS = ("--host", "127.0.0.1", "--port", "0", "--log-level", "info")
# Quiet nodes: no flood control and no heartbeat pings unless a test asks.
NODE_ARGS = (*PLAIN_ARGS, "--flood-rate", "0", "--heartbeat", "0")


@dataclass(frozen=True, slots=True)
class Stored:
    """One entry of a room's stream in Redis, as the cluster stored it."""

    seq: int
    sender: str
    text: str
    id: str | None


def linked_names(client: redis.Redis) -> set[str]:
    """The names of the connections Redis has now."""
    return {str(entry.get("name", "")) for entry in client.client_list()}


def wait_linked(client: redis.Redis, node: str, timeout_s: float = LINK_TIMEOUT_S) -> bool:
    """Wait until both of ``node``'s Redis connections are up; whether they came up."""
    wanted = {pattern.format(node=node) for pattern in LINK_NAMES}
    return wait_for(lambda: wanted <= linked_names(client), timeout_s, poll_s=0.02)


def stored_messages(client: redis.Redis, room: str) -> list[Stored]:
    """``XRANGE cc:room:<room> - +``: the room's messages as Redis holds them, by seq.

    Entry ids are ``0-<seq>``; fields as documented in
    ``chattycat/server/cluster/scripts.py`` (f: sender, t: text, i: id).
    """
    stored = []
    for entry_id, fields in client.xrange(f"cc:room:{room}", "-", "+"):
        values = {k.decode(): v.decode() for k, v in fields.items()}
        major, _, seq = entry_id.decode().partition("-")
        assert major == "0", f"entry id {entry_id!r} does not carry a seq"
        stored.append(Stored(int(seq), values["f"], values["t"], values.get("i") or None))
    return stored


@dataclass
class Node:
    """One ``chattycat serve --redis`` child process of a cluster."""

    name: str
    process: ServerProcess
    clients: list[WireClient] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return self.process.log

    @property
    def running(self) -> bool:
        return self.process.proc.poll() is None

    def connect(self, **kwargs: Any) -> WireClient:
        client = WireClient("127.0.0.1", self.port, **kwargs)
        self.clients.append(client)
        return client

    def user(self, name: str, **hello: Any) -> WireClient:
        """A client signed in as ``name`` here (its initial join frames read)."""
        client = self.connect()
        client.hello(name, **hello)
        return client

    def kill(self) -> None:
        """SIGKILL by PID (a crash: nothing is said to anyone), then reap it."""
        if self.running:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM by PID and a bounded wait; its exit status."""
        return self.process.stop(signal.SIGTERM)

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()


class Cluster:
    """A Redis and the ``chattycat serve`` nodes sharing it."""

    def __init__(self, redis_server: RedisServer, workdir: Path, args: tuple[str, ...],
                 base: tuple[str, ...] = NODE_ARGS) -> None:
        self.redis = redis_server
        self.workdir = workdir
        self.args = args
        self.base = base
        self.nodes: list[Node] = []
        self._client = redis_server.client()
        self._spread = itertools.count()

    @property
    def db(self) -> redis.Redis:
        """A blocking client of the cluster's Redis, for assertions."""
        return self._client

    def start_node(self, *extra: str, name: str | None = None, linked: bool = True) -> Node:
        """One more node; with ``linked``, wait until its Redis connections are up."""
        name = name or f"node{len(self.nodes) + 1}"
        args = chattycat_command("serve", *self.base, "--redis", self.redis.url,
                                 "--node-name", name, *self.args, *extra)
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=child_env(), cwd=self.workdir,
        )
        process = ServerProcess(proc, args, Path(), _LineCollector(proc.stderr),
                                _LineCollector(proc.stdout))
        node = Node(name, process)
        self.nodes.append(node)
        match = process.stderr.wait_for(LISTENING_RE, START_TIMEOUT_S)
        if match is None:
            pytest.fail(f"node {name} did not start:\n{process.log}")
        process.port = int(match.group(1))
        if linked and not wait_linked(self.db, name):
            pytest.fail(f"node {name} did not connect to Redis:\n{process.log}")
        return node

    def connect(self, **kwargs: Any) -> WireClient:
        """A new client, on the nodes in turn."""
        return self.next_node().connect(**kwargs)

    def next_node(self) -> Node:
        live = [node for node in self.nodes if node.running]
        return live[next(self._spread) % len(live)]

    def addresses(self) -> list[str]:
        """Every node's address as ``--server`` takes it, in node order."""
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    def stored(self, room: str) -> list[Stored]:
        return stored_messages(self.db, room)

    def close(self) -> None:
        """Stop every node (by PID) and Redis; bounded."""
        for node in self.nodes:
            node.close_clients()
        for node in self.nodes:
            if node.running:
                node.process.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.process.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                node.process.proc.kill()
                node.process.proc.wait(STOP_TIMEOUT_S)
        self._client.close()
        self.redis.stop()


StartCluster = Callable[..., Cluster]


def needs_redis_server() -> None:
    if redis_binary() is None:
        pytest.skip(REDIS_MISSING)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[StartCluster]:
    """Factory: ``start(nodes=3, *extra_args, base=NODE_ARGS) -> Cluster`` (a fresh Redis)."""
    needs_redis_server()
    started: list[Cluster] = []

    def start(nodes: int = 3, *extra: str, base: tuple[str, ...] = NODE_ARGS) -> Cluster:
        workdir = tmp_path / f"cluster{len(started)}"
        workdir.mkdir()
        made = Cluster(RedisServer(workdir / "redis").start(), workdir, extra, base)
        started.append(made)
        for _ in range(nodes):
            made.start_node()
        return made

    yield start
    for made in started:
        made.close()


# -- helpers for the tests ----------------------------------------------------------


def messages_until(client: WireClient, room: str, count: int,
                   timeout_s: float = WAIT_S) -> list[Frame]:
    """The next ``count`` ``message`` frames of ``room`` (other frames skipped)."""
    deadline = time.monotonic() + timeout_s
    got: list[Frame] = []
    while len(got) < count:
        try:
            frame = client.recv(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise TimeoutError(f"{len(got)} of {count} messages of #{room} arrived; "
                               f"last seqs {[m['seq'] for m in got[-5:]]}") from None
        if frame["type"] == "message" and frame["room"] == room:
            got.append(frame)
    return got


def joined_room(client: WireClient, room: str) -> list[Frame]:
    """Join ``room``; the frames up to its (last) history part."""
    client.send({"type": "join", "room": room})
    return client.recv_all_until("history", where=lambda f: f["room"] == room
                                 and not f.get("more"))


@dataclass
class Member:
    """A library client that knows every node's address, and what it was shown."""

    client: Client
    events: list[ClientEvent] = field(default_factory=list)

    def shown(self, room: str) -> list[Message]:
        """Messages shown for ``room``, live and from history, in order."""
        return messages_shown(self.events, room)

    def resumed(self) -> bool:
        return any(isinstance(e, Connected) and e.resumed for e in self.events)


class Tape:
    """Everything a raw client received, kept while waiting for particular frames."""

    def __init__(self, client: WireClient) -> None:
        self.client = client
        self.frames: list[Frame] = []

    def until(self, type_: str, timeout_s: float = WAIT_S,
              where: Callable[[Frame], bool] | None = None) -> Frame:
        self.frames += self.client.recv_all_until(type_, timeout_s, where)
        return self.frames[-1]

    def messages(self, room: str = "lobby") -> list[Frame]:
        return [f for f in self.frames if f["type"] == "message" and f["room"] == room]

    def until_messages(self, count: int, room: str = "lobby", timeout_s: float = WAIT_S) -> None:
        """Read on until ``count`` messages of ``room`` have arrived in all."""
        missing = count - len(self.messages(room))
        if missing > 0:
            self.frames += messages_until(self.client, room, missing, timeout_s)
