"""History on disk: numbering, idempotence and acknowledged messages survive restarts."""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chattycat.protocol.messages import Message
from chattycat.server.sqlite_store import SQLiteStore
from tests.conftest import StartInProcess, StartServer
from tests.wire import ConnectionClosed, Frame, WireClient

# No name grace: these tests sign in again without a session right after a restart.
QUIET = ("--flood-rate", "0", "--heartbeat", "0", "--name-grace", "0")


def ack(client: WireClient, room: str, text: str, **extra: Any) -> Frame:
    client.say(room, text, **extra)
    return client.recv_until("message", where=lambda f: f["text"] == text)


def all_history(client: WireClient, room: str) -> list[Frame]:
    """Every stored message of ``room``, paging forward with ``history after``."""
    messages: list[Frame] = []
    after = 0
    while True:
        client.send({"type": "history", "room": room, "after": after, "limit": 500, "ref": after})
        ref = after

        def last_part(frame: Frame, ref: int = ref) -> bool:
            return frame.get("ref") == ref and not frame.get("more")

        parts = client.recv_all_until("history", where=last_part)
        page = [m for f in parts if f["type"] == "history" and f.get("ref") == ref
                for m in f["messages"]]
        if not page:
            return messages
        messages += page
        after = page[-1]["seq"]


def strip(frame: Frame) -> Frame:
    return {k: v for k, v in frame.items() if k != "_size"}


def test_seq_and_history_continue_across_a_restart(server_process: StartServer) -> None:
    proc = server_process(*QUIET)
    alice = proc.connect()
    alice.hello("alice")
    first = [ack(alice, "lobby", f"before {i}") for i in range(3)]
    assert [m["seq"] for m in first] == [1, 2, 3]
    assert proc.stop() == 0

    proc = server_process(*QUIET)
    bob = proc.connect()
    bob.hello("bob")
    joined_history = [m for f in bob.join_frames if f["type"] == "history" for m in f["messages"]]
    assert joined_history == [strip(m) for m in first]
    assert ack(bob, "lobby", "after restart")["seq"] == 4


def test_idempotence_window_survives_a_restart(server_process: StartServer) -> None:
    proc = server_process(*QUIET)
    alice = proc.connect()
    alice.hello("alice")
    session = alice.welcome["session"]  # type: ignore[index]
    original = ack(alice, "lobby", "exactly once", id="c-1")
    assert proc.stop() == 0

    proc = server_process(*QUIET)
    alice = proc.connect()
    alice.hello("alice", session=session, resume={"rooms": {"lobby": 0}})
    alice.say("lobby", "exactly once", id="c-1")
    assert alice.recv() == original
    assert [m["id"] for m in all_history(alice, "lobby")] == ["c-1"]
    assert ack(alice, "lobby", "next", id="c-2")["seq"] == original["seq"] + 1


def test_after_a_restart_a_fresh_hello_starts_a_new_idempotence_window(
    server_process: StartServer,
) -> None:
    # PROTOCOL 5: the window is the session's; a hello without it is a new session.
    proc = server_process(*QUIET)
    alice = proc.connect()
    alice.hello("alice")
    assert ack(alice, "lobby", "first", id="c-1")["seq"] == 1
    assert proc.stop() == 0

    proc = server_process(*QUIET)
    newcomer = proc.connect()
    newcomer.hello("alice")
    assert ack(newcomer, "lobby", "someone else's c-1", id="c-1")["seq"] == 2


def test_a_session_and_its_resume_survive_a_restart_on_the_same_history_file(
    server_process: StartServer,
) -> None:
    # PROTOCOL 7: only a server restarted with --db :memory: forgets sessions.
    proc = server_process(*QUIET)
    alice = proc.connect()
    first = alice.hello("alice")
    seen = ack(alice, "lobby", "seen")["seq"]
    bob = proc.connect()
    bob.hello("bob")
    missed = ack(bob, "lobby", "missed")["seq"]
    assert proc.stop() == 0

    proc = server_process(*QUIET)
    alice = proc.connect()
    welcome = alice.hello("alice", session=first["session"], resume={"rooms": {"lobby": seen}})
    assert (welcome["session"], welcome["color"]) == (first["session"], first["color"])
    replay = [m for f in alice.join_frames if f["type"] == "history" for m in f["messages"]]
    assert [m["seq"] for m in replay] == [missed]


