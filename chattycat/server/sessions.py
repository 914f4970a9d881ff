"""The server's sessions: the secrets that let a user take its name back (PROTOCOL 7).

A session is created by a fresh ``hello`` and lives while its user is
connected; after a disconnect it is *parked* for ``ttl_s`` so that a ``hello``
with the same name and secret resumes it (same secret, same color when still
distinct). Every change leaves as a write (:class:`SaveSession`,
:class:`DropSession`) for the store, so a server restarted on the same history
file still knows them; only a digest of each secret is written, so the file
does not hand out the keys to everyone's name. The book itself does no I/O.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from hmac import compare_digest

from chattycat.server.effects import DropSession, SaveSession, StoredSession, Write

__all__ = ["ParkedSession", "SessionBook", "new_secret", "secret_digest"]

SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh session secret for ``welcome.session``."""
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> str:
    """What is kept of a secret: enough to check one, useless to present."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ParkedSession:
    """A disconnected user's session, waiting for a ``hello`` to resume it."""

    digest: str
    color: str
    expires_at: float
    parked_at: float = 0.0  # wall seconds; the name stays reserved for a grace period


class SessionBook:
    """Parked sessions by user name key; every change is handed to ``write``.

    Times are wall-clock seconds: a session's expiry outlives the process.
    """

    def __init__(self, ttl_s: float, write: Callable[[Write], None],
                 max_parked: int = 10_000, grace_s: float = 0.0) -> None:
        self._ttl_s = ttl_s
        self._grace_s = grace_s
        self._write = write
        self.max_parked = max(1, max_parked)
        # Insertion order is parking order: the first is the longest idle.
        self._parked: dict[str, ParkedSession] = {}

    def restore(self, stored_sessions: Iterable[StoredSession], now: float) -> None:
        """Take back the sessions a previous run left in the store."""
        for stored in stored_sessions:
            # Users connected when the server stopped get a full ttl from now:
            # their clients are about to come back.
            start = now if stored.active else stored.seen_at
            if start + self._ttl_s > now:
                self._parked[stored.name_key] = ParkedSession(
                    stored.digest, stored.color, start + self._ttl_s, start
                )
            else:
                self._write(DropSession(stored.name_key))
        # Oldest first, so that the bound below drops the longest idle.
        self._parked = dict(sorted(self._parked.items(), key=lambda kv: kv[1].expires_at))
        self._evict()

    def opened(self, key: str, secret: str, color: str, now: float) -> None:
        """A user is signed in with this session (new or resumed)."""
        self._parked.pop(key, None)
        self._write(SaveSession(StoredSession(key, secret_digest(secret), color, True, now)))

    def park(self, key: str, secret: str, color: str, now: float) -> list[str]:
        """The user disconnected: keep its session for a while.

        Returns the digests of sessions dropped to stay within ``max_parked``
        (the longest idle go first), whose windows must go too.
        """
        digest = secret_digest(secret)
        self._parked.pop(key, None)
        self._parked[key] = ParkedSession(digest, color, now + self._ttl_s, now)
        self._write(SaveSession(StoredSession(key, digest, color, False, now)))
        return self._evict()

    def parked_count(self) -> int:
        """Sessions parked now."""
        return len(self._parked)

    def _evict(self) -> list[str]:
        evicted = []
        while len(self._parked) > self.max_parked:
            key = next(iter(self._parked))
            evicted.append(self._parked.pop(key).digest)
            self._write(DropSession(key))
        return evicted

    def renamed(self, old_key: str, new_key: str, secret: str, color: str, now: float) -> str:
        """The session moves to a new name; returns the digest of a session it displaced."""
        displaced = self._parked.pop(new_key, None)
        if old_key != new_key:
            self._write(DropSession(old_key))
        self.opened(new_key, secret, color, now)
        return displaced.digest if displaced is not None else ""

    def holds(self, key: str, secret: str | None) -> bool:
        """Whether ``secret`` is the secret of the session parked for ``key``."""
        parked = self._parked.get(key)
        return (parked is not None and secret is not None
                and compare_digest(secret_digest(secret), parked.digest))

    def reserved(self, key: str, secret: str | None, now: float) -> bool:
        """Whether ``key`` is kept for its parked session, which ``secret`` is not.

        For a grace period after a disconnect the name waits for its own
        client, so that a reconnecting user is not raced for it.
        """
        parked = self._parked.get(key)
        if parked is None or now - parked.parked_at >= self._grace_s:
            return False
        return not self.holds(key, secret)

    def claim(self, key: str, secret: str | None) -> tuple[ParkedSession | None, str]:
        """Take the parked session of ``key`` if ``secret`` is its secret.

        Returns (the session or None, the digest of a parked session that the
        hello did not match and that is therefore over for good, or "").
        """
        parked = self._parked.pop(key, None)
        if parked is None:
            return None, ""
        if secret is not None and compare_digest(secret_digest(secret), parked.digest):
            return parked, ""
        return None, parked.digest

    def expire(self, now: float) -> list[tuple[str, str]]:
        """Forget sessions parked for longer than the ttl; their (name key, digest)."""
        gone = [(key, p.digest) for key, p in self._parked.items() if p.expires_at <= now]
        for key, _digest in gone:
            del self._parked[key]
            self._write(DropSession(key))
        return gone
