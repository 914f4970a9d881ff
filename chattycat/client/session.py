"""Sans-IO bookkeeping of one user's chat session, across connections.

:class:`ClientSession` is the one owner of what the client knows about the
chat, as opposed to the connection: the user's name, which rooms the user
wants to be in, who is in them, and the highest and lowest ``seq`` delivered
per room. Frames go in through :meth:`ClientSession.receive`, which says what
(if anything) should be shown; :meth:`ClientSession.take_snapshot` hands out
an immutable :class:`~chattycat.client.events.SessionChanged` whenever that
knowledge changed, for the front ends to render. Nothing here touches a
socket, the event loop or a clock. (Says waiting for their acknowledgement
are the outbox's: :mod:`chattycat.client.outbox`.)

Delivery rule (PROTOCOL section 7): a message is shown at most once and in
``seq`` order per room, whether it arrives live or inside a resume
``history``, because anything at or below the highest ``seq`` already
delivered for its room is dropped.

Rooms follow the user's intent. ``join()`` and ``part()`` change the wanted
rooms at once; a ``part`` sent while our ``joined`` for that room is still on
its way is counted, so the late ``joined`` does not bring the room back. Only
``joined``/``parted`` about us that no request of ours explains (the server's
default room, a takeover) change the wanted rooms from the server's side.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chattycat.client.events import RoomState, SessionChanged
from chattycat.protocol.messages import (
    DEFAULT_HISTORY_LIMIT,
    Frame,
    History,
    Join,
    Joined,
    Member,
    Message,
    Notice,
    Part,
    Parted,
    Registered,
    Renamed,
    Request,
    RoomList,
    Roster,
    Whisper,
    name_key,
)

__all__ = ["ENTRY_HISTORY_MESSAGES", "ClientSession", "Shown"]

# A room given at start is entered by resuming it from seq 0, which may bring
# up to 1000 old messages; only the newest this many are shown, like a join.
ENTRY_HISTORY_MESSAGES = DEFAULT_HISTORY_LIMIT

# The server's frames that reach the user (possibly filtered, for History).
Shown = (
    Message | Whisper | History | Joined | Parted | Roster | Renamed | RoomList | Notice
    | Registered
)


class ClientSession:
    """Name, rooms, members and delivered seqs of one user; frames in, decisions out."""

    def __init__(self, name: str, rooms: Iterable[str] = ()) -> None:
        self.me = name
        # The rooms the user wants to be in (an ordered set).
        self._wanted: dict[str, None] = dict.fromkeys(rooms)
        # Rooms asked for at start: the first hello resumes them from seq 0
        # (PROTOCOL section 7) instead of entering the server's default room.
        self._entering: set[str] = set(self._wanted)
        self._entry_pages: dict[str, list[Message]] = {}  # their first history, in parts
        self._in_hello: set[str] = set()  # rooms named by the last hello's resume
        self._confirmed: set[str] = set()  # rooms the server said we are in
        self._parting: Counter[str] = Counter()  # parts sent whose parted is not back
        self._members: dict[str, dict[str, Member]] = {}
        self._roster_open: set[str] = set()  # rosters whose "more" parts are arriving
        self._last_seq: dict[str, int] = {}
        self._oldest_seq: dict[str, int] = {}
        # Refs of history queries the user asked for: their replies are pages
        # back in time and are shown as they are, not filtered by seq.
        self._history_refs: set[str] = set()
        self._changed = True  # the first snapshot is always news

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

    def snapshot(self) -> SessionChanged:
        """What the session knows now, as an immutable snapshot."""
        return SessionChanged(self.me, tuple(
            RoomState(room, room in self._confirmed, tuple(self.members(room)),
                      self._oldest_seq.get(room))
            for room in self._wanted
        ))

    def take_snapshot(self) -> SessionChanged | None:
        """A snapshot if anything in it changed since the last one taken, else None."""
        if not self._changed:
            return None
        self._changed = False
        return self.snapshot()

    # -- connecting ------------------------------------------------------------

    def resume_points(self, *, fresh: bool) -> dict[str, int]:
        """For a ``hello``'s resume: each room to be back in and the seq delivered so far.

        A ``fresh`` hello (no session to resume) names the rooms asked for at
        start, from seq 0: the server joins us to exactly those, without the
        detour through its default room. Otherwise the confirmed wanted
        rooms; rooms joined while offline were never confirmed and get a
        plain join after welcome, or a resume from 0 would replay old messages.
        """
        if fresh:
            rooms = [r for r in self._wanted if r in self._entering]
        else:
            rooms = [r for r in self._wanted if r in self._confirmed]
        self._in_hello = set(rooms)
        return {room: self._last_seq.get(room, 0) for room in rooms}

    def rooms_to_join(self) -> list[str]:
        """Wanted rooms the server has not confirmed nor been asked for: they need a ``join``."""
        return [r for r in self._wanted if r not in self._confirmed and r not in self._in_hello]

    def welcomed(self, name: str, *, new_session: bool) -> None:
        """A ``welcome`` for ``name``; ``new_session`` when the server did not know ours.

        A server that lost its history counts every room from 1 again; keeping
        the old highest seqs would hide all its messages as already seen. A
        server that kept its history only sends seqs above what we asked for,
        so nothing is shown twice either way.
        """
        self._rename(name)
        if new_session:
            self._last_seq.clear()
            self._oldest_seq.clear()
            self._changed = True

    def connection_lost(self) -> None:
        """Member lists are stale until the next roster; unwanted rooms are not resumed."""
        self._members.clear()
        self._roster_open.clear()
        self._entry_pages.clear()
        self._parting.clear()  # queued parts are dropped; the resume leaves those rooms out
        self._in_hello.clear()
        self._confirmed &= set(self._wanted)
        self._changed = True

    # -- the user's actions ----------------------------------------------------

    def join(self, room: str) -> None:
        """The user wants to be in ``room``."""
        if room not in self._wanted:
            self._wanted[room] = None
            self._changed = True

    def part(self, room: str, *, online: bool) -> None:
        """The user left ``room`` (ValueError if not in it); ``online``: a part is sent."""
        if room not in self._wanted:
            raise ValueError(f"you are not in #{room}")
        del self._wanted[room]
        self._entering.discard(room)
        self._changed = True
        if online:
            self._parting[room] += 1
        else:
            self._forget_room(room)  # no "parted" will come to finish the job

    def expect_history(self, ref: str) -> None:
        """The user asked for a history page with this ``ref``."""
        self._history_refs.add(ref)

    def refused(self, key: str, request: Request | None) -> None:
        """The server refused the request with id or ref ``key`` (``request`` if known)."""
        self._history_refs.discard(key)
        if isinstance(request, Join) and request.room not in self._confirmed:
            if request.room in self._wanted:
                del self._wanted[request.room]
                self._changed = True
        elif isinstance(request, Part) and self._parting[request.room] > 0:
            self._parting[request.room] -= 1
            if request.room not in self._wanted:
                self._forget_room(request.room)

    # -- frames from the server ------------------------------------------------

    def receive(self, frame: Frame) -> Shown | None:
        """Record a frame from the server; what to show, if any."""
        match frame:
            case Message():
                return frame if self._is_new(frame) else None
            case History():
                return self._on_history(frame)
            case Joined():
                self._on_joined(frame)
            case Parted():
                self._on_parted(frame)
            case Roster():
                self._on_roster(frame)
            case Renamed():
                self._on_renamed(frame)
            case Whisper() | RoomList() | Notice() | Registered():
                pass  # nothing to record: shown as they are
            case _:
                return None  # connection business (pong, welcome, ...): not for the user
        return frame

    def _on_history(self, history: History) -> History | None:
        if isinstance(history.ref, str) and history.ref in self._history_refs:
            if not history.more:
                self._history_refs.discard(history.ref)
            for message in history.messages:
                self._note_oldest(message)
            return history  # an explicit page back: shown as is
        if history.room in self._entering:
            return self._on_entry_history(history)
        fresh = tuple(m for m in history.messages if self._is_new(m))
        if fresh or history.truncated:
            return History(history.room, fresh, history.more, history.truncated, history.ref)
        return None

    def _on_entry_history(self, history: History) -> History | None:
        """The first history of a room given at start: its newest messages, like a join."""
        page = self._entry_pages.setdefault(history.room, [])
        for message in history.messages:
            if message.seq > self.last_seq(history.room):  # once and in order, as ever
                self._last_seq[history.room] = message.seq
                page.append(message)
        if history.more:
            return None  # the rest of the parts first: only then is "newest" known
        del self._entry_pages[history.room]
        self._entering.discard(history.room)
        shown = page[-ENTRY_HISTORY_MESSAGES:]
        if not shown:
            return None
        self._note_oldest(shown[0])
        truncated = history.truncated or len(shown) < len(page)
        return History(history.room, tuple(shown), False, truncated, history.ref)

    def _on_joined(self, joined: Joined) -> None:
        if self._is_me(joined.name):
            if joined.room not in self._confirmed:
                self._confirmed.add(joined.room)
                self._changed = True
            if not self._parting[joined.room] and joined.room not in self._wanted:
                self._wanted[joined.room] = None  # the server's doing (its default room)
                self._changed = True
        if joined.room in self._wanted:
            members = self._members.setdefault(joined.room, {})
            members[name_key(joined.name)] = Member(joined.name, joined.color)
            self._changed = True

    def _on_parted(self, parted: Parted) -> None:
        if not self._is_me(parted.name):
            if self._members.get(parted.room, {}).pop(name_key(parted.name), None) is not None:
                self._changed = True
            return
        if self._parting[parted.room] > 0:
            self._parting[parted.room] -= 1  # the answer to our part: the wish stands
        elif parted.room in self._wanted:
            del self._wanted[parted.room]  # the server's doing (a takeover left it)
        self._forget_room(parted.room)

    def _on_roster(self, roster: Roster) -> None:
        if roster.room not in self._wanted:
            return  # asked with /who about another room: shown, not recorded
        # A resumed room gets no "joined" (nothing changed for the others): its
        # roster is the confirmation.
        self._confirmed.add(roster.room)
        if roster.room not in self._roster_open:
            self._members[roster.room] = {}
        members = self._members.setdefault(roster.room, {})
        members.update((name_key(m.name), m) for m in roster.members)
        if roster.more:
            self._roster_open.add(roster.room)
        else:
            self._roster_open.discard(roster.room)
        self._changed = True

    def _on_renamed(self, renamed: Renamed) -> None:
        old_key = name_key(renamed.old)
        if old_key == name_key(self.me):
            self._rename(renamed.new)
        for members in self._members.values():
            if members.pop(old_key, None) is not None:
                members[name_key(renamed.new)] = Member(renamed.new, renamed.color)
                self._changed = True

    # -- helpers ---------------------------------------------------------------

    def _is_me(self, name: str) -> bool:
        return name_key(name) == name_key(self.me)

    def _rename(self, name: str) -> None:
        if name != self.me:
            self.me = name
            self._changed = True

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
            self._changed |= message.room in self._wanted

    def _forget_room(self, room: str) -> None:
        self._confirmed.discard(room)
        self._members.pop(room, None)
        self._roster_open.discard(room)
        self._entry_pages.pop(room, None)
        self._changed = True
