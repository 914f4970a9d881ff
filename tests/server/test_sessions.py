"""The server's session book: parking, resuming, expiry and persistence of sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chattycat.server.effects import StoredSession, WriteBatch
from chattycat.server.memory_store import MemoryStore
from chattycat.server.sessions import SessionBook, new_secret, secret_digest

TTL_S = 100.0
RED = "#e06c75"


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    store.close()


def on(store: MemoryStore) -> SessionBook:
    """A book whose writes the store commits at once, each in a batch of its own."""
    return SessionBook(TTL_S, lambda write: store.apply(WriteBatch(0, (write,))))


def test_a_parked_session_is_claimed_only_with_its_secret(store: MemoryStore) -> None:
    book = on(store)
    secret = new_secret()
    book.park("alice", secret, RED, now=0.0)
    assert book.claim("alice", "wrong") == (None, secret_digest(secret))
    assert book.claim("alice", secret) == (None, "")  # the wrong guess ended it


def test_the_right_secret_resumes_the_session_with_its_color(store: MemoryStore) -> None:
    book = on(store)
    secret = new_secret()
    book.park("alice", secret, RED, now=0.0)
    parked, over = book.claim("alice", secret)
    assert parked is not None and parked.color == RED and over == ""


def test_parked_sessions_expire_after_the_ttl(store: MemoryStore) -> None:
    book = on(store)
    secret = new_secret()
    book.park("alice", secret, RED, now=0.0)
    assert book.expire(TTL_S - 1) == []
    assert book.expire(TTL_S) == [("alice", secret_digest(secret))]
    assert store.sessions() == []


def test_only_a_digest_of_the_secret_is_stored(store: MemoryStore) -> None:
    book = on(store)
    secret = new_secret()
    book.opened("alice", secret, RED, now=5.0)
    [stored] = store.sessions()
    assert stored == StoredSession("alice", secret_digest(secret), RED, True, 5.0)
    assert secret not in repr(stored)


def test_restore_gives_connected_users_a_full_ttl_and_drops_expired_parked_ones(
    store: MemoryStore,
) -> None:
    store.save_session(StoredSession("alice", secret_digest("a"), RED, True, 0.0))
    store.save_session(StoredSession("bob", secret_digest("b"), RED, False, 0.0))
    store.save_session(StoredSession("carol", secret_digest("c"), RED, False, 950.0))
    store.commit()
    book = on(store)
    book.restore(store.sessions(), now=1000.0)
    assert book.claim("alice", "a")[0] is not None  # was connected when the server stopped
    assert book.claim("bob", "b")[0] is None  # parked long ago: expired
    assert book.claim("carol", "c")[0] is not None
    assert {s.name_key for s in store.sessions()} == {"alice", "carol"}


def test_a_rename_moves_the_session_and_displaces_a_parked_one(store: MemoryStore) -> None:
    book = on(store)
    mine, theirs = new_secret(), new_secret()
    book.opened("alice", mine, RED, now=0.0)
    book.park("al", theirs, RED, now=0.0)
    assert book.renamed("alice", "al", mine, RED, now=1.0) == secret_digest(theirs)
    assert [s.name_key for s in store.sessions()] == ["al"]
    assert store.sessions()[0].digest == secret_digest(mine)
