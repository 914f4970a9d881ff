"""The machine's account with its store: room counters, writes in flight, reads owed.

The machine numbers messages itself (it is the one owner of each room's
seq) and hands the writes to the store in batches. One batch is in flight at
a time; while it is, new writes gather in the next one, so a store that
commits slowly gets bigger batches rather than more of them. A read goes out
only after the batch holding anything it must see, because a store carries
out what it is given in order.

If a batch fails, every message not yet committed, in flight or gathering,
is given up: the counters go back to what is committed, so the numbering
stays 1..n without gaps, and the senders are told to send again.
"""

from __future__ import annotations

from collections.abc import Mapping

from chattycat.protocol.messages import Message
from chattycat.server.effects import (
    Append,
    LoadHistory,
    Read,
    StoreWork,
    Write,
    WriteBatch,
)
from chattycat.server.model import Pending, User

__all__ = ["Ledger"]


class Ledger:
    """Counters, the open batch, the batch in flight and the reads not yet sent."""

    def __init__(self) -> None:
        self._last_seq: dict[str, int] = {}  # numbered, committed or not
        self._committed: dict[str, int] = {}
        self._open: list[Write] = []
        self._open_id = 1
        self._open_has_messages = False
        self._in_flight: WriteBatch | None = None
        self.pending: dict[tuple[str, int], Pending] = {}
        # Reads not yet handed out, each with the batch it must follow (or 0).
        self._reads: list[tuple[int, Read]] = []
        self._next_read = 1

    def restore(self, last_seqs: Mapping[str, int]) -> None:
        """Counters as the store has them at start."""
        self._last_seq = dict(last_seqs)
        self._committed = dict(last_seqs)

    # -- counters --------------------------------------------------------------

    def last_seq(self, room: str) -> int:
        """The highest seq given out in ``room``, committed or not."""
        return self._last_seq.get(room, 0)

    def knows(self, room: str) -> bool:
        """Whether ``room`` ever had a message numbered."""
        return room in self._last_seq

    # -- writes ----------------------------------------------------------------

    def batch_opening(self) -> int | None:
        """The open batch's id if the next message will be its first; else None."""
        return None if self._open_has_messages else self._open_id

    def append(self, message: Message, sender: User) -> None:
        """Number ``message`` (its seq must be the next) and add it to the open batch."""
        self._last_seq[message.room] = message.seq
        self._open.append(Append(message, sender.session_key))
        self._open_has_messages = True
        self.pending[(message.room, message.seq)] = Pending(message, sender)

    def write(self, write: Write) -> None:
        """Add a session write to the open batch."""
        self._open.append(write)

    def committed(self, batch_id: int) -> WriteBatch | None:
        """The batch in flight is durable; returns it (None if it was not in flight)."""
        batch = self._in_flight
        if batch is None or batch.id != batch_id:
            return None
        self._in_flight = None
        for message in batch.messages:
            self._committed[message.room] = message.seq
            self.pending.pop((message.room, message.seq), None)
        return batch

    def failed(self, batch_id: int) -> list[Pending] | None:
        """The batch in flight failed: give up every uncommitted message; returns them."""
        batch = self._in_flight
        if batch is None or batch.id != batch_id:
            return None
        self._in_flight = None
        lost = list(self.pending.values())
        self.pending.clear()
        for pending in lost:
            room = pending.message.room
            if room in self._committed:
                self._last_seq[room] = self._committed[room]
            else:
                self._last_seq.pop(room, None)
        # Session writes are idempotent upserts: keep them for the next batch.
        sessions: list[Write] = [
            w for w in (*batch.writes, *self._open) if not isinstance(w, Append)
        ]
        self._open, self._open_has_messages = sessions, False
        self._reads = [(0, self._clamped(read)) for _after, read in self._reads]
        return lost

    def _clamped(self, read: Read) -> Read:
        if isinstance(read, LoadHistory):
            committed = self._committed.get(read.room, 0)
            if read.up_to > committed:
                return LoadHistory(read.read, read.room, read.page, read.seq, read.limit,
                                   committed)
        return read

    def in_flight(self) -> WriteBatch | None:
        """The batch the store has and has not answered for."""
        return self._in_flight

    # -- reads -----------------------------------------------------------------

    def next_read(self) -> int:
        """A fresh read number."""
        number, self._next_read = self._next_read, self._next_read + 1
        return number

    def read(self, read: Read) -> None:
        """Queue ``read`` behind the open batch if that holds messages."""
        self._reads.append((self._open_id if self._open_has_messages else 0, read))

    # -- handing out -------------------------------------------------------------

    def take(self) -> StoreWork:
        """The next batch (when none is in flight) and the reads that may follow it."""
        batch = None
        if self._in_flight is None and self._open:
            batch = WriteBatch(self._open_id, tuple(self._open))
            self._in_flight = batch
            self._open, self._open_id, self._open_has_messages = [], self._open_id + 1, False
        if not self._reads:
            return StoreWork(batch)
        ready = tuple(read for after, read in self._reads if after < self._open_id)
        if ready:
            self._reads = [(after, read) for after, read in self._reads
                           if after >= self._open_id]
        return StoreWork(batch, ready)

    def has_work(self) -> bool:
        """Whether :meth:`take` would hand out anything."""
        if self._in_flight is None and self._open:
            return True
        return any(after < self._open_id for after, _read in self._reads)

