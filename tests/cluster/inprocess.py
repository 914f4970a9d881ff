"""Two cluster nodes in the test process, standing in for one server in the protocol suite.

:class:`InProcessCluster` offers what the suite uses of
:class:`tests.conftest.InProcessServer` (``connect``, ``user``, ``host``,
``port``, ``call``, ``server.tick``), but each new client goes to the other
node: node 1, node 2, node 1, ... Each node is a real
:class:`~chattycat.server.app.ChatServer` with a
:class:`~chattycat.server.redis_store.RedisStore`, on its own
:class:`~chattycat.net.loop.EventLoop` thread; both share the clock the test
gives (a ``FakeClock`` moves both).

Messages a test means to find stored before it starts (the suite's
``prepare`` callbacks, written against the single server's store) are said
through the protocol instead, by their sender, so the cluster numbers and
stores them as it would any other; see :class:`StoreThroughWire`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chattycat.protocol.messages import Message
from chattycat.server.app import Clock, ServerConfig
from chattycat.server.config import RedisSettings
from chattycat.server.redis_store import RedisStore
from tests.cluster.conftest import wait_linked
from tests.conftest import InProcessServer, server_config, start_on_thread
from tests.redis_server import RedisServer
from tests.wire import WireClient

__all__ = ["BothNodes", "InProcessCluster", "StoreThroughWire", "start_node"]


class StoreThroughWire:
    """Takes a ``prepare`` callback's ``add`` calls; :meth:`replay` says them on a node."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def last_seq(self, room: str) -> int:
        return sum(1 for m in self.messages if m.room == room)

    def add(self, message: Message, *_session: object) -> None:
        assert message.seq == self.last_seq(message.room) + 1, "messages out of order"
        self.messages.append(message)

    def commit(self) -> None:
        pass

    def replay(self, server: InProcessServer) -> None:
        """Say every message, by its sender, in a room nobody else is in yet; then quit."""
        runs = itertools.groupby(self.messages, key=lambda m: (m.sender, m.room))
        for (sender, room), run in runs:
            batch = list(run)
            with WireClient(server.host, server.port) as client:
                client.hello(sender, resume={"rooms": {room: batch[0].seq - 1}})
                for message in batch:
                    client.say(room, message.text, **({"id": message.id} if message.id else {}))
                acks = [client.recv_until("message") for _ in batch]
                assert [a["seq"] for a in acks] == [m.seq for m in batch], "numbered otherwise"
                client.send({"type": "quit"})
                client.expect_eof()


def start_node(redis_url: str, node: str, config: ServerConfig,
               clock: Clock | None) -> InProcessServer:
    """A cluster node on its own loop thread (as ``chat_server`` runs a single server)."""
    loop, server, thread, (host, port) = start_on_thread(
        lambda loop: RedisStore(loop, RedisSettings(redis_url, node_name=node)),
        config, clock, f"chattycat-{node}")
    return InProcessServer(host, port, loop, server, thread, redis_url)


@dataclass
class BothNodes:
    """What the suite calls on ``server.server``: here, on each node, on its own thread."""

    nodes: list[InProcessServer]

    def tick(self) -> None:
        for node in self.nodes:
            node.call(node.server.tick)


class InProcessCluster:
    """Two in-process nodes sharing one Redis; new clients alternate between them."""

    def __init__(self, redis_server: RedisServer, config: dict[str, Any],
                 clock: Clock | None = None) -> None:
        config_ = server_config(config)
        self.nodes: list[InProcessServer] = []
        try:
            for name in ("node1", "node2"):
                self.nodes.append(start_node(redis_server.url, name, config_, clock))
                with redis_server.client() as db:
                    if not wait_linked(db, name):
                        raise RuntimeError(f"{name} did not connect to Redis")
        except BaseException:
            for node in self.nodes:
                node.stop()
            raise
        self.server = BothNodes(self.nodes)
        self.clients: list[WireClient] = []
        self._turn = itertools.count()

    @property
    def host(self) -> str:
        return self.nodes[0].host

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def connect(self, **kwargs: Any) -> WireClient:
        """A new client, on node 1 and node 2 in turn."""
        node = self.nodes[next(self._turn) % len(self.nodes)]
        client = node.connect(**kwargs)
        self.clients.append(client)
        return client

    def user(self, name: str, **hello: Any) -> WireClient:
        """A client signed in as ``name`` (initial join frames read)."""
        client = self.connect()
        client.hello(name, **hello)
        return client

    def call(self, function: Callable[[], Any], timeout_s: float = 5.0) -> Any:
        """Run ``function``: the suite passes ``server.server.tick``, which visits each node."""
        return function()

    def stop(self) -> None:
        for node in self.nodes:
            for client in node.clients:
                client.close()
        for node in self.nodes:
            node.stop()
