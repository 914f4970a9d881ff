"""History files edited behind the server's back: one-line errors, or a repair with a warning."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message
from chattycat.server.sqlite_store import SQLiteStore


def _edit(path: Path, *statements: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for statement in statements:
            conn.execute(statement)


def _stored(path: Path, count: int) -> None:
    store = SQLiteStore(path)
    for seq in range(1, count + 1):
        store.add(Message("lobby", seq, "alice", "#e06c75", f"m{seq}", 1.0 + seq))
    store.commit()
    store.close()


def test_a_counter_behind_its_messages_is_repaired_at_open_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "h.sqlite3"
    _stored(path, 5)
    _edit(path, "UPDATE rooms SET last_seq = 2 WHERE room = 'lobby'")
    with caplog.at_level(logging.WARNING, "chattycat.server.sqlite_store"):
        store = SQLiteStore(path)
    try:
        assert store.last_seqs() == {"lobby": 5}
        assert "counter repaired" in caplog.text
        store.add(Message("lobby", 6, "alice", "#e06c75", "after the repair", 9.0))
        store.commit()
        assert store.latest("lobby", 1)[0].text == "after the repair"
    finally:
        store.close()


def test_a_missing_counter_row_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    _stored(path, 3)
    _edit(path, "DELETE FROM rooms")
    store = SQLiteStore(path)
    try:
        assert store.last_seqs() == {"lobby": 3}
    finally:
        store.close()


def test_a_dropped_sessions_table_is_a_one_line_store_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    _stored(path, 1)
    _edit(path, "DROP TABLE sessions")
    store = SQLiteStore(path)
    try:
        with pytest.raises(StoreError) as caught:
            store.load_state()
        assert "\n" not in str(caught.value) and "sessions" in str(caught.value)
    finally:
        store.close()
