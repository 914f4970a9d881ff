"""Account passwords: scrypt records, and a worker that derives them off the loop.

A record is ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (salt and key in URL-safe
base64): the parameters travel with each record, so they can be raised later
without making old records unreadable, and every user has a random salt, so
one guess cannot be tried against all accounts at once.

scrypt with n=2**14, r=8, p=1 uses 16 MiB and about 50 ms of one core per
derivation (docs/security.md has the figures). That is what makes guessing
expensive, and also why it never runs on the event loop: one hello would
stall every other client for that long. :class:`PasswordWorker` runs the
derivations on one thread of its own (hashlib releases the GIL while scrypt
runs) and hands each answer back to the loop's thread.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chattycat.server.effects import HashPassword, PasswordJob, VerifyPassword

__all__ = [
    "DEFAULT_PARAMS",
    "PasswordWorker",
    "ScryptParams",
    "dummy_record",
    "hash_password",
    "run_job",
    "verify_password",
]

log = logging.getLogger("chattycat.server.passwords")

SALT_BYTES = 16
KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost: ``n`` (CPU and memory), ``r`` (block size), ``p`` (parallelism)."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    @property
    def max_memory_bytes(self) -> int:
        # scrypt needs 128 * n * r bytes; leave room over it for OpenSSL's own.
        return 128 * self.n * self.r * self.p + 2 * 1024 * 1024


DEFAULT_PARAMS = ScryptParams()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=params.n, r=params.r,
                          p=params.p, maxmem=params.max_memory_bytes, dklen=KEY_BYTES)


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """A new record for ``password``, with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, params)
    return f"scrypt${params.n}${params.r}${params.p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, record: str) -> bool:
    """Whether ``password`` is the one ``record`` was made from (False for a damaged record)."""
    try:
        scheme, n, r, p, salt, key = record.split("$")
        params = ScryptParams(int(n), int(r), int(p))
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(key)
        derived = _derive(password, base64.urlsafe_b64decode(salt), params)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(derived, expected)


_DUMMY: list[str] = []


def dummy_record() -> str:
    """A record no password matches, checked for unknown names so both answers cost the same."""
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(32)))
    return _DUMMY[0]


def run_job(job: PasswordJob) -> bool | str:
    """Carry out one job: a record for HashPassword, a verdict for VerifyPassword."""
    if isinstance(job, HashPassword):
        return hash_password(job.password)
    return verify_password(job.password, job.record)


Handoff = Callable[[Callable[[], None]], object]


class PasswordWorker:
    """One thread running password jobs in order; answers go through ``handoff``.

    ``handoff`` puts a callable on the loop's thread (the loop's
    ``call_soon_threadsafe``), so the machine is only ever touched there.
    """

    def __init__(self, handoff: Handoff) -> None:
        self._handoff = handoff
        self._jobs: queue.SimpleQueue[tuple[PasswordJob, Callable[[bool | str], None]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, job: PasswordJob, done: Callable[[bool | str], None]) -> None:
        """Run ``job`` off the loop; ``done(result)`` is called on the loop's thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="chattycat-passwords",
                                            daemon=True)
            self._thread.start()
        self._jobs.put((job, done))

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, done = item
            try:
                result = run_job(job)
            except Exception:  # a boundary: one job, logged, answered as a failure
                log.exception("password job %d failed", job.job)
                result = False if isinstance(job, VerifyPassword) else ""
            self._handoff(functools.partial(done, result))

    def close(self) -> None:
        """Stop the thread after the jobs already given."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=5.0)
            self._thread = None
