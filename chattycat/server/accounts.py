"""Accounts and the server password, as the state machine keeps them (PROTOCOL 10).

The machine knows every account (they are few: loaded at start with the
sessions) and decides who may have a name; the key derivation itself is an
effect (:class:`~chattycat.server.effects.VerifyPassword`), run by the wiring.

Guessing is slowed per address: each failed authentication from an address
doubles how long its next ``auth_failed`` is held back (1 s, 2 s, 4 s, up to
:data:`AUTH_DELAY_MAX_S`), and an address is forgiven after
:data:`AUTH_FAILURE_MEMORY_S` without failures. The machine holds the reply
behind a deadline that :meth:`~chattycat.server.state.ChatState.tick` checks,
so the delay is decided and kept without a timer of its own, and a test on a
fake clock measures it exactly. A connection whose answer is held waits like
one waiting for the store: what it sends meanwhile is parked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from hmac import compare_digest

from chattycat.errors import ProtocolError
from chattycat.protocol.messages import Request
from chattycat.server.effects import ConnId, PasswordJob, StoredAccount

__all__ = ["AccountMode", "Accounts", "HeldReply", "PasswordWait"]

AUTH_DELAY_BASE_S = 1.0
AUTH_DELAY_MAX_S = 8.0  # under the 10 s handshake timeout, so the answer still arrives
AUTH_FAILURE_MEMORY_S = 600.0
MAX_TRACKED_ADDRESSES = 10_000
# Derivations asked for and not yet answered, per address and in total. Each
# costs ~50 ms of the worker: without a bound, connections that send a hello
# and hang up would queue work faster than it is done, and a real user's
# sign-in would wait behind all of it.
MAX_JOBS_PER_ADDRESS = 2
MAX_JOBS = 32


class AccountMode(Enum):
    """Who may register a name: anyone for their own name, only the operator, or nobody."""

    OPEN = "open"
    REQUIRED = "required"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class PasswordWait:
    """A request waiting for a password job: who sent it, and whether it must fail anyway."""

    conn: ConnId
    request: Request
    address: str = ""
    # An unknown name is checked against a dummy record, so that both answers
    # cost the same time; its verdict is ignored.
    doomed: bool = False


@dataclass(frozen=True, slots=True)
class HeldReply:
    """An ``auth_failed`` held back until ``due`` (monotonic seconds)."""

    due: float
    conn: ConnId
    wait: int  # the connection's ``waiting`` number while held
    error: ProtocolError


class Accounts:
    """Registered names, the server password, password jobs and held failures."""

    def __init__(self, mode: AccountMode, server_password: str | None) -> None:
        self.mode = mode
        self._server_password = server_password
        self._accounts: dict[str, StoredAccount] = {}
        self._jobs: list[PasswordJob] = []  # not yet handed to the wiring
        self._waits: dict[int, PasswordWait] = {}  # asked for, not yet answered
        self._jobs_by_address: dict[str, int] = {}
        self.held: list[HeldReply] = []
        # address -> (failures, monotonic time of the last); oldest first.
        self._failures: dict[str, tuple[int, float]] = {}

    def restore(self, accounts: Iterable[StoredAccount]) -> None:
        """Take back the accounts the store holds."""
        self._accounts = {a.name_key: a for a in accounts}

    def get(self, key: str) -> StoredAccount | None:
        """The account of a name key, if it is registered (and accounts are on)."""
        return None if self.mode is AccountMode.OFF else self._accounts.get(key)

    def add(self, account: StoredAccount) -> None:
        """A name was registered."""
        self._accounts[account.name_key] = account

    @property
    def required(self) -> bool:
        """Whether only names the operator added may be used."""
        return self.mode is AccountMode.REQUIRED

    def server_password_ok(self, presented: str | None) -> bool:
        """Whether a hello's ``server_password`` opens this server."""
        if self._server_password is None:
            return True
        return presented is not None and compare_digest(presented.encode(),
                                                        self._server_password.encode())

    # -- password jobs ----------------------------------------------------------

    def can_ask(self, address: str) -> bool:
        """Whether another derivation may be asked for on behalf of ``address``."""
        return (len(self._waits) < MAX_JOBS
                and self._jobs_by_address.get(address, 0) < MAX_JOBS_PER_ADDRESS)

    def ask(self, job: PasswordJob, wait: PasswordWait) -> None:
        """Queue a job for the wiring; ``wait`` is what to resume with its answer."""
        self._jobs.append(job)
        self._waits[job.job] = wait
        self._jobs_by_address[wait.address] = self._jobs_by_address.get(wait.address, 0) + 1

    def answered(self, job: int) -> PasswordWait | None:
        """The wait of a job the wiring answered (None if unknown)."""
        wait = self._waits.pop(job, None)
        if wait is not None:
            left = self._jobs_by_address.pop(wait.address, 1) - 1
            if left > 0:
                self._jobs_by_address[wait.address] = left
        return wait

    def take_jobs(self) -> list[PasswordJob]:
        """The jobs not yet handed out."""
        jobs, self._jobs = self._jobs, []
        return jobs

    # -- failures -------------------------------------------------------------------

    def failed(self, address: str, now: float) -> float:
        """Count a failure from ``address``; returns how long to hold its answer."""
        count, last = self._failures.pop(address, (0, now))
        if now - last >= AUTH_FAILURE_MEMORY_S:
            count = 0
        count += 1
        self._failures[address] = (count, now)
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            del self._failures[next(iter(self._failures))]
        return float(min(AUTH_DELAY_MAX_S, AUTH_DELAY_BASE_S * 2 ** (count - 1)))

    def hold(self, reply: HeldReply) -> None:
        """Keep ``reply`` until its time."""
        self.held.append(reply)

    def due(self, now: float) -> list[HeldReply]:
        """Held replies whose time has come, taken out."""
        ready = [r for r in self.held if r.due <= now]
        if ready:
            self.held = [r for r in self.held if r.due > now]
        return ready
