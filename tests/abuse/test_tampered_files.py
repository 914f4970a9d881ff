"""Finding 9: history files edited behind the server's back, at start."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import StartServer

pytestmark = pytest.mark.timeout(60)


def _edit(path: Path, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(statement)


def _history_with_messages(server_process: StartServer, count: int) -> Path:
    server = server_process()
    alice = server.connect()
    alice.hello("alice")
    for i in range(count):
        alice.say("lobby", f"m{i}", id=f"c{i}")
        alice.recv_until("message")
    alice.close()
    assert server.stop() == 0
    return server.db


def test_a_dropped_sessions_table_is_one_line_at_start(server_process: StartServer) -> None:
    db = _history_with_messages(server_process, 1)
    _edit(db, "DROP TABLE sessions")
    server = server_process(db=db, wait_ready=False)
    assert server.wait(15) != 0
    errors = [line for line in server.stderr.lines if line.strip()]
    assert "Traceback" not in server.log
    assert len(errors) == 1 and "sessions" in errors[0], errors


def test_a_counter_behind_its_messages_is_repaired_with_a_warning(
    server_process: StartServer,
) -> None:
    # Before: the server started, then refused every message in that room forever.
    db = _history_with_messages(server_process, 5)
    _edit(db, "UPDATE rooms SET last_seq = 2 WHERE room = 'lobby'")
    server = server_process(db=db)
    assert server.wait_for_log(r"counter repaired")
    bob = server.connect()
    bob.hello("bob")
    bob.say("lobby", "after the repair", id="b1")
    message = bob.recv_until("message")
    assert (message["seq"], message["text"]) == (6, "after the repair")
