"""The desktop client's view model: client events in, what the window shows out.

:class:`ChatModel` is sans-IO and knows nothing of Tk. The GUI feeds it every
:data:`~chattycat.client.ClientEvent` and every line the user submits, then
asks it what to show: the lines of the current room's scrollback, the joined
rooms with unread counts, the members of the current room and one status
line. Everything is tested without a display or a server.

- Each joined room keeps its own scrollback; a chat message for a room that
  is not the current one is counted as unread instead of shown, and switching
  rooms shows that room's scrollback. Lines that belong to no room (connection
  state, whispers, notices, errors, command feedback) go to the current view.
- The current room follows the terminal client (``chattycat.interactive``):
  the first requested room, else the first room the server joins us to;
  ``/join ROOM`` switches once our own ``joined`` arrives, ``/room`` and a
  click switch at once, leaving the current room switches to another one.
- The model tracks members from ``roster``/``joined``/``parted``/``renamed``
  itself instead of asking :meth:`Client.members`: the client lives on
  another thread, and reading its state from the UI thread would race.
- Network text (names, rooms, messages, reasons) goes through
  :func:`chattycat.terminal.sanitize`: control characters and bidi overrides
  become visible, so a name cannot reorder or break the line it is in.
  Colors are used only when they are ``#rrggbb``.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any, Protocol

from chattycat import commands as cmd
from chattycat.client import (
    ClientEvent,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    Reconnecting,
)
from chattycat.messages import (
    Error,
    History,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Renamed,
    RoomList,
    Roster,
    Whisper,
    name_key,
)
from chattycat.terminal import sanitize
from chattycat.tui import TIME_FORMAT

__all__ = [
    "COLOR_TAG_PREFIX",
    "MAX_SCROLLBACK_LINES",
    "ActionFailed",
    "ChatModel",
    "ClientActions",
    "DisplayLine",
    "LinkState",
    "Span",
    "Tag",
    "ViewChanges",
    "color_tag",
]

# Per room; older lines are dropped (the server keeps the history).
MAX_SCROLLBACK_LINES = 2000
DEFAULT_HISTORY_PAGE = 50

_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")
COLOR_TAG_PREFIX = "color:"


class Tag:
    """Style names of spans; the GUI gives each a look. Names use ``color_tag()``."""

    TIME = "time"
    NAME = "name"  # a name without a usable color
    ROOM = "room"
    JOIN = "join"
    PART = "part"
    WHISPER = "whisper"
    NOTICE = "notice"
    ERROR = "error"
    INFO = "info"
    ONLINE = "online"
    OFFLINE = "offline"


def color_tag(color: str) -> str:
    """The tag of a name in ``color``: one tag per ``#rrggbb``, else the plain name tag."""
    # A hostile server could send anything as a color; Tk would raise on it.
    if _COLOR_RE.fullmatch(color):
        return COLOR_TAG_PREFIX + color.lower()
    return Tag.NAME


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text with one style tag (None: the default look)."""

    text: str
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class DisplayLine:
    """One line of the message view."""

    spans: tuple[Span, ...]

    @property
    def text(self) -> str:
        """The line as plain text."""
        return "".join(span.text for span in self.spans)


@dataclass(frozen=True, slots=True)
class ActionFailed:
    """A client action was refused (e.g. the client is closed); ``text`` says why."""

    text: str


@dataclass(slots=True)
class ViewChanges:
    """What changed since the last :meth:`ChatModel.take_changes`."""

    new_lines: list[DisplayLine] = field(default_factory=list)  # appended to the view
    view_reset: bool = False  # another scrollback is shown: redraw all of view_lines()
    rooms_changed: bool = False
    members_changed: bool = False


class ClientActions(Protocol):
    """What the model asks of the client; :class:`~chattycat.client.Client` fits."""

    def say(self, room: str, text: str, *, action: bool = False) -> object: ...
    def whisper(self, to: str, text: str) -> object: ...
    def join(self, room: str) -> None: ...
    def part(self, room: str) -> None: ...
    def who(self, room: str) -> None: ...
    def list_rooms(self) -> None: ...
    def history(self, room: str, *, before: int | None = None, limit: int = 50) -> None: ...
    def nick(self, name: str) -> None: ...
    def quit(self, reason: str | None = None) -> None: ...


class LinkState(Enum):
    """The connection as the status bar tells it."""

    CONNECTING = auto()
    ONLINE = auto()
    WAITING_TO_RETRY = auto()
    FAILED = auto()
    CLOSED = auto()


class _LineBuilder:
    """Builds a :class:`DisplayLine`; every piece of text is sanitized."""

    def __init__(self, stamp: str) -> None:
        self._spans = [Span(stamp, Tag.TIME), Span(" ")]

    def add(self, text: str, tag: str | None = None) -> _LineBuilder:
        if text:
            self._spans.append(Span(sanitize(text), tag))
        return self

    def name(self, name: str, color: str) -> _LineBuilder:
        return self.add(name, color_tag(color))

    def build(self) -> DisplayLine:
        return DisplayLine(tuple(self._spans))


class ChatModel:
    """The state of the chat window; see the module docstring."""

    def __init__(
        self,
        client: ClientActions,
        name: str,
        *,
        rooms: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.me = name
        self.rooms: list[str] = list(dict.fromkeys(rooms))  # joined, in join order
        self.current_room: str | None = self.rooms[0] if self.rooms else None
        self.unread: dict[str, int] = {}
        self.link = LinkState.CONNECTING
        self.quitting = False
        self._clock = clock
        self._scrollback: dict[str | None, deque[DisplayLine]] = {
            room: deque(maxlen=MAX_SCROLLBACK_LINES) for room in [None, *self.rooms]
        }
        self._members: dict[str, dict[str, Member]] = {room: {} for room in self.rooms}
        self._roster_open: set[str] = set()  # rosters whose "more" parts are arriving
        self._history_open: set[str] = set()
        self._who_asked: set[str] = set()  # rosters asked for with /who are shown
        self._switch_on_join: str | None = None
        self._oldest_seq: dict[str, int] = {}
        self._retry_at: float | None = None
        self._status_detail = ""
        # Nothing has been shown yet: the first take_changes() asks for everything.
        self._changes = ViewChanges(view_reset=True, rooms_changed=True, members_changed=True)

    # -- what the window shows ------------------------------------------------------

    def take_changes(self) -> ViewChanges:
        """What changed since the last call (then forgotten)."""
        changes, self._changes = self._changes, ViewChanges()
        return changes

    def view_lines(self) -> list[DisplayLine]:
        """The scrollback of the current room (or of the no-room view)."""
        return list(self._scrollback[self.current_room])

    def scrollback(self, room: str | None) -> list[DisplayLine]:
        """The scrollback of ``room`` (None: lines shown while in no room)."""
        return list(self._scrollback.get(room, ()))

    def room_label(self, room: str) -> str:
        """``#dev``, or ``#dev (3)`` with 3 unread messages."""
        unread = self.unread.get(room, 0)
        label = f"#{sanitize(room)}"
        return f"{label} ({unread})" if unread else label

    def members(self, room: str | None = None) -> list[Member]:
        """Members of ``room`` (default: the current room), sorted case-insensitively."""
        members = self._members.get(room or self.current_room or "", {})
        return [members[key] for key in sorted(members)]

    def member_entries(self) -> list[tuple[str, str | None]]:
        """The current room's member list: (sanitized name, ``#rrggbb`` or None)."""
        return [
            (sanitize(m.name), m.color.lower() if _COLOR_RE.fullmatch(m.color) else None)
            for m in self.members()
        ]

    def status_text(self) -> str:
        """One line for the status bar: connected as NAME, reconnecting in N s, ..."""
        if self.quitting and self.link not in (LinkState.CLOSED, LinkState.FAILED):
            return "quitting\u2026"
        if self.link is LinkState.ONLINE:
            return f"connected as {sanitize(self.me)}"
        if self.link is LinkState.WAITING_TO_RETRY and self._retry_at is not None:
            remaining = max(1, math.ceil(self._retry_at - self._clock()))
            return f"reconnecting in {remaining} s ({self._status_detail})"
        if self.link is LinkState.FAILED:
            return f"failed: {self._status_detail}"
        if self.link is LinkState.CLOSED:
            return "disconnected"
        return self._status_detail or f"connecting as {sanitize(self.me)}\u2026"

    @property
    def finished(self) -> bool:
        """Whether the client is closed for good (after quit, or it gave up)."""
        return self.link in (LinkState.CLOSED, LinkState.FAILED)

    @property
    def exit_code(self) -> int:
        """1 if the client gave up (start-up failure, name refused), else 0."""
        return 1 if self.link is LinkState.FAILED else 0

    # -- user actions ---------------------------------------------------------------

    def switch_room(self, room: str) -> bool:
        """Make joined ``room`` the current room (a click); False if not joined."""
        if room not in self.rooms:
            return False
        self._set_room(room)
        return True

    def submit(self, line: str) -> None:
        """Act on one line typed into the entry: a message or a /command."""
        command = cmd.parse_line(line)
        handler = _COMMANDS.get(type(command))
        if handler is None:
            return
        try:
            handler(self, command)
        except (ValueError, RuntimeError) as exc:
            # The client refuses what it cannot send (closed, a bad name it
            # checks itself): one line for the user, not a traceback.
            self.local_error(str(exc))

    def request_quit(self, reason: str | None = None) -> None:
        """Leave (window closed or /quit): quit the client once."""
        if self.quitting:
            return
        self.quitting = True
        if not self.finished:
            try:
                self.client.quit(reason)
            except RuntimeError as exc:
                self.local_error(str(exc))

    def info(self, text: str) -> None:
        """Show a local, dim line in the current view."""
        self._append(self.current_room, self._line().add(text, Tag.INFO).build())

    def local_error(self, text: str) -> None:
        """Show a local error line (a bad command, a refused action)."""
        self._append(self.current_room, self._line().add(text, Tag.ERROR).build())

    # -- events ---------------------------------------------------------------------

    def handle(self, event: ClientEvent | ActionFailed) -> None:
        """Update the display state for one client event."""
        handler = _EVENTS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_message(self, msg: Message) -> None:
        self._note_seq(msg)
        self._append(msg.room, self._chat_line(msg))
        if msg.room != self.current_room and msg.room in self.rooms:
            self.unread[msg.room] = self.unread.get(msg.room, 0) + 1
            self._changes.rooms_changed = True

    def _on_history(self, h: History) -> None:
        continued = h.room in self._history_open
        if h.more:
            self._history_open.add(h.room)
        else:
            self._history_open.discard(h.room)
        if not continued and h.messages:
            head = self._line().add(f"\u2014 history of #{h.room} \u2014", Tag.INFO)
            if h.truncated:
                head.add(" (older messages skipped: /history to page back)", Tag.INFO)
            self._append(h.room, head.build())
        for msg in h.messages:
            self._note_seq(msg)
            self._append(h.room, self._chat_line(msg))

    def _on_whisper(self, w: Whisper) -> None:
        line = self._line(w.ts).add("[whisper]", Tag.WHISPER).add(" ")
        if w.action:
            line.add("* ")
        line.name(w.sender, w.color).add(" \u2192 ", Tag.WHISPER).add(w.to, Tag.NAME)
        line.add(" " if w.action else ": ").add(w.text)
        self._append(self.current_room, line.build())

    def _on_joined(self, j: Joined) -> None:
        if self._is_me(j.name) and j.room not in self.rooms:
            self._add_room(j.room)
        if j.room in self._members:
            self._members[j.room][name_key(j.name)] = Member(j.name, j.color)
            self._changes.members_changed |= j.room == self.current_room
        line = self._line(j.ts).add("\u2192 ", Tag.JOIN).name(j.name, j.color)
        self._append(j.room, line.add(f" joined #{j.room}", Tag.JOIN).build())
        if self._is_me(j.name) and (self.current_room is None or j.room == self._switch_on_join):
            self._switch_on_join = None
            self._set_room(j.room)

    def _on_parted(self, p: Parted) -> None:
        # "parted" carries no color; use the one the member list knows.
        known = self._members.get(p.room, {}).get(name_key(p.name))
        line = self._line().add("\u2190 ", Tag.PART)
        if known is not None:
            line.name(p.name, known.color)
        else:
            line.add(p.name, Tag.NAME)
        line.add(f" left #{p.room}", Tag.PART)
        if p.reason in ("quit", "disconnected"):
            line.add(f" ({p.reason})", Tag.PART)
        elif p.reason != "part":
            line.add(f" (quit: {p.reason})", Tag.PART)
        if self._is_me(p.name):
            self._leave_room(p.room)
            self._append(self.current_room, line.build())
            return
        if p.room in self._members:
            self._members[p.room].pop(name_key(p.name), None)
            self._changes.members_changed |= p.room == self.current_room
        self._append(p.room, line.build())

    def _on_roster(self, r: Roster) -> None:
        if r.room in self._members:
            if r.room not in self._roster_open:
                self._members[r.room] = {}
            self._members[r.room].update((name_key(m.name), m) for m in r.members)
            self._changes.members_changed |= r.room == self.current_room
        continued = r.room in self._roster_open
        if r.more:
            self._roster_open.add(r.room)
        else:
            self._roster_open.discard(r.room)
        if r.room in self._who_asked:
            if not r.more:
                self._who_asked.discard(r.room)
            self._show_roster(r, continued)

    def _show_roster(self, r: Roster, continued: bool) -> None:
        line = self._line()
        if not continued:
            line.add(f"members of #{r.room}: ", Tag.INFO)
        for i, member in enumerate(r.members):
            line.add(", " if i else "", Tag.INFO).name(member.name, member.color)
        self._append(self.current_room, line.build())

    def _on_room_list(self, rl: RoomList) -> None:
        line = self._line()
        if not rl.rooms:
            line.add("no rooms have members", Tag.INFO)
        else:
            line.add("rooms: ", Tag.INFO)
        for i, info in enumerate(rl.rooms):
            line.add(", " if i else "", Tag.INFO).add(f"#{info.room}", Tag.ROOM)
            line.add(f" ({info.members})", Tag.INFO)
        self._append(self.current_room, line.build())

    def _on_renamed(self, r: Renamed) -> None:
        old_key = name_key(r.old)
        line = self._line()
        if self._is_me(r.old):
            self.me = r.new
            line.add("you are now known as ", Tag.INFO)
        else:
            line.add(r.old, Tag.NAME).add(" is now known as ", Tag.INFO)
        shown = line.name(r.new, r.color).build()
        where = [room for room, members in self._members.items() if old_key in members]
        for room in where:
            members = self._members[room]
            members.pop(old_key)
            members[name_key(r.new)] = Member(r.new, r.color)
            self._append(room, shown)
        self._changes.members_changed |= self.current_room in where
        if self.current_room not in where:
            self._append(self.current_room, shown)

    def _on_notice(self, n: Notice) -> None:
        self._append(self.current_room, self._line().add(
            f"notice {n.code}: {n.text}", Tag.NOTICE).build())

    def _on_error(self, e: Error) -> None:
        self._append(self.current_room, self._line().add(
            f"error {e.code}: {e.message}", Tag.ERROR).build())

    def _on_action_failed(self, event: ActionFailed) -> None:
        self.local_error(event.text)

    # -- connection events ----------------------------------------------------------

    def _on_connected(self, c: Connected) -> None:
        self.me = c.welcome.name
        self._set_link(LinkState.ONLINE, "")
        line = self._line().add("reconnected as " if c.resumed else "connected as ", Tag.ONLINE)
        line.name(c.welcome.name, c.welcome.color).add(f" ({c.welcome.server})", Tag.INFO)
        self._append(self.current_room, line.build())

    def _on_connection_lost(self, c: ConnectionLost) -> None:
        self._set_link(LinkState.WAITING_TO_RETRY, c.reason)
        self._retry_at = self._clock() + c.retry_in_s
        retry = max(1, math.ceil(c.retry_in_s))
        self._append(self.current_room, self._line().add(
            f"connection lost ({c.reason}), reconnecting in {retry} s", Tag.OFFLINE).build())

    def _on_reconnecting(self, r: Reconnecting) -> None:
        self._set_link(LinkState.CONNECTING, f"reconnecting (attempt {r.attempt})\u2026")
        self._append(self.current_room, self._line().add(
            f"reconnecting (attempt {r.attempt})\u2026", Tag.INFO).build())

    def _on_failed(self, f: Failed) -> None:
        self._set_link(LinkState.FAILED, f.reason)
        code = f" [{f.code}]" if f.code else ""
        self._append(self.current_room, self._line().add(
            f"failed{code}: {f.reason}", Tag.ERROR).build())

    def _on_closed(self, c: Closed) -> None:
        self._set_link(LinkState.CLOSED, "")
        self._append(self.current_room, self._line().add("disconnected", Tag.INFO).build())

    def _set_link(self, link: LinkState, detail: str) -> None:
        self.link = link
        self._status_detail = sanitize(detail)
        if link is not LinkState.WAITING_TO_RETRY:
            self._retry_at = None

    # -- commands -------------------------------------------------------------------

    def _need_room(self) -> str | None:
        if self.current_room is None:
            self.local_error("you are in no room: /join ROOM first")
        return self.current_room

    def _say(self, command: cmd.SayText | cmd.Me) -> None:
        room = self._need_room()
        if room is not None:
            self.client.say(room, command.text, action=isinstance(command, cmd.Me))
            self._note_if_offline()

    def _whisper(self, command: cmd.Msg) -> None:
        self.client.whisper(command.to, command.text)
        self._note_if_offline()

    def _note_if_offline(self) -> None:
        if self.link is not LinkState.ONLINE:
            self.info("not connected: will be sent once reconnected")

    def _join(self, command: cmd.JoinRoom) -> None:
        if command.room in self.rooms:
            self._set_room(command.room)
        else:
            # Switch once our "joined" arrives: the join may still fail.
            self._switch_on_join = command.room
        # Joining a room one is in re-sends its roster (and any missed history).
        self.client.join(command.room)

    def _part(self, command: cmd.PartRoom) -> None:
        room = command.room or self._need_room()
        if room is None:
            return
        if room not in self.rooms:
            self.local_error(f"you are not in #{room}")
            return
        self.client.part(room)
        # The client forgets the room at once (offline, no "parted" will come).
        self._leave_room(room)

    def _switch(self, command: cmd.SwitchRoom) -> None:
        if not self.switch_room(command.room):
            self.local_error(f"you are not in #{command.room}: /join {command.room}")

    def _nick(self, command: cmd.NickCmd) -> None:
        self.client.nick(command.name)

    def _who(self, command: cmd.WhoCmd) -> None:
        room = command.room or self._need_room()
        if room is not None:
            self._who_asked.add(room)
            self.client.who(room)

    def _list_rooms(self, command: cmd.ListRooms) -> None:
        self.client.list_rooms()

    def _history(self, command: cmd.HistoryCmd) -> None:
        room = self._need_room()
        if room is not None:
            before = self._oldest_seq.get(room)
            self.client.history(room, before=before, limit=command.limit or DEFAULT_HISTORY_PAGE)

    def _quit(self, command: cmd.QuitCmd) -> None:
        self.request_quit(command.reason)

    def _help(self, command: cmd.Help) -> None:
        for text in cmd.help_lines():
            self.info(text)
        self.info("Click a room on the left to switch to it; closing the window quits.")

    def _hint(self, command: cmd.Hint) -> None:
        self.local_error(command.text)

    # -- building blocks ------------------------------------------------------------

    def _line(self, ts: float | None = None) -> _LineBuilder:
        stamp = time.strftime(TIME_FORMAT, time.localtime(self._clock() if ts is None else ts))
        return _LineBuilder(stamp)

    def _chat_line(self, msg: Message) -> DisplayLine:
        line = self._line(msg.ts)
        if msg.action:
            return line.add("* ").name(msg.sender, msg.color).add(" ").add(msg.text).build()
        return line.name(msg.sender, msg.color).add(": ").add(msg.text).build()

    def _append(self, room: str | None, line: DisplayLine) -> None:
        if room not in self._scrollback:
            # Not a joined room (a message still in flight after /part): show
            # it where the user is, marked with its room.
            mark = Span(f"[{sanitize(room or '')}] ", Tag.ROOM)
            line, room = DisplayLine((*line.spans[:2], mark, *line.spans[2:])), self.current_room
        self._scrollback[room].append(line)
        if room == self.current_room:
            self._changes.new_lines.append(line)

    def _is_me(self, name: str) -> bool:
        return name_key(name) == name_key(self.me)

    def _note_seq(self, msg: Message) -> None:
        oldest = self._oldest_seq.get(msg.room)
        if oldest is None or msg.seq < oldest:
            self._oldest_seq[msg.room] = msg.seq

    def _set_room(self, room: str | None) -> None:
        if room is not None:
            self.unread.pop(room, None)
        self.current_room = room
        self._changes.view_reset = True
        self._changes.rooms_changed = True
        self._changes.members_changed = True

    def _add_room(self, room: str) -> None:
        self.rooms.append(room)
        self._scrollback[room] = deque(maxlen=MAX_SCROLLBACK_LINES)
        self._members[room] = {}
        self._changes.rooms_changed = True

    def _leave_room(self, room: str) -> None:
        if room not in self.rooms:
            return
        self.rooms.remove(room)
        for state in (self._scrollback, self._members, self.unread, self._oldest_seq):
            state.pop(room, None)
        self._roster_open.discard(room)
        self._history_open.discard(room)
        self._changes.rooms_changed = True
        if room == self.current_room:
            self._set_room(self.rooms[0] if self.rooms else None)


