"""Sans-IO bookkeeping of one user's chat session, across connections.

:class:`ClientSession` is what :class:`~chattycat.client.client.Client` knows about
the chat, as opposed to the connection: which rooms the user wants to be in,
who is in them, the highest and lowest ``seq`` delivered per room, and the
says and whispers still waiting for the server's acknowledgement. Frames go in
through :meth:`ClientSession.receive`, which says what (if anything) should be
shown; nothing here touches a socket, the event loop or a clock.

Delivery rule (PROTOCOL section 7): a message is shown at most once and in
``seq`` order per room, whether it arrives live or inside a resume
``history``, because anything at or below the highest ``seq`` already
delivered for its room is dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from chattycat.protocol.messages import (
    Frame,
    History,
    Join,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Renamed,
    Request,
    RoomList,
    Roster,
    Say,
    Whisper,
    WhisperTo,
    name_key,
)

__all__ = ["ClientSession", "PendingEntry", "Shown"]

# A say or whisper waiting for its acknowledgement, with its place in the
# outgoing order so that a resend after a reconnect keeps the original order.
PendingEntry = tuple[int, Say | WhisperTo]

# The server's frames that reach the user (possibly filtered, for History).
Shown = Message | Whisper | History | Joined | Parted | Roster | Renamed | RoomList | Notice


class ClientSession:
    """Rooms, members, delivered seqs and pending says of one user; frames in, decisions out."""

    def __init__(self, rooms: Iterable[str] = ()) -> None:
        # The rooms the user wants to be in (an ordered set), updated at once by
        # join()/part() and by the server's joined/parted about us.
        self._wanted: dict[str, None] = dict.fromkeys(rooms)
        self._confirmed: set[str] = set()  # rooms the server said we joined
        self._members: dict[str, dict[str, Member]] = {}
        self._roster_open: set[str] = set()  # rosters whose "more" parts are arriving
        self._last_seq: dict[str, int] = {}
        self._oldest_seq: dict[str, int] = {}
        self._pending: OrderedDict[str, PendingEntry] = OrderedDict()
        # Refs of history queries the user asked for: their replies are pages
        # back in time and are shown as they are, not filtered by seq.
        self._history_refs: set[str] = set()

    # -- queries ---------------------------------------------------------------

    @property
    def rooms(self) -> list[str]:
        """The rooms joined (or to be joined on reconnect), in join order."""
        return list(self._wanted)

    def members(self, room: str) -> list[Member]:
        """Known members of a joined room, sorted by name case-insensitively."""
        members = self._members.get(room, {})
        return [members[key] for key in sorted(members)]

    def last_seq(self, room: str) -> int:
        """The highest seq delivered for ``room`` (0: none)."""
        return self._last_seq.get(room, 0)

    def oldest_seq(self, room: str) -> int | None:
        """The lowest seq delivered for ``room``, for paging back with ``history``."""
        return self._oldest_seq.get(room)

    def pending_count(self) -> int:
        """Says and whispers not yet acknowledged by the server."""
        return len(self._pending)

    def is_pending(self, message_id: str) -> bool:
        """Whether the say or whisper ``message_id`` still waits for its acknowledgement."""
        return message_id in self._pending

    def pending(self) -> list[PendingEntry]:
        """Unacknowledged says and whispers with their order, oldest first."""
        return list(self._pending.values())

    def resume_points(self) -> dict[str, int]:
        """For a resume ``hello``: each confirmed wanted room and the seq delivered so far."""
        # Rooms joined while offline were never confirmed: they get a plain join
        # after welcome, or a resume from seq 0 would replay 1000 old messages.
        return {r: self._last_seq.get(r, 0) for r in self._wanted if r in self._confirmed}

    def rooms_to_join(self) -> list[str]:
        """Wanted rooms the server has not confirmed yet: they need a ``join``."""
        return [r for r in self._wanted if r not in self._confirmed]

    def server_forgot_us(self) -> None:
        """The server answered a resume with a new session: trust its numbering afresh.

        A server that lost its history counts every room from 1 again; keeping
        the old highest seqs would hide all its messages as already seen. A
        server that kept its history only sends seqs above what we asked for,
        so nothing is shown twice either way.
        """
        self._last_seq.clear()
        self._oldest_seq.clear()

    # -- the user's actions ----------------------------------------------------

    def join(self, room: str) -> None:
        """The user wants to be in ``room``."""
        self._wanted[room] = None

    def part(self, room: str, *, online: bool) -> None:
        """The user left ``room``; offline, no ``parted`` will come to finish the job."""
        self._wanted.pop(room, None)
        if not online:
            self._forget_room(room)

    def add_pending(self, order: int, request: Say | WhisperTo) -> None:
        """A say or whisper was submitted; it is pending until acknowledged."""
        assert request.id is not None
        self._pending[request.id] = (order, request)

    def expect_history(self, ref: str) -> None:
        """The user asked for a history page with this ``ref``."""
        self._history_refs.add(ref)

    def refused(self, key: str, request: Request | None) -> None:
        """The server refused the request with id or ref ``key`` (``request`` if known)."""
        self._pending.pop(key, None)
        self._history_refs.discard(key)
        if isinstance(request, Join):
            self._wanted.pop(request.room, None)

    def connection_lost(self) -> None:
        """Member lists are stale until the next roster; unwanted rooms are not resumed."""
        self._members.clear()
        self._roster_open.clear()
        self._confirmed &= set(self._wanted)

    # -- frames from the server ------------------------------------------------

    def receive(self, frame: Frame, me: str) -> Shown | None:
        """Record a frame from the server (``me``: the user's name); what to show, if any."""
        match frame:
            case Message():
                return frame if self.on_message(frame) else None
            case History():
                return self.on_history(frame)
            case Whisper():
                self.on_whisper(frame, me)
            case Joined():
                self.on_joined(frame, me)
            case Parted():
                self.on_parted(frame, me)
            case Roster():
                self.on_roster(frame)
            case Renamed():
                self.on_renamed(frame)
            case RoomList() | Notice():
                pass  # nothing to record: shown as they are
            case _:
                return None  # connection business (pong, welcome, ...): not for the user
        return frame

    def on_message(self, message: Message) -> bool:
        """Record ``message``; whether it is new and should be shown."""
        self._acknowledge(message)
        return self._is_new(message)

    def on_history(self, history: History) -> History | None:
        """Record ``history``; what of it should be shown (None: nothing)."""
        for message in history.messages:
            self._acknowledge(message)
        if isinstance(history.ref, str) and history.ref in self._history_refs:
            if not history.more:
                self._history_refs.discard(history.ref)
            for message in history.messages:
                self._note_oldest(message)
            return history  # an explicit page back: shown as is
        fresh = tuple(m for m in history.messages if self._is_new(m))
        if fresh or history.truncated:
            return History(history.room, fresh, history.more, history.truncated, history.ref)
        return None

    def on_whisper(self, whisper: Whisper, me: str) -> None:
        """Record ``whisper``; our own echo acknowledges it."""
        if whisper.id is not None and name_key(whisper.sender) == name_key(me):
            self._pending.pop(whisper.id, None)

    def on_joined(self, joined: Joined, me: str) -> None:
        """Record that ``joined.name`` (possibly the user ``me``) joined a room."""
        if name_key(joined.name) == name_key(me):
            self._wanted[joined.room] = None
            self._confirmed.add(joined.room)
            self._members.setdefault(joined.room, {})
        if joined.room in self._members:
            self._members[joined.room][name_key(joined.name)] = Member(joined.name, joined.color)

    def on_parted(self, parted: Parted, me: str) -> None:
        """Record that ``parted.name`` (possibly the user ``me``) left a room."""
        if name_key(parted.name) == name_key(me):
            self._wanted.pop(parted.room, None)
            self._forget_room(parted.room)
        elif parted.room in self._members:
            self._members[parted.room].pop(name_key(parted.name), None)

    def on_roster(self, roster: Roster) -> None:
        """Record a roster (or one part of a roster split by ``more``)."""
        if roster.room not in self._wanted:
            return
        self._confirmed.add(roster.room)
        if roster.room not in self._roster_open:
            self._members[roster.room] = {}
        members = self._members.setdefault(roster.room, {})
        members.update((name_key(m.name), m) for m in roster.members)
        if roster.more:
            self._roster_open.add(roster.room)
        else:
            self._roster_open.discard(roster.room)

    def on_renamed(self, renamed: Renamed) -> None:
        """Rename the member in every room's member list."""
        old_key = name_key(renamed.old)
        for members in self._members.values():
            if members.pop(old_key, None) is not None:
                members[name_key(renamed.new)] = Member(renamed.new, renamed.color)

    # -- helpers ---------------------------------------------------------------

    def _acknowledge(self, message: Message) -> None:
        if message.id is not None:
            self._pending.pop(message.id, None)

    def _is_new(self, message: Message) -> bool:
        """Whether ``message`` was not delivered yet (and record it as delivered)."""
        if message.seq <= self._last_seq.get(message.room, 0):
            return False
        self._last_seq[message.room] = message.seq
        self._note_oldest(message)
        return True

    def _note_oldest(self, message: Message) -> None:
        oldest = self._oldest_seq.get(message.room)
        if oldest is None or message.seq < oldest:
            self._oldest_seq[message.room] = message.seq

    def _forget_room(self, room: str) -> None:
        self._confirmed.discard(room)
        self._members.pop(room, None)
        self._roster_open.discard(room)

