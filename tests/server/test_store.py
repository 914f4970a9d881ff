"""The SQLite history store, on real files: queries, durability, numbering, failures."""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message
from chattycat.server.effects import Append, StoredSession, WriteBatch
from chattycat.server.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from chattycat.server.store import default_history_path

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def make(room: str, seq: int, sender: str = "alice", *, id: str | None = None,
         ts: float | None = None, text: str | None = None) -> Message:
    return Message(room, seq, sender, "#e06c75", text or f"{room} #{seq}",
                   1000.0 + seq if ts is None else ts, id)


def fill(store: SQLiteStore, room: str, count: int) -> list[Message]:
    start = store.last_seq(room)
    messages = [make(room, start + i) for i in range(1, count + 1)]
    for message in messages:
        store.add(message)
    store.commit()
    return messages


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


@pytest.fixture
def db(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def store(db: pathlib.Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(db)
    yield s
    s.close()


# --------------------------------------------------------------------------
# Queries


def test_new_room_has_seq_zero_and_no_history(store: SQLiteStore) -> None:
    assert store.last_seq("lobby") == 0
    assert store.latest("lobby", 50) == []
    assert store.after("lobby", 0, 10) == ([], False)
    assert not store.has_room("lobby")


def test_added_message_round_trips_every_field(store: SQLiteStore) -> None:
    message = Message("lobby", 1, "Alice", "#112233", "waves", 1234.5, "c-1", True)
    store.add(message)
    store.commit()
    assert store.latest("lobby", 1) == [message]
    assert store.last_seq("lobby") == 1
    assert store.has_room("lobby")


def test_add_requires_the_next_seq_of_the_room(store: SQLiteStore) -> None:
    store.add(make("lobby", 1))
    with pytest.raises(ValueError, match="2 expected"):
        store.add(make("lobby", 3))


def test_latest_is_the_most_recent_oldest_first(store: SQLiteStore) -> None:
    fill(store, "lobby", 10)
    fill(store, "dev", 3)
    assert seqs(store.latest("lobby", 4)) == [7, 8, 9, 10]
    assert seqs(store.latest("dev", 50)) == [1, 2, 3]


def test_after_within_limit_is_everything_not_truncated(store: SQLiteStore) -> None:
    fill(store, "lobby", 10)
    assert store.after("lobby", 6, 4) == (store.latest("lobby", 4), False)
    assert store.after("lobby", 10, 4) == ([], False)


def test_after_over_limit_is_the_most_recent_and_truncated(store: SQLiteStore) -> None:
    fill(store, "lobby", 10)
    messages, truncated = store.after("lobby", 2, 3)
    assert (seqs(messages), truncated) == ([8, 9, 10], True)


def test_page_after_is_the_first_messages_above_seq(store: SQLiteStore) -> None:
    fill(store, "lobby", 10)
    assert seqs(store.page_after("lobby", 2, 3)) == [3, 4, 5]
    assert seqs(store.page_after("lobby", 8, 3)) == [9, 10]


def test_before_is_the_messages_just_below_seq(store: SQLiteStore) -> None:
    fill(store, "lobby", 10)
    assert seqs(store.before("lobby", 6, 3)) == [3, 4, 5]
    assert seqs(store.before("lobby", 3, 10)) == [1, 2]
    assert store.before("lobby", 1, 10) == []


def test_recent_ids_are_the_sessions_last_ids_in_that_room(store: SQLiteStore) -> None:
    store.add(make("lobby", 1, "Alice", id="a1"), "s-alice")
    store.add(make("lobby", 2, "alice"), "s-alice")  # no id: not part of idempotence
    store.add(make("lobby", 3, "bob", id="b1"), "s-bob")
    store.add(make("lobby", 4, "al", id="a2"), "s-alice")  # renamed: same session
    store.add(make("lobby", 5, "alice", id="a3"), "s-alice")
    store.add(make("lobby", 6, "alice", id="x1"), "s-other")  # the name, another session
    store.add(make("dev", 1, "alice", id="d1"), "s-alice")
    store.commit()
    assert [m.id for m in store.recent_ids("s-alice", "lobby", 10)] == ["a1", "a2", "a3"]
    assert [m.id for m in store.recent_ids("s-alice", "lobby", 2)] == ["a2", "a3"]
    assert store.recent_ids("s-carol", "lobby", 10) == []


def test_reads_inside_an_open_transaction_see_the_added_rows(store: SQLiteStore) -> None:
    store.add(make("lobby", 1))
    assert seqs(store.latest("lobby", 5)) == [1]
    assert store.last_seq("lobby") == 1


def test_memory_store_works_without_a_file(tmp_path: pathlib.Path) -> None:
    store = SQLiteStore(":memory:")
    fill(store, "lobby", 3)
    assert seqs(store.latest("lobby", 2)) == [2, 3]
    store.close()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# Numbering and durability


def test_seq_continues_after_close_and_reopen(db: pathlib.Path) -> None:
    store = SQLiteStore(db)
    fill(store, "lobby", 3)
    store.add(make("lobby", 4))  # pending: close commits it
    store.close()
    reopened = SQLiteStore(db)
    assert reopened.last_seq("lobby") == 4
    assert seqs(reopened.latest("lobby", 10)) == [1, 2, 3, 4]
    reopened.close()


def test_prune_deletes_old_messages_and_keeps_numbering(db: pathlib.Path) -> None:
    store = SQLiteStore(db)
    fill(store, "lobby", 5)  # ts 1001..1005
    fill(store, "dev", 2)  # ts 1001..1002
    assert store.delete_older(1004.0) == 5
    assert seqs(store.latest("lobby", 10)) == [4, 5]
    assert not store.has_room("dev")
    store.close()
    store = SQLiteStore(db)
    assert (store.last_seq("lobby"), store.last_seq("dev")) == (5, 2)
    store.add(make("dev", 3))
    store.commit()
    assert seqs(store.latest("dev", 10)) == [3]
    store.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_with_an_open_transaction_keeps_exactly_the_committed(
    db: pathlib.Path,
) -> None:
    # Enough uncommitted text to overflow SQLite's page cache, so uncommitted
    # pages really reach the WAL file before the kill.
    script = textwrap.dedent(f"""
        import sys, time
        from chattycat.protocol.messages import Message
        from chattycat.server.sqlite_store import SQLiteStore
        store = SQLiteStore({str(db)!r})
        for seq in range(1, 21):
            store.add(Message("lobby", seq, "alice", "#000000", "ok", 1.0 + seq))
        store.commit()
        print("committed", flush=True)
        for seq in range(21, 4021):
            store.add(Message("lobby", seq, "alice", "#000000", "x" * 1000, 1.0))
        print("pending", flush=True)
        time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             env=env, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "committed\n"
        assert child.stdout.readline() == "pending\n"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    store = SQLiteStore(db)
    assert store.last_seq("lobby") == 20
    assert seqs(store.latest("lobby", 100)) == list(range(1, 21))
    store.close()


def test_failed_write_rolls_back_pending_and_rereads_seq(store: SQLiteStore) -> None:
    fill(store, "lobby", 2)
    # A tiny page limit makes SQLite fail exactly as on a full disk.
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count={pages + 1}")
    with pytest.raises(StoreError, match="disk full") as caught:
        for seq in range(3, 200):
            store.add(make("lobby", seq, text="x" * 2000))
        store.commit()
    assert caught.value.__notes__  # says how many messages were not stored
    assert store.last_seq("lobby") == 2
    assert seqs(store.latest("lobby", 10)) == [1, 2]
    fill(store, "lobby", 1)
    assert store.last_seq("lobby") == 3


# --------------------------------------------------------------------------
# Files that cannot be used


def test_newer_schema_version_is_refused(db: pathlib.Path) -> None:
    SQLiteStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="written by a newer ChattyCat"):
        SQLiteStore(db)


def test_file_that_is_not_a_database_is_refused_naming_it(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(bytes(range(256)) * 32)
    with pytest.raises(StoreError, match="not a database") as caught:
        SQLiteStore(path)
    assert str(path) in str(caught.value)


def test_file_in_use_by_another_store_is_refused(db: pathlib.Path) -> None:
    first = SQLiteStore(db)
    with pytest.raises(StoreError, match="in use by another process"):
        SQLiteStore(db, busy_timeout_s=0.05)
    first.close()
    SQLiteStore(db).close()


def test_damaged_file_is_refused_at_open(db: pathlib.Path) -> None:
    store = SQLiteStore(db)
    for seq in range(1, 301):
        store.add(make("lobby", seq, text="y" * 300))
    store.close()
    data = bytearray(db.read_bytes())
    for offset in range(8192, len(data) - 4096, 16384):  # page 1, the header, stays intact
        data[offset:offset + 200] = b"\xa5" * 200
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt") as caught:
        SQLiteStore(db)
    assert str(db) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_path_below_a_regular_file_is_refused(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="plain-file"):
        SQLiteStore(blocker / "history.sqlite3")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_unwritable_directory_is_refused(tmp_path: pathlib.Path) -> None:
    readonly = tmp_path / "readonly-dir"
    readonly.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError, match=r"readonly-dir.*permissions"):
            SQLiteStore(readonly / "history.sqlite3")
    finally:
        readonly.chmod(0o700)


# --------------------------------------------------------------------------
# Default location


def test_default_history_path_honours_xdg_data_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_history_path() == tmp_path / "chattycat" / "history.sqlite3"


def test_default_history_path_ignores_relative_xdg_data_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    expected = pathlib.Path.home() / ".local" / "share" / "chattycat" / "history.sqlite3"
    assert default_history_path() == expected


# --------------------------------------------------------------------------
# Against a model

ROOMS = ("lobby", "dev", "ops")
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(ROOMS), st.sampled_from(["Al", "al", "bo"]),
                  st.booleans()),
        st.tuples(st.just("commit")),
        st.tuples(st.just("reopen")),
    ),
    max_size=60,
)


def check_room(store: SQLiteStore, room: str, model: list[Message]) -> None:
    last = len(model)
    assert store.last_seq(room) == last
    for limit in (1, 2, 5, 100):
        assert store.latest(room, limit) == model[-limit:]
        for seq in range(last + 2):
            above = model[seq:]
            assert store.after(room, seq, limit) == (above[-limit:], len(above) > limit)
            assert store.page_after(room, seq, limit) == above[:limit]
            below = model[:max(seq - 1, 0)]
            assert store.before(room, seq, limit) == below[-limit:]
        # (each sender name stands for one session here)
        ids = [m for m in model if m.id is not None and m.sender.lower() == "al"]
        assert store.recent_ids("session-al", room, limit) == ids[-limit:]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations)
def test_store_agrees_with_an_in_memory_model(ops: list[tuple[object, ...]]) -> None:
    model: dict[str, list[Message]] = {room: [] for room in ROOMS}
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "history.sqlite3"
        store = SQLiteStore(path)
        try:
            for op in ops:
                if op[0] == "add":
                    room, sender, with_id = str(op[1]), str(op[2]), bool(op[3])
                    seq = len(model[room]) + 1
                    message = make(room, seq, sender, id=f"c-{seq}" if with_id else None)
                    store.add(message, f"session-{sender.lower()}")
                    model[room].append(message)
                elif op[0] == "commit":
                    store.commit()
                else:
                    store.close()  # commits what is pending
                    store = SQLiteStore(path)
            for room in ROOMS:
                check_room(store, room, model[room])
        finally:
            store.close()


def test_sessions_are_kept_across_reopen_and_can_be_replaced_and_dropped(
    db: pathlib.Path,
) -> None:
    store = SQLiteStore(db)
    store.save_session(StoredSession("alice", "d1", "#e06c75", True, 10.0))
    store.save_session(StoredSession("bob", "d2", "#2e9fd0", True, 11.0))
    store.commit()
    store.save_session(StoredSession("alice", "d1", "#e06c75", False, 12.0))
    store.drop_session("bob")
    store.close()
    store = SQLiteStore(db)
    assert store.sessions() == [StoredSession("alice", "d1", "#e06c75", False, 12.0)]
    store.close()


def test_a_version_1_file_is_migrated_keeping_its_messages(db: pathlib.Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    MIGRATIONS[1](conn)
    conn.execute("INSERT INTO messages (room, seq, sender, sender_key, color, text, ts)"
                 " VALUES ('lobby', 1, 'Al', 'al', '#e06c75', 'old', 1.0)")
    conn.execute("INSERT INTO rooms VALUES ('lobby', 1)")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    store = SQLiteStore(db)
    assert [m.text for m in store.latest("lobby", 10)] == ["old"]
    assert store.sessions() == []
    store.close()
    check = sqlite3.connect(db)
    try:
        # The file is in WAL mode with exclusive locking; read it the same way.
        check.execute("PRAGMA locking_mode=EXCLUSIVE")
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        check.close()


def test_a_version_4_file_keeps_its_idempotence_windows_with_short_session_keys(
        db: pathlib.Path) -> None:
    # Version 5 drops the index by time and keeps 16 hex digits of each
    # session digest: a client resuming across the upgrade keeps its window.
    db.parent.mkdir(parents=True)
    digest = "ab" * 32
    conn = sqlite3.connect(db)
    for version in (1, 2, 3, 4):
        MIGRATIONS[version](conn)
    conn.execute("INSERT INTO messages (room, seq, sender, sender_key, color, text, ts,"
                 " client_id, session) VALUES ('lobby', 1, 'Al', 'al', '#e06c75', 'old', 1.0,"
                 " 'c-1', ?)", (digest,))
    conn.execute("INSERT INTO rooms VALUES ('lobby', 1)")
    conn.execute("PRAGMA user_version=4")
    conn.commit()
    conn.close()
    store = SQLiteStore(db)
    assert [(m.id, m.seq) for m in store.recent_ids(digest, "lobby", 10)] == [("c-1", 1)]
    store.apply(WriteBatch(1, (Append(Message("lobby", 2, "Al", "#e06c75", "new", 2.0, "c-2"),
                                      digest),)))
    assert sorted(m.id or "" for m in store.recent_ids(digest, "lobby", 10)) == ["c-1", "c-2"]
    assert store.recent_ids("cd" * 32, "lobby", 10) == []
    store.close()
    check = sqlite3.connect(db)
    try:
        check.execute("PRAGMA locking_mode=EXCLUSIVE")
        indexes = {name for (name,) in check.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "messages_by_ts" not in indexes
        sessions = {s for (s,) in check.execute("SELECT session FROM messages")}
        assert sessions == {digest[:16]}
    finally:
        check.close()


def test_pruning_without_an_index_by_time_keeps_numbering_and_newer_messages(
        db: pathlib.Path) -> None:
    store = SQLiteStore(db)
    stamps = [1.0, 2.0, 3.0, 2.5, 4.0]  # the clock was set back once
    store.apply(WriteBatch(1, tuple(
        Append(Message("lobby", seq, "Al", "#e06c75", f"m{seq}", ts))
        for seq, ts in enumerate(stamps, start=1))))
    assert store.delete_older(3.0) == 2  # seqs 1 and 2; 2.5 is above the cut
    assert [m.seq for m in store.messages_between("lobby", 0, 10, 10, newest=False)] == [3, 4, 5]
    assert store.delete_older(10.0) == 3
    assert store.last_seqs() == {"lobby": 5}
    store.close()
