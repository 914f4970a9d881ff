"""The protocol conformance suite, a second time, against a two-node cluster.

Every test of ``tests/server/test_server_protocol.py`` is collected here
again, with its server fixtures replaced: ``chat_server``/``server`` give an
in-process two-node cluster (:mod:`tests.cluster.inprocess`) and
``server_process`` two ``chattycat serve --redis`` processes; every new
client connects to node 1 and node 2 in turn. To a client nothing may
change (PROTOCOL.md, section 9), so the tests are the same functions, not
copies. Those that cannot apply to a cluster are listed in ``NOT_ON_A_CLUSTER``
with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import PLAIN_ARGS, Cluster, StartCluster, needs_redis_server
from tests.cluster.inprocess import InProcessCluster, StoreThroughWire
from tests.conftest import STOP_TIMEOUT_S
from tests.redis_server import RedisServer
from tests.server import test_server_protocol as suite
from tests.wire import WireClient

NOT_ON_A_CLUSTER = {
    "test_idempotence_covers_the_last_1000_ids":
        "prepares a stored session through the SQLite store's own API (a session digest "
        "only that store knows); test_three_nodes.py tests the window across nodes",
}

for _name, _test in vars(suite).items():
    if _name.startswith("test_") and callable(_test) and _name not in NOT_ON_A_CLUSTER:
        globals()[_name] = _test


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the module; each test empties it (its nodes are gone by then)."""
    needs_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chat_server(shared_redis: RedisServer) -> Iterator[Callable[..., InProcessCluster]]:
    """As ``tests.conftest.chat_server``, but two nodes: ``start(prepare, clock, **config)``."""
    started: list[InProcessCluster] = []

    def start(prepare: Callable[[Any], None] | None = None, clock: Any = None,
              **config: Any) -> InProcessCluster:
        made = InProcessCluster(shared_redis, config, clock)
        started.append(made)
        if prepare is not None:
            stored = StoreThroughWire()
            prepare(stored)
            stored.replay(made.nodes[0])
        return made

    with shared_redis.client() as db:
        db.flushall()
    yield start
    for made in started:
        made.stop()
    with shared_redis.client() as db:
        db.flushall()


@pytest.fixture
def server(chat_server: Callable[..., InProcessCluster]) -> InProcessCluster:
    """The quiet two-node cluster (no flood control, no heartbeat)."""
    return chat_server()


class ProcessPair:
    """Two ``chattycat serve --redis`` processes, as the suite uses one ``ServerProcess``."""

    def __init__(self, made: Cluster) -> None:
        self.cluster = made
        self.nodes = made.nodes

    @property
    def log(self) -> str:
        return "\n".join(node.log for node in self.nodes)

    def connect(self, **kwargs: Any) -> WireClient:
        return self.cluster.connect(**kwargs)

    def send_signal(self, sig: int) -> None:
        for node in self.nodes:
            node.process.send_signal(sig)

    def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        codes = [node.process.wait(timeout_s) for node in self.nodes]
        return next((code for code in codes if code != 0), 0)

    def wait_for_log(self, pattern: str, timeout_s: float = 5.0) -> re.Match[str] | None:
        """The first match in any node's log (each node is waited for in turn)."""
        for node in self.nodes:
            found = node.process.wait_for_log(pattern, timeout_s)
            if found:
                return found
        return None


@pytest.fixture
def server_process(cluster: StartCluster, tmp_path: Path) -> Callable[..., ProcessPair]:
    """As ``tests.conftest.server_process``: ``start(*extra_args)``, two nodes instead of one."""

    def start(*extra: str) -> ProcessPair:
        return ProcessPair(cluster(2, *extra, base=PLAIN_ARGS))

    return start

