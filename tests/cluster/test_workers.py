"""``chattycat serve --redis URL --workers 2``: one port, two processes, one chat.

The kernel spreads connections over the workers (``SO_REUSEPORT``); which
worker holds a user is read from the cluster's own record in Redis
(``cc:users``, see ``chattycat/server/cluster/scripts.py``). A worker killed
with SIGKILL is restarted by the supervisor, and its users' clients, which
know only the one address, reconnect to it and resume.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator

import pytest

from chattycat.client.client import Client, ClientState, Connected
from chattycat.net.loop import EventLoop
from tests.cluster.conftest import Member, stored_messages, wait_linked
from tests.conftest import ServerProcess, StartServer, wait_for
from tests.redis_server import RedisServer

WAIT_S = 20.0
MAX_CLIENTS = 24


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


def worker_pids(server: ServerProcess) -> dict[int, list[int]]:
    """Every pid each worker index has had, from the supervisor's log, in order."""
    pids: dict[int, list[int]] = {}
    for index, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", server.log):
        pids.setdefault(int(index), []).append(int(pid))
    return pids


def nodes_of_users(redis_server: RedisServer) -> dict[str, str]:
    """Signed-in user (name key) -> the node holding it, as the cluster records it."""
    with redis_server.client() as db:
        return {key.decode(): json.loads(value)["node"]
                for key, value in db.hgetall("cc:users").items()}


def test_clients_spread_over_two_workers_chat_as_one_and_survive_a_killed_worker(
        server_process: StartServer, redis_server: RedisServer, loop: EventLoop) -> None:
    server = server_process("--host", "127.0.0.1", "--port", "0", "--redis", redis_server.url,
                            "--workers", "2", "--node-name", "w", "--heartbeat", "0",
                            "--flood-rate", "0", base_args=False)
    with redis_server.client() as db:
        assert all(wait_linked(db, f"w-{i}") for i in (1, 2)), server.log
    members: list[Member] = []
    while len(set(nodes_of_users(redis_server).values())) < 2:  # until both hold someone
        assert len(members) < MAX_CLIENTS, "every connection went to the same worker"
        made = Member(Client(loop, f"user{len(members)}", rooms=["lobby"],
                             addresses=[("127.0.0.1", server.port)]))
        made.client.on_event = made.events.append
        made.client.start()
        members.append(made)
        assert loop.run_until(lambda m=made: m.client.state is ClientState.ONLINE, WAIT_S)
    count = len(members)
    assert loop.run_until(lambda: all(len(m.client.members("lobby")) == count
                                      for m in members), WAIT_S)
    for m in members:
        m.client.say("lobby", f"{m.client.name} before")
    assert loop.run_until(lambda: all(len(m.shown("lobby")) == count for m in members), WAIT_S)

    holders = nodes_of_users(redis_server)
    victims = [m for m in members if holders[m.client.name] == "w-1"]
    first = worker_pids(server)[1][0]
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: len(worker_pids(server).get(1, [])) == 2, WAIT_S), server.log
    for m in members:
        m.client.say("lobby", f"{m.client.name} after")
    assert loop.run_until(lambda: all(m.client.pending() == 0 for m in members)
                          and all(any(isinstance(e, Connected) and e.resumed for e in v.events)
                                  for v in victims), WAIT_S)
    assert loop.run_until(lambda: all(len(m.shown("lobby")) >= 2 * count for m in members),
                          WAIT_S)
    with redis_server.client() as db:
        assert wait_linked(db, "w-1"), server.log  # the new worker joined the cluster
        stored = [(s.seq, s.sender, s.text) for s in stored_messages(db, "lobby")]
    assert [seq for seq, _, _ in stored] == list(range(1, 2 * count + 1))
    for m in members:
        assert [(s.seq, s.sender, s.text) for s in m.shown("lobby")] == stored, m.client.name
        m.client.close()
    assert server.stop(signal.SIGTERM) == 0
