"""History stores: the interface the server's wiring drives, and a base for local ones.

The room state machine never calls a store. The wiring
(:mod:`chattycat.server.app`) takes the machine's store work at the end of
each loop pass, hands it to a :class:`HistoryStore`, and feeds the outcome
back to the machine. The interface is shaped so that a store across the
network fits it as well as one in the process:

- every call may complete at once (before it returns) or in a later loop
  pass, by calling ``done`` on the loop's thread;
- a store carries out what it is given in the order it was given: a read
  submitted after a batch sees that batch;
- a batch is the unit of commit: all of its writes are durable, or none.

:class:`SyncStore` turns a store with plain blocking methods (SQLite, memory)
into that interface.
"""

from __future__ import annotations

import os
import pathlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message
from chattycat.server.effects import (
    Append,
    DropAccount,
    DropSession,
    LoadHistory,
    LoadIds,
    Page,
    Read,
    SaveAccount,
    SaveSession,
    StoredAccount,
    StoredSession,
    StoredState,
    Write,
    WriteBatch,
)

__all__ = [
    "HistoryStore",
    "ReadDone",
    "ReadResult",
    "StoredAccount",
    "StoredSession",
    "SyncStore",
    "WriteDone",
    "default_history_path",
]


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A store's answer to a read: messages oldest first, and whether some were left out."""

    messages: list[Message]
    truncated: bool = False


WriteDone = Callable[[WriteBatch, StoreError | None], None]
ReadDone = Callable[[Read, ReadResult | StoreError], None]
PruneDone = Callable[[int | StoreError], None]


class HistoryStore(Protocol):
    """Where messages and sessions are kept, as the server's wiring uses it."""

    def load_state(self) -> StoredState:
        """Room counters, sessions and accounts, once at start (may block; raises StoreError)."""
        ...

    def submit(self, batch: WriteBatch, done: WriteDone) -> None:
        """Make ``batch`` durable, then call ``done(batch, None)``, or ``done(batch, error)``."""
        ...

    def fetch(self, read: Read, done: ReadDone) -> None:
        """Answer ``read`` through ``done``, after every batch submitted before it."""
        ...

    def prune(self, older_than_ts: float, done: PruneDone) -> None:
        """Delete messages older than ``older_than_ts``; numbering is kept. Reports the count."""
        ...

    def close(self) -> None:
        """Finish what is pending and release the store."""
        ...


class SyncStore(ABC):
    """The :class:`HistoryStore` calls, for a store whose own methods block briefly.

    Subclasses provide the plain operations; every ``done`` here is called
    before the method returns.
    """

    # -- what a subclass provides -----------------------------------------------

    @abstractmethod
    def add(self, message: Message, session: str | None = None) -> None:
        """Put ``message`` (sent by ``session``, a digest) into the open transaction."""

    @abstractmethod
    def save_session(self, session: StoredSession) -> None:
        """Create or replace a session, in the open transaction."""

    @abstractmethod
    def drop_session(self, name_key: str) -> None:
        """Forget a session, in the open transaction."""

    @abstractmethod
    def save_account(self, account: StoredAccount) -> None:
        """Create or replace an account, in the open transaction."""

    @abstractmethod
    def drop_account(self, name_key: str) -> None:
        """Forget an account, in the open transaction."""

    @abstractmethod
    def accounts(self) -> list[StoredAccount]:
        """Every account."""

    @abstractmethod
    def commit(self) -> None:
        """Make the open transaction durable (or roll it back and raise StoreError)."""

    @abstractmethod
    def messages_between(self, room: str, above: int, up_to: int, limit: int,
                         newest: bool) -> list[Message]:
        """At most ``limit`` messages with ``above < seq <= up_to``, oldest first.

        ``newest`` picks the highest such seqs, otherwise the lowest.
        """

    @abstractmethod
    def recent_ids(self, session: str, room: str, limit: int) -> list[Message]:
        """The last ``limit`` messages with an id that ``session`` sent to ``room``."""

    @abstractmethod
    def delete_older(self, older_than_ts: float) -> int:
        """Delete messages older than ``older_than_ts`` and commit; returns how many."""

    @abstractmethod
    def last_seqs(self) -> dict[str, int]:
        """Every room's counter."""

    @abstractmethod
    def sessions(self) -> list[StoredSession]:
        """Every stored session."""

    # -- the HistoryStore interface ------------------------------------------------

    def load_state(self) -> StoredState:
        """Room counters, sessions and accounts."""
        return StoredState(self.last_seqs(), tuple(self.sessions()), tuple(self.accounts()))

    def submit(self, batch: WriteBatch, done: WriteDone) -> None:
        """Write and commit ``batch`` in one transaction."""
        try:
            self.apply(batch)
        except StoreError as exc:
            done(batch, exc)
        else:
            done(batch, None)

    def apply(self, batch: WriteBatch) -> None:
        """Write and commit ``batch``; raises StoreError with nothing of it kept."""
        for write in batch.writes:
            self.apply_write(write)
        self.commit()

    def apply_write(self, write: Write) -> None:
        """Put one write into the open transaction."""
        if isinstance(write, Append):
            self.add(write.message, write.session)
        elif isinstance(write, SaveSession):
            self.save_session(write.session)
        elif isinstance(write, DropSession):
            self.drop_session(write.name_key)
        elif isinstance(write, SaveAccount):
            self.save_account(write.account)
        elif isinstance(write, DropAccount):
            self.drop_account(write.name_key)

    def fetch(self, read: Read, done: ReadDone) -> None:
        """Answer ``read`` now."""
        try:
            result = self.answer(read)
        except StoreError as exc:
            done(read, exc)
        else:
            done(read, result)

    def answer(self, read: Read) -> ReadResult:
        """What ``read`` asks for."""
        if isinstance(read, LoadIds):
            return ReadResult(self.recent_ids(read.session, read.room, read.limit))
        return self._page(read)

    def _page(self, read: LoadHistory) -> ReadResult:
        room, seq, limit, up_to = read.room, read.seq, read.limit, read.up_to
        if read.page is Page.LATEST:
            return ReadResult(self.messages_between(room, 0, up_to, limit, newest=True))
        if read.page is Page.RESUME:
            # One extra row tells whether more than `limit` exist without a count.
            found = self.messages_between(room, seq, up_to, limit + 1, newest=True)
            if len(found) > limit:
                return ReadResult(found[len(found) - limit:], truncated=True)
            return ReadResult(found)
        if read.page is Page.AFTER:
            return ReadResult(self.messages_between(room, seq, up_to, limit, newest=False))
        return ReadResult(self.messages_between(room, 0, min(seq - 1, up_to), limit, newest=True))

    def prune(self, older_than_ts: float, done: PruneDone) -> None:
        """Delete old messages now."""
        try:
            removed = self.delete_older(older_than_ts)
        except StoreError as exc:
            done(exc)
        else:
            done(removed)


def default_history_path(app_name: str = "chattycat") -> pathlib.Path:
    """Where the history file lives by default: the user's data directory."""
    home = pathlib.Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        data = pathlib.Path(base) if base else home
    elif sys.platform == "darwin":
        data = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        # The XDG spec says a relative value is invalid and must be ignored.
        data = pathlib.Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"
    return data / app_name / "history.sqlite3"
