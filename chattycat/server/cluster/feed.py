"""The rooms a cluster node follows, and the says waiting for their seq to come round.

A node delivers a room's messages to the members connected to it from the
room's stream alone, in seq order, starting after the last seq it delivered
(its *cursor*). It follows a room while a member is connected here, or while
one of its says there still waits.

A ``say`` sent to Redis holds a slot in the machine's ordered output
(:class:`~chattycat.server.output.OutputQueue`). Every message of that room
delivered while the slot is the room's first one goes *into* the slot, and
the slot is filled (released) once its own seq has been delivered: so the
sender's acknowledgement and everyone's copies keep their place among what
the machine decided around the ``say``, and the room's messages still leave
in seq order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chattycat.protocol.messages import Frame, Message, Say
from chattycat.server.effects import ConnId, Effect, Send
from chattycat.server.output import OutputQueue

__all__ = ["RoomFeed"]


@dataclass(eq=False, slots=True)
class _Slot:
    """A ``say`` sent to Redis: its place in the output, filled when its seq is delivered."""

    token: int
    conn: ConnId
    room: str
    say: Say
    # The room's connections when the say took its place: their copies go in
    # the slot. Whoever came in later (a join, a takeover from another node)
    # was welcomed after that place, so its copies must come after it too.
    members: tuple[ConnId, ...] = ()
    seq: int | None = None  # known once Redis has numbered it
    effects: list[Effect] = field(default_factory=list)


class RoomFeed:
    """Cursors of followed rooms and the slots of says in flight."""

    def __init__(self, out: OutputQueue, conns: Callable[[str], tuple[ConnId, ...]],
                 is_active: Callable[[ConnId], bool]) -> None:
        self._out = out
        self._conns = conns
        self._is_active = is_active
        self._cursor: dict[str, int] = {}
        self._base: dict[str, int] = {}  # where following began
        self._slots: dict[str, deque[_Slot]] = {}
        self._publishing: dict[int, _Slot] = {}
        # Per room with says waiting: connections that came in after a say took
        # its place, whose copies go to the end of the output until none waits,
        # each with the first seq sent to it that way.
        self._late: dict[str, dict[ConnId, int]] = {}
        # Per room: connections that resumed having seen up to a seq this node
        # has not delivered yet (they came from a node further along), and that seq.
        self._seen: dict[str, dict[ConnId, int]] = {}

    # -- following ------------------------------------------------------------------

    def cursor(self, room: str) -> int | None:
        """The last seq of ``room`` delivered here; None if it is not followed."""
        return self._cursor.get(room)

    def cursors(self) -> dict[str, int]:
        """Every followed room and its cursor."""
        return dict(self._cursor)

    def follow(self, room: str, top: int) -> int:
        """A ``FOLLOW`` read found ``room`` at ``top``; returns the seq its answer may show.

        The first such answer starts following at ``top``; a later one (asked
        before following began) stops where the first did: everything after
        that is delivered live, behind it in the output.
        """
        if room in self._base:
            return self._base[room]
        if self._conns(room) or self._slots.get(room):
            self._cursor[room] = self._base[room] = top
        return top

    def seen_through(self, room: str, conn: ConnId, seq: int) -> None:
        """``conn`` resumed ``room`` having seen every message up to ``seq``.

        Its history reply holds what came after ``seq`` up to this node's
        cursor, and live copies follow the cursor. But the node it came from
        may have been further along than this one: the messages between this
        cursor and ``seq`` must then not reach it a second time.
        """
        cursor = self._cursor.get(room)
        if cursor is None or cursor < seq:
            self._seen.setdefault(room, {})[conn] = seq

    def unfollow_if_idle(self, room: str) -> None:
        """Stop following ``room`` if nobody here is in it and no say there waits."""
        if room in self._cursor and not self._slots.get(room) and not self._conns(room):
            del self._cursor[room]
            self._base.pop(room, None)
            self._seen.pop(room, None)

    def clear(self) -> None:
        """Follow nothing (the node's users are gone)."""
        self._cursor.clear()
        self._base.clear()
        self._seen.clear()

    # -- says -----------------------------------------------------------------------

    def hold(self, token: int, conn: ConnId, say: Say) -> None:
        """``say`` from ``conn`` goes to Redis as op ``token``: keep its place."""
        slot = _Slot(token, conn, say.room, say, self._conns(say.room))
        self._out.slot(token)
        self._slots.setdefault(say.room, deque()).append(slot)
        self._publishing[token] = slot

    def waiting(self) -> bool:
        """Whether a say still waits for Redis or for its seq."""
        return bool(self._publishing)

    def numbered(self, token: int, seq: int) -> None:
        """Redis gave the say ``token`` its seq; it is released when that is delivered."""
        slot = self._publishing.get(token)
        if slot is None:
            return
        if self._cursor.get(slot.room, 0) >= seq:
            self._resolve(slot)  # delivered already: it went into this slot
        else:
            slot.seq = seq

    def answered(self, token: int, frame: Frame | None) -> None:
        """The say ``token`` is over without a new seq: ``frame`` goes to its sender alone
        (the original of a repeated id, or an error)."""
        slot = self._publishing.get(token)
        if slot is None:
            return
        if frame is not None and self._is_active(slot.conn):
            slot.effects.append(Send((slot.conn,), frame))
        self._resolve(slot)

    def repeated(self, token: int, original: Message) -> None:
        """The say ``token`` repeated an id of its sender's: ``original`` answers it.

        The original must not overtake the room's messages before it on their
        way to the sender: if it is not delivered here yet, the sender's copy,
        when it comes round, is the answer; if the sender's copy already waits
        at the end of the output (it came in after a say took its place), that
        copy is. Otherwise it goes again, to the sender alone (PROTOCOL 5).
        """
        slot = self._publishing.get(token)
        if slot is None:
            return
        if original.seq > self._cursor.get(slot.room, 0):
            slot.seq = original.seq
            return
        late_from = self._late.get(slot.room, {}).get(slot.conn)
        if late_from is not None and late_from <= original.seq:
            self._resolve(slot)
        else:
            self.answered(token, original)

    def say_of(self, token: int) -> Say | None:
        """The say op ``token`` carries, while it waits."""
        slot = self._publishing.get(token)
        return None if slot is None else slot.say

    def release_numbered(self) -> None:
        """Redis is out of reach: numbered says stop holding the output back; their
        copies are delivered when the node catches up from the stream."""
        for slots in list(self._slots.values()):
            for slot in [s for s in slots if s.seq is not None]:
                self._resolve(slot)

    # -- delivery ---------------------------------------------------------------------

    def deliver(self, room: str, messages: Iterable[Message]) -> None:
        """Stored messages of ``room`` in seq order: send the ones past the cursor."""
        cursor = self._cursor.get(room)
        if cursor is None:
            return
        slots = self._slots.get(room)
        everyone = conns = self._conns(room)
        seen = self._seen.get(room)
        for message in messages:
            if message.seq <= cursor:
                continue  # delivered already (a wake-up and a reply both brought it)
            cursor = message.seq
            if seen:
                conns = self._unseen(seen, everyone, cursor)
            if not slots:
                self._out.send(conns, message)
                continue
            slot = slots[0]
            if slot.members is conns and room not in self._late:
                placed: tuple[ConnId, ...] = conns  # the usual case: nobody came or went
            else:
                placed = self._split(room, slot, conns, message)
            if placed:
                slot.effects.append(Send(placed, message))
            if slot.seq == message.seq and slot.conn not in conns and self._is_active(slot.conn):
                slot.effects.append(Send((slot.conn,), message))  # left the room meanwhile
            while slots and slots[0].seq is not None and slots[0].seq <= cursor:
                self._resolve(slots[0])
        self._cursor[room] = cursor
        self.unfollow_if_idle(room)

    @staticmethod
    def _unseen(seen: dict[ConnId, int], conns: tuple[ConnId, ...],
                seq: int) -> tuple[ConnId, ...]:
        """Of ``conns``, those that have not seen ``seq`` yet (see :meth:`seen_through`)."""
        for conn, through in list(seen.items()):
            if through < seq:
                del seen[conn]  # caught up: this and later copies are new to it
        return tuple(c for c in conns if seen.get(c, 0) < seq) if seen else conns

    def _split(self, room: str, slot: _Slot, conns: tuple[ConnId, ...],
               message: Message) -> tuple[ConnId, ...]:
        """Of ``conns``, those whose copy of ``message`` belongs in ``slot``.

        The others came in after the slot's place: they get it now, at the end
        of the output (after their welcome or join), and so do all the room's
        later copies for them while says wait, so that they stay in seq order.
        """
        before = frozenset(slot.members)
        late = self._late.setdefault(room, {})
        for conn in conns:
            if conn not in before and conn not in late:
                late[conn] = message.seq
        now = tuple(c for c in conns if c in late)
        if now:
            self._out.send(now, message)
        return tuple(c for c in conns if c not in late)

    def _resolve(self, slot: _Slot) -> None:
        slots = self._slots.get(slot.room)
        if slots is not None and slot in slots:
            slots.remove(slot)
            if not slots:
                del self._slots[slot.room]
                self._late.pop(slot.room, None)
        self._publishing.pop(slot.token, None)
        self._out.fill(slot.token, slot.effects)
        self.unfollow_if_idle(slot.room)
