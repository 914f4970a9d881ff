"""The history store contract, held against both stores: SQLite and memory.

The state machine relies on these promises (see chattycat.server.store): a
batch is committed whole or not at all, a read never returns a message above
its ``up_to``, pages come oldest first, and pruning keeps the numbering.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message
from chattycat.server.effects import (
    Append,
    DropSession,
    LoadHistory,
    LoadIds,
    Page,
    Read,
    SaveSession,
    StoredSession,
    WriteBatch,
)
from chattycat.server.memory_store import MemoryStore
from chattycat.server.sqlite_store import SQLiteStore
from chattycat.server.store import ReadResult, SyncStore

pytestmark = pytest.mark.timeout(60)

RED = "#e06c75"


def message(room: str, seq: int, sender: str = "alice", id: str | None = None,
            ts: float | None = None) -> Message:
    return Message(room, seq, sender, RED, f"{room} #{seq}", 1000.0 + seq if ts is None else ts,
                   id)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncStore]:
    made: SyncStore = MemoryStore() if request.param == "memory" else SQLiteStore(
        tmp_path / "h.db")
    yield made
    made.close()  # type: ignore[attr-defined]


def submit(store: SyncStore, *writes: Append | SaveSession | DropSession,
           batch_id: int = 1) -> StoreError | None:
    outcome: list[StoreError | None] = []
    store.submit(WriteBatch(batch_id, writes), lambda _batch, error: outcome.append(error))
    (error,) = outcome  # a local store answers before submit returns
    return error


def fetch(store: SyncStore, read: Read) -> ReadResult:
    answers: list[ReadResult | StoreError] = []
    store.fetch(read, lambda _read, result: answers.append(result))
    (answer,) = answers
    assert isinstance(answer, ReadResult)
    return answer


def fill(store: SyncStore, room: str, count: int) -> list[Message]:
    messages = [message(room, seq) for seq in range(1, count + 1)]
    assert submit(store, *(Append(m) for m in messages)) is None
    return messages


def history(room: str, page: Page, seq: int, limit: int, up_to: int) -> LoadHistory:
    return LoadHistory(1, room, page, seq, limit, up_to)


def test_a_committed_batch_is_readable_and_counted(store: SyncStore) -> None:
    stored = fill(store, "lobby", 3)
    assert fetch(store, history("lobby", Page.LATEST, 0, 50, 3)).messages == stored
    assert store.load_state().last_seqs == {"lobby": 3}


@pytest.mark.parametrize(
    ("page", "seq", "limit", "up_to", "expected", "truncated"),
    [
        (Page.LATEST, 0, 3, 10, [8, 9, 10], False),
        (Page.LATEST, 0, 3, 6, [4, 5, 6], False),  # never above up_to
        (Page.RESUME, 4, 100, 10, [5, 6, 7, 8, 9, 10], False),
        (Page.RESUME, 4, 2, 10, [9, 10], True),  # the most recent, and "more were missed"
        (Page.RESUME, 4, 100, 7, [5, 6, 7], False),
        (Page.AFTER, 4, 2, 10, [5, 6], False),  # paging forward: the first ones above
        (Page.AFTER, 8, 5, 9, [9], False),
        (Page.BEFORE, 5, 2, 10, [3, 4], False),
        (Page.BEFORE, 9, 5, 6, [2, 3, 4, 5, 6], False),
        (Page.BEFORE, 1, 5, 10, [], False),
    ],
)
def test_pages_are_oldest_first_and_never_above_up_to(
    store: SyncStore, page: Page, seq: int, limit: int, up_to: int, expected: list[int],
    truncated: bool,
) -> None:
    fill(store, "lobby", 10)
    result = fetch(store, history("lobby", page, seq, limit, up_to))
    assert [m.seq for m in result.messages] == expected
    assert result.truncated is truncated


def test_ids_are_read_per_session_and_room(store: SyncStore) -> None:
    submit(store, Append(message("lobby", 1, "Alice", id="a1"), "s-alice"),
           Append(message("lobby", 2, "bob", id="b1"), "s-bob"),
           Append(message("lobby", 3, "alice", id=None), "s-alice"),
           Append(message("dev", 1, "alice", id="d1"), "s-alice"),
           Append(message("lobby", 4, "al", id="a2"), "s-alice"),
           Append(message("lobby", 5, "alice", id="x1"), "s-newcomer"))
    found = fetch(store, LoadIds(1, "s-alice", "lobby", 10)).messages
    assert [(m.seq, m.id) for m in found] == [(1, "a1"), (4, "a2")]
    assert [m.id for m in fetch(store, LoadIds(2, "s-alice", "lobby", 1)).messages] == ["a2"]


def test_a_batch_is_committed_whole_or_not_at_all(
    store: SyncStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(store, "lobby", 2)
    monkeypatch.setattr(store, "commit", _failing_commit(store))  # as on a full disk
    error = submit(store, Append(message("lobby", 3)), Append(message("lobby", 4)),
                   SaveSession(StoredSession("alice", "d", RED, True, 1.0)))
    monkeypatch.undo()
    assert isinstance(error, StoreError)
    assert [m.seq for m in fetch(store, history("lobby", Page.LATEST, 0, 50, 10)).messages] == [
        1, 2]
    assert store.load_state().last_seqs == {"lobby": 2}
    assert store.load_state().sessions == ()
    assert submit(store, Append(message("lobby", 3))) is None  # numbering goes on from 2


def _failing_commit(store: SyncStore) -> Callable[[], None]:
    """A commit that fails the way each store's real one does: rolled back, then raised."""

    def commit() -> None:
        if isinstance(store, SQLiteStore):
            raise store._rollback("cannot write", sqlite3.OperationalError("disk I/O error"))
        assert isinstance(store, MemoryStore)
        store._transaction.clear()
        raise StoreError("disk full")

    return commit


def test_sessions_are_saved_replaced_and_dropped(store: SyncStore) -> None:
    submit(store, SaveSession(StoredSession("alice", "d1", RED, True, 1.0)),
           SaveSession(StoredSession("bob", "d2", RED, False, 2.0)))
    submit(store, SaveSession(StoredSession("alice", "d3", RED, False, 3.0)),
           DropSession("bob"), batch_id=2)
    assert store.load_state().sessions == (StoredSession("alice", "d3", RED, False, 3.0),)


def test_pruning_deletes_old_messages_and_keeps_the_numbering(store: SyncStore) -> None:
    submit(store, *(Append(message("lobby", seq, ts=float(seq))) for seq in range(1, 6)))
    removed: list[int | StoreError] = []
    store.prune(3.5, removed.append)
    assert removed == [3]
    assert [m.seq for m in fetch(store, history("lobby", Page.LATEST, 0, 50, 5)).messages] == [
        4, 5]
    assert store.load_state().last_seqs == {"lobby": 5}


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 30), seq=st.integers(0, 35), limit=st.integers(1, 40),
       up_to=st.integers(0, 35), page=st.sampled_from(Page))
def test_the_memory_store_pages_exactly_like_sqlite(
    tmp_path_factory: pytest.TempPathFactory, count: int, seq: int, limit: int, up_to: int,
    page: Page,
) -> None:
    memory, sqlite = MemoryStore(), SQLiteStore(":memory:")
    try:
        for each in (memory, sqlite):
            if count:
                fill(each, "lobby", count)
        read = history("lobby", page, seq, limit, min(up_to, count))
        assert fetch(memory, read) == fetch(sqlite, read)
    finally:
        sqlite.close()
