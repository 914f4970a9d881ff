"""Finding 1 (and 8): memory an unauthenticated client can make the server keep is bounded."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from tests.abuse.attack import FrameReader, connect_from, frame, rss_kib
from tests.conftest import StartServer

pytestmark = pytest.mark.timeout(90)

EMOJI_TEXT = "\U0001f431" * 4000  # 16 KB as a Python string, the most a whisper holds


def _whisper_to_self(port: int, name: str, count: int) -> None:
    sock = connect_from(port)
    reader = FrameReader(sock)
    try:
        sock.sendall(frame({"type": "hello", "name": name, "protocol": 1}))
        reader.until("welcome")
        sock.sendall(b"".join(
            frame({"type": "whisper", "to": name, "text": EMOJI_TEXT, "id": f"w-{i}"})
            for i in range(count)))
        for _ in range(count):
            reader.until("whisper", timeout_s=10)
    finally:
        sock.close()


def test_throwaway_names_whispering_do_not_grow_the_server(server_process: StartServer) -> None:
    # Before: each session kept its last 100 whole whispers for 24 h, so 40
    # names x 100 whispers of 4000 emoji held ~64 MB (+410 MB per 200 names).
    server = server_process("--flood-rate", "0", "--db", ":memory:")
    _whisper_to_self(server.port, "warmup", 100)
    before = rss_kib(server.pid)
    for i in range(40):
        _whisper_to_self(server.port, f"throwaway{i}", 100)
    grown_mib = (rss_kib(server.pid) - before) / 1024
    assert grown_mib < 16, f"server grew by {grown_mib:.1f} MiB"


def test_hello_spam_leaves_a_bounded_number_of_stored_sessions(
    server_process: StartServer,
) -> None:
    server = server_process("--max-sessions", "20", "--ip-open-rate", "0")
    for i in range(60):
        sock = connect_from(server.port)
        reader = FrameReader(sock)
        sock.sendall(frame({"type": "hello", "name": f"spam{i}", "protocol": 1}))
        reader.until("welcome")
        sock.close()
    # Sessions are written as their users leave; stop the server to read the file.
    assert server.stop() == 0
    with contextlib.closing(sqlite3.connect(server.db)) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM sessions").fetchone()
    assert rows <= 21
