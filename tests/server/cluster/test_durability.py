"""``--redis-durability``: ``always`` only on a Redis that fsyncs every write."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.redis_server import RedisServer, redis_binary

pytestmark = pytest.mark.skipif(
    redis_binary() is None, reason="redis-server is not installed (Debian package redis-server)")


def test_always_is_refused_on_a_redis_that_fsyncs_once_a_second(
        tmp_path: Path, server_process: StartServer) -> None:
    with RedisServer(tmp_path / "redis", appendfsync="everysec").start() as redis:
        server = server_process("--redis", redis.url, "--redis-durability", "always",
                                base_args=False, wait_ready=False)
        assert server.wait(10.0) == 1
        lines = [line for line in server.log.splitlines() if line.strip()]
        assert lines[-1].startswith("Error: --redis-durability always needs Redis")
        assert "appendfsync everysec" in lines[-1]
        assert "Traceback" not in server.log


def test_always_acknowledges_on_a_redis_that_fsyncs_every_write(
        tmp_path: Path, server_process: StartServer) -> None:
    with RedisServer(tmp_path / "redis", appendfsync="always").start() as redis:
        server = server_process("--host", "127.0.0.1", "--port", "0", "--redis", redis.url,
                                "--redis-durability", "always", base_args=False)
        alice = server.connect()
        alice.send({"type": "hello", "protocol": 1, "name": "alice"})
        alice.recv_until("history")
        alice.send({"type": "say", "room": "lobby", "text": "on disk", "id": "d1"})
        ack = alice.recv_until("message")
        assert (ack["seq"], ack["text"], ack["id"]) == (1, "on disk", "d1")
        # Acknowledged means in Redis's append-only file already: a kill -9 of
        # Redis right now loses nothing.
        redis.kill()
        redis.restart()
        entries = redis.client().xrange("cc:room:lobby")
        assert [(entry_id, fields[b"t"]) for entry_id, fields in entries] == [(b"0-1", b"on disk")]


def test_everysec_warns_when_redis_keeps_no_append_only_file(
        tmp_path: Path, server_process: StartServer) -> None:
    with RedisServer(tmp_path / "redis", appendonly=False).start() as redis:
        server = server_process("--host", "127.0.0.1", "--port", "0", "--redis", redis.url,
                                base_args=False)
        assert server.wait_for_log(r"WARNING .*keeps no append-only file") is not None
