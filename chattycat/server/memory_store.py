"""The in-memory history store: what ``--db :memory:`` runs on, and what tests drive.

It keeps the same promises as the SQLite store (a batch is applied whole or
not at all, numbering is never reset by pruning) without a file, so a state
machine test can run thousands of steps without SQLite, and fail or delay a
commit at will.

Messages are kept as plain tuples of their fields, not as ``Message`` objects:
a tuple of strings and numbers is not tracked by Python's cycle collector,
while a million kept objects would be walked by every full collection, a
pause of a tenth of a second in the middle of a busy server's fan-out.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message
from chattycat.server.effects import Append, StoredAccount, StoredSession, WriteBatch
from chattycat.server.store import SyncStore

__all__ = ["MemoryStore"]

# A stored message: (seq, from, color, text, ts, id, action).
_Row = tuple[int, str, str, str, float, str | None, bool]


def _row(m: Message) -> _Row:
    return (m.seq, m.sender, m.color, m.text, m.ts, m.id, m.action)


def _message(room: str, row: _Row) -> Message:
    return Message(room, *row)


class MemoryStore(SyncStore):
    """Messages per room in seq order, sessions by name key; nothing survives the process."""

    def __init__(self) -> None:
        self._messages: dict[str, list[_Row]] = {}
        self._seqs: dict[str, list[int]] = {}  # parallel to _messages, for bisect
        self._last_seq: dict[str, int] = {}
        self._sessions: dict[str, StoredSession] = {}
        self._accounts: dict[str, StoredAccount] = {}
        # (session, room) -> that session's messages with an id, oldest first.
        self._with_ids: dict[tuple[str, str], list[_Row]] = {}
        self._transaction: list[tuple[str, object]] = []

    # -- writes (buffered until commit, so a batch lands whole) -----------------

    def add(self, message: Message, session: str | None = None) -> None:
        """Put ``message`` (sent by ``session``) into the open transaction."""
        self._transaction.append(("add", (message, session)))

    def save_session(self, session: StoredSession) -> None:
        """Create or replace a session, in the open transaction."""
        self._transaction.append(("save", session))

    def drop_session(self, name_key: str) -> None:
        """Forget a session, in the open transaction."""
        self._transaction.append(("drop", name_key))

    def save_account(self, account: StoredAccount) -> None:
        """Create or replace an account, in the open transaction."""
        self._transaction.append(("save_account", account))

    def drop_account(self, name_key: str) -> None:
        """Forget an account, in the open transaction."""
        self._transaction.append(("drop_account", name_key))

    def apply(self, batch: WriteBatch) -> None:
        """Check the batch's numbering first, then write it whole."""
        expected = dict(self._last_seq)
        for write in batch.writes:
            if isinstance(write, Append):
                m = write.message
                if m.seq != expected.get(m.room, 0) + 1:
                    self._transaction.clear()
                    raise StoreError(f"room {m.room}: seq {m.seq} out of order")
                expected[m.room] = m.seq
        super().apply(batch)

    def commit(self) -> None:
        """Apply the open transaction."""
        transaction, self._transaction = self._transaction, []
        for kind, item in transaction:
            if kind == "add":
                assert isinstance(item, tuple)
                message, session = item
                row = _row(message)
                self._messages.setdefault(message.room, []).append(row)
                self._seqs.setdefault(message.room, []).append(message.seq)
                self._last_seq[message.room] = message.seq
                if message.id is not None and session is not None:
                    self._with_ids.setdefault((session, message.room), []).append(row)
            elif kind == "save":
                assert isinstance(item, StoredSession)
                self._sessions[item.name_key] = item
            elif kind == "save_account":
                assert isinstance(item, StoredAccount)
                self._accounts[item.name_key] = item
            elif kind == "drop_account":
                assert isinstance(item, str)
                self._accounts.pop(item, None)
            else:
                assert isinstance(item, str)
                self._sessions.pop(item, None)

    # -- reads -----------------------------------------------------------------

    def messages_between(self, room: str, above: int, up_to: int, limit: int,
                         newest: bool) -> list[Message]:
        """At most ``limit`` messages with ``above < seq <= up_to``, oldest first."""
        seqs = self._seqs.get(room)
        if not seqs or limit <= 0:
            return []
        low = bisect.bisect_right(seqs, above)
        high = bisect.bisect_right(seqs, up_to)
        if high - low > limit:
            low, high = (high - limit, high) if newest else (low, low + limit)
        return [_message(room, row) for row in self._messages[room][low:high]]

    def recent_ids(self, session: str, room: str, limit: int) -> list[Message]:
        """The last ``limit`` messages with an id that ``session`` sent to ``room``."""
        found = self._with_ids.get((session, room), [])
        return [_message(room, row) for row in found[-limit:]] if limit > 0 else []

    def last_seqs(self) -> dict[str, int]:
        """Every room's counter."""
        return dict(self._last_seq)

    def sessions(self) -> list[StoredSession]:
        """Every stored session."""
        return list(self._sessions.values())

    def accounts(self) -> list[StoredAccount]:
        """Every account."""
        return list(self._accounts.values())

    def all_messages(self, room: str) -> list[Message]:
        """Every stored message of ``room``, oldest first (for tests and tools)."""
        return [_message(room, row) for row in self._messages.get(room, ())]

    # -- upkeep ----------------------------------------------------------------

    def delete_older(self, older_than_ts: float) -> int:
        """Delete messages older than ``older_than_ts``; the counters stay."""
        removed = 0
        for room, rows in self._messages.items():
            kept = [row for row in rows if row[4] >= older_than_ts]
            removed += len(rows) - len(kept)
            self._keep(room, kept)
        for pair, rows in self._with_ids.items():
            self._with_ids[pair] = [row for row in rows if row[4] >= older_than_ts]
        return removed

    def _keep(self, room: str, rows: Iterable[_Row]) -> None:
        self._messages[room] = list(rows)
        self._seqs[room] = [row[0] for row in self._messages[room]]

    def close(self) -> None:
        """Nothing to release."""
