"""Findings 3, 4 and 7: slots held per address, output that never moves, logs that repeat."""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.abuse.attack import FrameReader, close_all, closed_within, connect_from, frame
from tests.conftest import StartServer

pytestmark = pytest.mark.timeout(60)


def _legitimate_user_gets_in(port: int, name: str) -> bool:
    try:
        sock = connect_from(port, source="127.0.0.1", timeout_s=3.0)
    except OSError:
        return False
    reader = FrameReader(sock)
    try:
        sock.sendall(frame({"type": "hello", "name": name, "protocol": 1}))
        return reader.next(3.0).get("type") == "welcome"  # type: ignore[union-attr]
    except (OSError, TimeoutError):
        return False
    finally:
        sock.close()


def test_one_address_holding_slots_without_hello_does_not_lock_others_out(
    server_process: StartServer,
) -> None:
    # Before: one address held all 200 slots with silent connections and a
    # legitimate user got in 0 times out of 50.
    server = server_process("--max-connections", "40")
    held: list[socket.socket] = []
    refusals: list[dict[str, object]] = []
    try:
        for _ in range(60):  # more than the server has room for, all silent
            try:
                sock = connect_from(server.port, timeout_s=2.0)
            except OSError:
                continue
            held.append(sock)
        for sock in held:
            sock.settimeout(0.2)
            try:
                reply = FrameReader(sock).next(0.2)
            except (TimeoutError, OSError):
                continue  # admitted and silent: still holding a slot
            if reply is not None:
                refusals.append(reply)
        assert 0 < len(held) - len(refusals) <= 10  # at most 10 without hello
        assert refusals and all(r["code"] == "internal" for r in refusals)
        assert all("without hello" in str(r["message"]) for r in refusals)
        wins = sum(_legitimate_user_gets_in(server.port, f"user{i}") for i in range(20))
        assert wins == 20
    finally:
        close_all(held)
    refused_lines = [line for line in server.stderr.lines if "refusing a connection" in line]
    assert 1 <= len(refused_lines) <= 2, refused_lines  # rate-limited, with a count


def test_a_client_that_never_reads_is_dropped_though_it_keeps_pinging(
    server_process: StartServer,
) -> None:
    server = server_process("--heartbeat", "1", "--flood-rate", "0", "--db", ":memory:")
    writer = server.connect()
    writer.hello("writer")
    writer.say_all("lobby", [f"{i:04d} " + "x" * 3990 for i in range(300)])
    stalled = connect_from(server.port, rcvbuf_bytes=4096)
    try:
        stalled.sendall(frame({"type": "hello", "name": "stalled", "protocol": 1}))
        stalled.sendall(b"".join(
            frame({"type": "history", "room": "lobby", "before": 301, "limit": 500})
            for _ in range(3)))
        # It keeps talking (and never reads): liveness alone would keep it forever.
        deadline = time.monotonic() + 15
        dropped = None
        while time.monotonic() < deadline and dropped is None:
            try:
                stalled.sendall(frame({"type": "ping", "token": "still here"}))
            except OSError:
                dropped = time.monotonic()
                break
            dropped = server.wait_for_log(r"output stalled", timeout_s=0.3) and time.monotonic()
        assert dropped, "the stalled connection was not dropped"
        assert closed_within(stalled, 5)
    finally:
        stalled.close()
    assert len(re.findall(r"output stalled", server.log)) == 1


def test_a_slow_consumer_drop_logs_one_line(server_process: StartServer) -> None:
    # Before: one drop logged the same line once per queued frame (1,165 lines).
    server = server_process("--flood-rate", "0", "--max-outbuf", "65536", "--db", ":memory:",
                            "--heartbeat", "0")
    slow = connect_from(server.port, source="127.0.0.1", rcvbuf_bytes=4096)
    try:
        slow.sendall(frame({"type": "hello", "name": "slow", "protocol": 1}))
        writer = server.connect()
        writer.hello("writer")
        # The writer reads as it goes: with this small --max-outbuf, a writer
        # that left its own 1.2 MB of copies unread would be dropped as well.
        assert writer.say_all("lobby", ["y" * 3000] * 400)[-1]["seq"] == 400
        assert server.wait_for_log(r"slow consumer", timeout_s=10)
    finally:
        slow.close()
    assert len(re.findall(r"slow consumer", server.log)) == 1
