"""``history`` replies: asked of the store, answered in their place in the output.

A join, a resume or a ``history`` request needs stored messages. The machine
asks the store (a :class:`LoadHistory` bounded by the room's seq at that
moment, so a message numbered later is not sent twice) and keeps a slot in
the output queue; whenever the store answers, in this pass or a later one,
the frames fill the slot and leave in order with everything around them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chattycat.errors import ErrorCode, ProtocolError
from chattycat.protocol.messages import Error, Message
from chattycat.server.effects import ConnId, Effect, LoadHistory, Page, Send
from chattycat.server.fit import fit_history
from chattycat.server.ledger import Ledger
from chattycat.server.output import OutputQueue

__all__ = ["HistoryReplies"]


class HistoryReplies:
    """History reads in flight, each with the connection and request it answers."""

    def __init__(self, ledger: Ledger, out: OutputQueue, max_frame: int,
                 is_active: Callable[[ConnId], bool],
                 bound: Callable[[str], int] | None = None) -> None:
        self._ledger = ledger
        # The room's seq a read is bounded by; FOLLOW when the machine does not know it yet.
        self._bound = bound or ledger.last_seq
        self._out = out
        self._max_frame = max_frame
        self._is_active = is_active
        self._asked: dict[int, tuple[ConnId, str, Any]] = {}  # read -> (conn, room, ref)

    def send(self, conn: ConnId, room: str, page: Page, seq: int, limit: int, ref: Any) -> None:
        """A ``history`` reply to ``conn``, in its place in the output."""
        up_to = self._bound(room)
        if up_to == 0 or (page is Page.RESUME and 0 <= up_to <= seq):
            for frame in fit_history(room, [], self._max_frame, ref=ref):
                self._out.send((conn,), frame)
            return  # nothing stored, or nothing newer: no need to ask
        read = LoadHistory(self._ledger.next_read(), room, page, seq, limit, up_to)
        self._asked[read.read] = (conn, room, ref)
        self._out.slot(read.read)
        self._ledger.read(read)

    def answered(self, read: int, messages: Sequence[Message], truncated: bool) -> bool:
        """The store answered ``read``; False if it was not a history reply's."""
        asked = self._asked.pop(read, None)
        if asked is None:
            return False
        conn, room, ref = asked
        effects: list[Effect] = []
        if self._is_active(conn):
            frames = fit_history(room, list(messages), self._max_frame, ref=ref,
                                 truncated=truncated)
            effects = [Send((conn,), frame) for frame in frames]
        self._out.fill(read, effects)
        return True

    def failed(self, read: int) -> bool:
        """The store could not answer ``read``: the asker gets ``internal`` in its place."""
        asked = self._asked.pop(read, None)
        if asked is None:
            return False
        conn, _room, ref = asked
        effects: list[Effect] = []
        if self._is_active(conn):
            error = ProtocolError(ErrorCode.INTERNAL, "the history store is unavailable")
            effects.append(Send((conn,), Error.from_exception(error.with_ref(ref), None)))
        self._out.fill(read, effects)
        return True

    def pending(self) -> bool:
        """Whether some reply still waits for the store."""
        return bool(self._asked)
