"""Password records (scrypt, per-user salt, parameters kept) and the worker that runs them."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chattycat.server.effects import (
    DropAccount,
    HashPassword,
    SaveAccount,
    StoredAccount,
    VerifyPassword,
    WriteBatch,
)
from chattycat.server.memory_store import MemoryStore
from chattycat.server.passwords import (
    PasswordWorker,
    ScryptParams,
    dummy_record,
    hash_password,
    verify_password,
)
from chattycat.server.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from chattycat.server.store import SyncStore

# Cheap parameters: these tests check the format and the logic, not the cost.
FAST = ScryptParams(n=2**4, r=8, p=1)


def test_a_record_verifies_its_password_only() -> None:
    record = hash_password("correct horse", FAST)
    assert verify_password("correct horse", record)
    assert not verify_password("correct horsE", record)


def test_a_record_carries_its_parameters_and_a_salt_of_its_own() -> None:
    first, second = hash_password("same", FAST), hash_password("same", FAST)
    scheme, n, r, p, salt, _key = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", FAST.n, FAST.r, FAST.p)
    assert salt != second.split("$")[4]
    # Raising the parameters later leaves old records readable.
    stronger = hash_password("same", ScryptParams(n=2**5, r=8, p=1))
    assert verify_password("same", first) and verify_password("same", stronger)


@pytest.mark.parametrize("record", ["", "scrypt$x$8$1$AA==$AA==", "md5$16$8$1$AA==$AA==",
                                    "scrypt$16$8$1$!!$AA=="])
def test_a_damaged_record_matches_nothing(record: str) -> None:
    assert not verify_password("anything", record)


def test_the_dummy_record_matches_no_password() -> None:
    assert not verify_password("", dummy_record())
    assert dummy_record() == dummy_record()  # derived once


def test_the_worker_runs_jobs_off_the_calling_thread_and_hands_answers_back() -> None:
    handed: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
    worker = PasswordWorker(handed.put)
    threads: list[str] = []
    results: list[bool | str] = []

    def done(result: bool | str) -> None:
        threads.append(threading.current_thread().name)
        results.append(result)

    worker.submit(HashPassword(1, "correct horse"), done)
    handed.get(timeout=10)()  # what the loop does with call_soon_threadsafe
    record = results[0]
    assert isinstance(record, str) and verify_password("correct horse", record)
    worker.submit(VerifyPassword(2, "wrong horse", record), done)
    handed.get(timeout=10)()
    assert results[1] is False
    assert threads == [threading.current_thread().name] * 2  # answers run where handed
    worker.close()


def test_the_default_cost_is_measurable_and_bounded() -> None:
    # The reason it runs on a worker: tens of milliseconds per derivation.
    began = time.perf_counter()
    hash_password("correct horse")
    assert time.perf_counter() - began < 5.0


# -- stores --------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SyncStore:
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(tmp_path / "h.db")


def test_accounts_are_saved_replaced_and_dropped_in_batches(store: SyncStore) -> None:
    alice = StoredAccount("alice", "Alice", "rec-1", 10.0)
    store.apply(WriteBatch(1, (SaveAccount(alice), SaveAccount(StoredAccount("bob", "bob", "r")))))
    store.apply(WriteBatch(2, (SaveAccount(StoredAccount("alice", "Alice", "rec-2", 11.0)),
                               DropAccount("bob"))))
    assert store.load_state().accounts == (StoredAccount("alice", "Alice", "rec-2", 11.0),)
    store.close()


def test_accounts_survive_a_reopen(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "h.db")
    store.apply(WriteBatch(1, (SaveAccount(StoredAccount("alice", "Alice", "rec", 1.0)),)))
    store.close()
    again = SQLiteStore(tmp_path / "h.db")
    assert [a.name for a in again.accounts()] == ["Alice"]
    again.close()


def test_a_version_3_file_is_migrated_to_hold_accounts(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for version in (1, 2, 3):
        MIGRATIONS[version](conn)
    conn.execute("INSERT INTO messages (room, seq, sender, sender_key, color, text, ts)"
                 " VALUES ('lobby', 1, 'Al', 'al', '#e06c75', 'old', 1.0)")
    conn.execute("INSERT INTO rooms VALUES ('lobby', 1)")
    conn.execute("PRAGMA user_version=3")
    conn.commit()
    conn.close()
    store = SQLiteStore(db)
    assert SCHEMA_VERSION >= 4
    assert store.accounts() == [] and store.last_seqs() == {"lobby": 1}
    store.apply(WriteBatch(1, (SaveAccount(StoredAccount("al", "Al", "rec", 2.0)),)))
    assert [a.name_key for a in store.accounts()] == ["al"]
    store.close()