# What each parsed line does; cmd.Ignore (an empty line) does nothing.
_COMMANDS: dict[type[Any], Callable[[ChatModel, Any], None]] = {
    cmd.SayText: ChatModel._say,
    cmd.Me: ChatModel._say,
    cmd.Msg: ChatModel._whisper,
    cmd.JoinRoom: ChatModel._join,
    cmd.PartRoom: ChatModel._part,
    cmd.SwitchRoom: ChatModel._switch,
    cmd.NickCmd: ChatModel._nick,
    cmd.WhoCmd: ChatModel._who,
    cmd.ListRooms: ChatModel._list_rooms,
    cmd.HistoryCmd: ChatModel._history,
    cmd.QuitCmd: ChatModel._quit,
    cmd.Help: ChatModel._help,
    cmd.Hint: ChatModel._hint,
}

_EVENTS: dict[type[Any], Callable[[ChatModel, Any], None]] = {
    Message: ChatModel._on_message,
    History: ChatModel._on_history,
    Whisper: ChatModel._on_whisper,
    Joined: ChatModel._on_joined,
    Parted: ChatModel._on_parted,
    Roster: ChatModel._on_roster,
    RoomList: ChatModel._on_room_list,
    Renamed: ChatModel._on_renamed,
    Notice: ChatModel._on_notice,
    Error: ChatModel._on_error,
    ActionFailed: ChatModel._on_action_failed,
    Connected: ChatModel._on_connected,
    ConnectionLost: ChatModel._on_connection_lost,
    Reconnecting: ChatModel._on_reconnecting,
    Failed: ChatModel._on_failed,
    Closed: ChatModel._on_closed,
}
