"""``chattycat serve --redis URL --workers 2``, end to end, against a real Redis.

The supervisor and its workers are real processes; the test finds the port
in the supervisor's own ``listening on`` line, as a user would. Skipped where
redis-server is not installed.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.conftest import ServerProcess, StartServer, wait_for
from tests.redis_server import RedisServer
from tests.server.test_supervisor import alive
from tests.wire import WireClient

WAIT_S = 15.0


def worker_pids(server: ServerProcess) -> dict[int, list[int]]:
    """Every pid each worker index has had, from the supervisor's log, in order."""
    pids: dict[int, list[int]] = {}
    for index, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", server.log):
        pids.setdefault(int(index), []).append(int(pid))
    return pids


def signed_in(server: ServerProcess, name: str) -> WireClient:
    """A client signed in as ``name``, once the node it reached has joined the cluster.

    A worker logs ``listening on`` before its Redis connection is up; until
    then it answers ``internal`` ("try again"), and a client tries again.
    """
    deadline = time.monotonic() + WAIT_S
    while True:
        client = server.connect()
        client.send({"type": "hello", "name": name, "protocol": 1})
        reply = client.recv()
        if reply["type"] == "welcome":
            client.recv_until("history")  # the default room's join frames
            return client
        client.close()
        assert reply.get("code") == "internal" and time.monotonic() < deadline, reply
        time.sleep(0.1)


def test_two_workers_share_the_port_and_a_killed_worker_is_restarted(
        server_process: StartServer, redis_server: RedisServer) -> None:
    pytest.importorskip("chattycat.server.redis_store")
    server = server_process("--host", "127.0.0.1", "--port", "0", "--redis", redis_server.url,
                            "--workers", "2", "--heartbeat", "0", "--flood-rate", "0",
                            base_args=False)
    for index in (1, 2):
        assert server.wait_for_log(rf"^\[worker {index}\] .*listening on 127\.0\.0\.1:"
                                   rf"{server.port} ", WAIT_S), server.log
    first = worker_pids(server)
    assert sorted(first) == [1, 2]

    alice, bob = signed_in(server, "alice"), signed_in(server, "bob")
    alice.say("lobby", "hello bob")
    said = bob.recv_until("message", where=lambda f: f["from"] == "alice")
    assert said["text"] == "hello bob"

    victim = first[1][0]
    os.kill(victim, signal.SIGKILL)
    assert server.wait_for_log(rf"WARNING chattycat.supervisor: worker 1 \(pid {victim}\) "
                               r"killed by SIGKILL", WAIT_S), server.log
    assert wait_for(lambda: len(worker_pids(server).get(1, [])) == 2, WAIT_S), server.log
    assert alive(worker_pids(server)[1][1]) and alive(first[2][0])

    # The service still takes new users, whichever worker the kernel picks.
    carol = signed_in(server, "carol")
    carol.say("lobby", "still here")
    assert carol.recv_until("message", where=lambda f: f["from"] == "carol")["seq"] >= 2

    assert server.stop(signal.SIGTERM) == 0
    every = [pid for pids in worker_pids(server).values() for pid in pids]
    assert wait_for(lambda: not any(alive(pid) for pid in every), WAIT_S)