def test_a_wrong_secret_after_a_restart_gets_a_new_session_and_no_secret_is_stored(
    server_process: StartServer,
) -> None:
    proc = server_process(*QUIET)
    old_session = proc.connect().hello("alice")["session"]
    assert proc.stop() == 0
    proc = server_process(*QUIET)
    assert proc.connect().hello("alice", session="not-the-secret")["session"] != old_session
    # The secret is checked against a digest: the file never holds the secret itself.
    assert proc.stop() == 0
    assert old_session.encode() not in proc.db.read_bytes()


def test_resume_by_seq_works_after_a_memory_server_restart_forgets_the_session(
    server_process: StartServer,
) -> None:
    proc = server_process("--db", ":memory:", *QUIET)
    alice = proc.connect()
    old_session = alice.hello("alice")["session"]
    assert proc.stop() == 0
    proc = server_process("--db", ":memory:", *QUIET)
    alice = proc.connect()
    welcome = alice.hello("alice", session=old_session, resume={"rooms": {"lobby": 0}})
    assert welcome["session"] != old_session


def test_in_process_servers_share_history_through_the_file(
    chat_server: StartInProcess, tmp_path: Path
) -> None:
    db = tmp_path / "shared.sqlite3"
    first = chat_server(db=db)
    alice = first.user("alice")
    acks = [ack(alice, "lobby", f"m{i}", id=f"i{i}") for i in range(5)]
    first.stop()

    session = alice.welcome["session"]  # type: ignore[index]
    second = chat_server(db=db)
    alice = second.user("alice", session=session)
    assert [strip(m) for m in acks] == all_history(alice, "lobby")
    alice.say("lobby", "m2", id="i2")
    assert alice.recv() == acks[2]
    assert ack(alice, "lobby", "m5", id="i5")["seq"] == 6


def test_every_acknowledged_message_survives_sigkill(server_process: StartServer) -> None:
    proc = server_process(*QUIET)
    writer = proc.connect()
    writer.hello("writer")
    acked: dict[str, Frame] = {}
    enough = threading.Event()

    def read_acks() -> None:
        while True:
            try:
                frame = writer.recv(10)
            except (ConnectionClosed, TimeoutError):
                return
            if frame["type"] == "message":
                acked[frame["id"]] = frame
                if len(acked) >= 300:
                    enough.set()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    sent: list[str] = []
    killed = False
    try:
        for i in range(5000):
            writer.say("lobby", f"message number {i}", id=f"m{i}")
            sent.append(f"m{i}")
            if i % 50 == 49:
                time.sleep(0.005)  # let acks flow so the kill lands mid-stream
            if not killed and enough.is_set():
                proc.send_signal(signal.SIGKILL)
                killed = True
    except OSError:
        pass  # the server is gone: a write fails
    if not killed:
        proc.send_signal(signal.SIGKILL)
    reader.join(15)
    assert proc.wait() == -signal.SIGKILL
    assert len(acked) >= 300

    proc = server_process(*QUIET)
    writer = proc.connect()
    writer.hello("writer")
    stored = all_history(writer, "lobby")
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    by_id = {m["id"]: m for m in stored}
    for message_id, frame in acked.items():
        assert by_id.get(message_id) == strip(frame), f"acknowledged {message_id} was lost"

    # Retrying every unacknowledged message (as a client does) stores each exactly once.
    for message_id in sent:
        if message_id not in acked:
            writer.say("lobby", f"message number {message_id[1:]}", id=message_id)
    retried = len(sent) - len(acked)
    for _ in range(retried):
        writer.recv_until("message")
    final = all_history(writer, "lobby")
    assert sorted(m["id"] for m in final) == sorted(sent)
    assert [m["seq"] for m in final] == list(range(1, len(sent) + 1))


