"""A live fuzz: random and mutated frames over many connections, with a fixed seed.

CI runs a smoke size; the full run (100,000 frames) is

    CHATTYCAT_FUZZ_FRAMES=100000 python -m pytest tests/abuse/test_fuzz.py

The server must survive every frame without a traceback, keep its log
bounded, and still serve a fresh client at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import struct
from typing import Any

import pytest

from tests.abuse.attack import close_all, connect_from, frame
from tests.conftest import StartServer

SEED = 20261201
FRAMES = int(os.environ.get("CHATTYCAT_FUZZ_FRAMES", "3000"))
CONNECTIONS = 16

pytestmark = pytest.mark.timeout(max(60, FRAMES // 200))

ROOMS = ["lobby", "dev", "x", "r-1", "BAD ROOM", "", "a" * 40]
NAMES = ["alice", "bob", "c", "Name_1", "bad name", "", "n" * 40, "\u00e9"]
INTS = [0, 1, -1, 2**31, 2**53, 2**63 - 1, 2**63, 2**64, 10**40, 1.5, True, None]


def _text(rng: random.Random) -> Any:
    return rng.choice(["hi", "", "x" * rng.randrange(1, 5000), "\U0001f431" * 100,
                       "\u202e\u200d\x1b[31m", 42, None, ["a"], {"b": 1}])


def _request(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["hello", "join", "part", "who", "rooms", "say", "whisper", "history",
                       "nick", "ping", "pong", "quit", "bogus"])
    request: dict[str, Any] = {"type": kind}
    if kind == "hello":
        request |= {"name": rng.choice(NAMES), "protocol": rng.choice([1, 1, 1, 2, "1"])}
        if rng.random() < 0.3:
            request["resume"] = {"rooms": {rng.choice(ROOMS): rng.choice(INTS)
                                           for _ in range(rng.randrange(0, 5))}}
        if rng.random() < 0.2:
            request["session"] = rng.choice(["", "x" * 300, "abc"])
    elif kind in ("join", "part", "who"):
        request["room"] = rng.choice(ROOMS)
    elif kind in ("say", "whisper"):
        request |= {"room": rng.choice(ROOMS), "to": rng.choice(NAMES), "text": _text(rng),
                    "id": rng.choice([None, "c-1", "c-2", "x" * 80, 7])}
    elif kind == "history":
        request |= {"room": rng.choice(ROOMS), rng.choice(["after", "before", "limit"]):
                    rng.choice(INTS)}
    elif kind == "nick":
        request["name"] = rng.choice(NAMES)
    elif kind in ("ping", "pong"):
        request["token"] = rng.choice(["t", 1, 2**70, None, [1]])
    if rng.random() < 0.2:
        request["ref"] = rng.choice([1, "r", 10**70, None, {"x": 1}])
    return request


def _payload(rng: random.Random) -> bytes:
    """One frame: mostly requests, some mutated, some not JSON at all."""
    roll = rng.random()
    if roll < 0.6:
        return frame(_request(rng))
    raw = json.dumps(_request(rng)).encode()
    if roll < 0.75:  # flip bytes
        mutable = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        raw = bytes(mutable)
    elif roll < 0.85:  # cut short
        raw = raw[: rng.randrange(len(raw))]
    elif roll < 0.9:  # nested deep enough to trouble a recursive parser
        raw = b"[" * 100_000 + b"]" * 100_000
    elif roll < 0.97:
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
    else:  # a header announcing more than max_frame: the connection ends
        return struct.pack(">I", rng.choice([65537, 2**32 - 1])) + b"{}"
    return struct.pack(">I", len(raw)) + raw


def _drain(sock: socket.socket) -> bool:
    """Discard what the server sent; False once it closed the connection."""
    with contextlib.suppress(BlockingIOError):
        while True:
            try:
                if not sock.recv(1 << 20):
                    return False
            except (ConnectionResetError, BrokenPipeError):
                return False
    return True


def _open(port: int, rng: random.Random) -> socket.socket:
    sock = connect_from(port)
    if rng.random() < 0.8:  # most connections say a proper hello first
        sock.sendall(frame({"type": "hello", "name": f"f{rng.randrange(10**6)}", "protocol": 1}))
    sock.setblocking(False)
    return sock


def test_live_fuzz_leaves_the_server_up_and_quiet(server_process: StartServer) -> None:
    server = server_process("--flood-rate", "0", "--ip-open-rate", "0", "--db", ":memory:",
                            "--max-unwelcomed-per-ip", "0", "--max-per-ip", "0")
    rng = random.Random(SEED)
    socks = [_open(server.port, rng) for _ in range(CONNECTIONS)]
    try:
        for sent in range(FRAMES):
            i = rng.randrange(CONNECTIONS)
            # A full send buffer cuts a frame short: one more kind of garbage.
            with contextlib.suppress(OSError):
                socks[i].sendall(_payload(rng))
            if sent % 8 == 0 and not _drain(socks[i]):  # closed by the server: reconnect
                socks[i].close()
                socks[i] = _open(server.port, rng)
    finally:
        close_all(socks)
    assert server.proc.poll() is None, server.log
    assert "Traceback" not in server.log
    assert len(server.stderr.lines) < 100 + FRAMES // 50
    check = server.connect()
    check.hello("survivor")
    check.say("lobby", "still here", id="s1")
    assert check.recv_until("message")["text"] == "still here"