def _old_and_new_messages(db: Path, now: float) -> None:
    store = SQLiteStore(db)
    try:
        for seq in range(1, 6):
            store.add(Message("lobby", seq, "old", "#e06c75", f"old {seq}", now - 10 * 86400))
        for seq in range(6, 9):
            store.add(Message("lobby", seq, "new", "#e06c75", f"new {seq}", now - 3600))
        for seq in range(1, 4):
            store.add(Message("attic", seq, "old", "#e06c75", f"dusty {seq}", now - 30 * 86400))
        store.commit()
    finally:
        store.close()


def test_retention_prunes_old_messages_without_renumbering(
    server_process: StartServer, tmp_path: Path
) -> None:
    db = tmp_path / "retained.sqlite3"
    _old_and_new_messages(db, time.time())
    proc = server_process("--retain-days", "1", *QUIET, db=db)
    assert proc.wait_for_log(r"retention: removed 8 messages", timeout_s=5)
    client = proc.connect()
    client.hello("alice")
    assert [m["seq"] for m in all_history(client, "lobby")] == [6, 7, 8]
    assert ack(client, "lobby", "fresh")["seq"] == 9
    client.send({"type": "who", "room": "attic"})
    assert client.recv()["code"] == "no_such_room"
    client.send({"type": "join", "room": "attic"})
    history = client.recv_until("history")
    assert history["messages"] == []
    assert ack(client, "attic", "new life")["seq"] == 4


def test_without_retain_days_nothing_is_pruned(
    server_process: StartServer, tmp_path: Path
) -> None:
    db = tmp_path / "kept.sqlite3"
    _old_and_new_messages(db, time.time())
    proc = server_process(*QUIET, db=db)
    client = proc.connect()
    client.hello("alice")
    assert [m["seq"] for m in all_history(client, "lobby")] == list(range(1, 9))


class _FailingCommitStore(SQLiteStore):
    """A history file whose next commit fails, as on a full disk."""

    fail_next_commit = False

    def commit(self) -> None:
        if self.fail_next_commit and self._conn.in_transaction:
            type(self).fail_next_commit = False
            raise self._rollback("cannot write", sqlite3.OperationalError("disk I/O error"))
        super().commit()


def test_message_lost_to_a_failed_commit_is_not_acknowledged(
    chat_server: StartInProcess,
) -> None:
    server = chat_server(store_factory=_FailingCommitStore)
    bob = server.user("bob")
    alice = server.user("alice")
    bob.drain()
    assert ack(alice, "lobby", "one", id="1")["seq"] == 1
    bob.recv_until("message")
    _FailingCommitStore.fail_next_commit = True
    alice.say("lobby", "two", id="2")
    error = alice.recv()
    assert (error["type"], error["code"], error["id"]) == ("error", "internal", "2")
    bob.expect_no_frame()
    assert ack(alice, "lobby", "two", id="2")["seq"] == 2
    assert [(m["seq"], m["id"]) for m in all_history(alice, "lobby")] == [(1, "1"), (2, "2")]


class _FailingPruneStore(SQLiteStore):
    """A history file whose deletes fail, as on a full disk."""

    def delete_older(self, older_than_ts: float) -> int:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")
        raise self._rollback("cannot prune", sqlite3.OperationalError("disk I/O error"))


def test_a_failed_retention_run_is_logged_retried_and_numbering_goes_on(
    chat_server: StartInProcess, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="chattycat")
    # Retention runs once at start: it fails, and the server serves on.
    server = chat_server(store_factory=_FailingPruneStore, retain_days=1)
    assert "retention: cannot prune" in caplog.text
    alice = server.user("alice")
    assert ack(alice, "lobby", "one", id="1")["seq"] == 1
    server.call(server.server._prune)  # the periodic run fails again...
    assert caplog.text.count("retention: cannot prune") == 2
    # ...without touching the messages around it: they are their own transactions.
    assert ack(alice, "lobby", "two", id="2")["seq"] == 2
    assert [m["seq"] for m in all_history(alice, "lobby")] == [1, 2]
    assert "prune" in server.server._timers  # retried at the next interval
