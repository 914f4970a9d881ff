"""The desktop client's view model: client events in, what the window shows out.

:class:`ChatModel` is sans-IO and knows nothing of Tk. The GUI feeds it every
:data:`~chattycat.client.client.ClientEvent` and every line the user submits, then
asks it what to show: the lines of the current room's scrollback, the joined
rooms with unread counts, the members of the current room and one status
line. Everything is tested without a display or a server.

- Each joined room keeps its own scrollback; a chat message for a room that
  is not the current one is counted as unread instead of shown, and switching
  rooms shows that room's scrollback. Lines that belong to no room (connection
  state, whispers, notices, errors, command feedback) go to the current view.
- What a line says, the current room and the commands come from
  :class:`~chattycat.ui.controller.ChatController`, shared with the terminal
  clients; a click on a room switches like ``/room``. This module keeps
  what only a window has: a scrollback per room, unread counts and the
  status bar, and it maps display roles to Tk tag names.
- The rooms and their members are the client session's: the window shows
  the latest :class:`~chattycat.client.events.SessionChanged` snapshot (held
  by the controller) and keeps no list of its own. The client lives on
  another thread; a snapshot is immutable, so it crosses over as it is.
- Network text is sanitized by :mod:`chattycat.ui.describe` (and here for the
  member list and status bar): control characters and bidi overrides become
  visible, so a name cannot reorder or break the line it is in. Colors are
  used only when they are ``#rrggbb``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Protocol

from chattycat.client.client import (
    ClientEvent,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    Reconnecting,
    SessionChanged,
)
from chattycat.protocol.messages import (
    History,
    Joined,
    Member,
    Message,
    Parted,
    Renamed,
    Roster,
    name_key,
)
from chattycat.ui.controller import ChatController, ClientCalls
from chattycat.ui.describe import DisplayLine, Role, Span, safe_color
from chattycat.ui.sanitize import sanitize

__all__ = [
    "COLOR_TAG_PREFIX",
    "MAX_SCROLLBACK_LINES",
    "ActionFailed",
    "ChatModel",
    "ClientActions",
    "LinkState",
    "Tag",
    "ViewChanges",
    "ViewLine",
    "ViewSpan",
    "color_tag",
]

# Per room; older lines are dropped (the server keeps the history).
MAX_SCROLLBACK_LINES = 2000

COLOR_TAG_PREFIX = "color:"

HELP_EXTRA = ("Click a room on the left to switch to it; closing the window quits.",)


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
    MENTION = "mention"
    ONLINE = "online"
    OFFLINE = "offline"


_ROLE_TAGS: dict[Role, str | None] = {
    Role.TIME: Tag.TIME,
    Role.ROOM: Tag.ROOM,
    Role.NAME: Tag.NAME,
    Role.TEXT: None,
    Role.ACTION: None,
    Role.WHISPER: Tag.WHISPER,
    Role.JOIN: Tag.JOIN,
    Role.PART: Tag.PART,
    Role.NOTICE: Tag.NOTICE,
    Role.ERROR: Tag.ERROR,
    Role.INFO: Tag.INFO,
    Role.MENTION: Tag.MENTION,
    Role.ONLINE: Tag.ONLINE,
    Role.OFFLINE: Tag.OFFLINE,
}


def color_tag(color: str) -> str:
    """The tag of a name in ``color``: one tag per ``#rrggbb``, else the plain name tag."""
    # A hostile server could send anything as a color; Tk would raise on it.
    safe = safe_color(color)
    return Tag.NAME if safe is None else COLOR_TAG_PREFIX + safe


def _tag(span: Span) -> str | None:
    if span.role is Role.NAME and span.color is not None:
        return color_tag(span.color)
    return _ROLE_TAGS[span.role]


@dataclass(frozen=True, slots=True)
class ViewSpan:
    """A run of text with one style tag (None: the default look)."""

    text: str
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class ViewLine:
    """One line of the message view."""

    spans: tuple[ViewSpan, ...]

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

    new_lines: list[ViewLine] = field(default_factory=list)  # appended to the view
    view_reset: bool = False  # another scrollback is shown: redraw all of view_lines()
    rooms_changed: bool = False
    members_changed: bool = False


class ClientActions(ClientCalls, Protocol):
    """What the model asks of the client; :class:`~chattycat.client.client.Client` fits."""

    def quit(self, reason: str | None = None) -> None: ...


class LinkState(Enum):
    """The connection as the status bar tells it."""

    CONNECTING = auto()
    ONLINE = auto()
    WAITING_TO_RETRY = auto()
    FAILED = auto()
    CLOSED = auto()


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
        self.controller = ChatController(
            client, name, rooms=rooms, on_quit=self.request_quit, help_extra=HELP_EXTRA,
            clock=clock,
        )
        self.unread: dict[str, int] = {}
        self.link = LinkState.CONNECTING
        self.quitting = False
        self._clock = clock
        self._scrollback: dict[str | None, deque[ViewLine]] = {
            None: deque(maxlen=MAX_SCROLLBACK_LINES)
        }
        self._shown_room: str | None = None
        self._shown_members: tuple[Member, ...] = ()
        self._retry_at: float | None = None
        self._status_detail = ""
        # Nothing has been shown yet: the first take_changes() asks for everything.
        self._changes = ViewChanges(view_reset=True, rooms_changed=True, members_changed=True)
        self._sync_rooms()

    @property
    def me(self) -> str:
        """The user's name (it follows welcome and renames)."""
        return self.controller.me

    @property
    def rooms(self) -> list[str]:
        """The joined rooms, in join order."""
        return self.controller.rooms

    @property
    def current_room(self) -> str | None:
        """The room shown and talked to (None: no room)."""
        return self.controller.current_room

    # -- what the window shows ------------------------------------------------------

    def take_changes(self) -> ViewChanges:
        """What changed since the last call (then forgotten)."""
        changes, self._changes = self._changes, ViewChanges()
        return changes

    def view_lines(self) -> list[ViewLine]:
        """The scrollback of the current room (or of the no-room view)."""
        return list(self._scrollback[self.current_room])

    def scrollback(self, room: str | None) -> list[ViewLine]:
        """The scrollback of ``room`` (None: lines shown while in no room)."""
        return list(self._scrollback.get(room, ()))

    def room_label(self, room: str) -> str:
        """``#dev``, or ``#dev (3)`` with 3 unread messages."""
        unread = self.unread.get(room, 0)
        label = f"#{sanitize(room)}"
        return f"{label} ({unread})" if unread else label

    def members(self, room: str | None = None) -> list[Member]:
        """Members of ``room`` (default: the current room), sorted case-insensitively."""
        return list(self.controller.members(room))

    def member_entries(self) -> list[tuple[str, str | None]]:
        """The current room's member list: (sanitized name, ``#rrggbb`` or None)."""
        return [(sanitize(m.name), safe_color(m.color)) for m in self.members()]

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
        switched = self.controller.switch_room(room)
        self._sync_rooms()
        return switched

    def submit(self, line: str) -> None:
        """Act on one line typed into the entry: a message or a /command."""
        lines = self.controller.submit(line)
        self._sync_rooms()  # /join, /part and /room change the rooms
        for shown in lines:
            self._append(self.current_room, shown)

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
        self._append(self.current_room, self.controller.info(text))

    def local_error(self, text: str) -> None:
        """Show a local error line (a bad command, a refused action)."""
        self._append(self.current_room, self.controller.local_error(text))

    # -- events ---------------------------------------------------------------------

    def handle(self, event: ClientEvent | ActionFailed) -> None:
        """Update the display state for one client event."""
        if isinstance(event, ActionFailed):
            self.local_error(event.text)
            return
        # Where a rename is shown: the rooms the old name was in (the snapshot
        # that renames it comes after the event).
        renamed_in = self._rooms_of(event.old) if isinstance(event, Renamed) else []
        if isinstance(event, Joined) and self.controller.is_me(event.name):
            self._open_scrollback(event.room)  # its lines go there, the snapshot follows
        lines = self.controller.handle(event)
        if isinstance(event, SessionChanged):
            self._close_scrollbacks()
        self._sync_rooms()
        self._follow_link(event)
        for room in self._destinations(event, renamed_in):
            for line in lines:
                self._append(room, line)
        if isinstance(event, Message) and event.room != self.current_room \
                and event.room in self.rooms:
            self.unread[event.room] = self.unread.get(event.room, 0) + 1
            self._changes.rooms_changed = True

    def _destinations(self, event: ClientEvent, renamed_in: list[str]) -> list[str | None]:
        """The scrollbacks an event's lines go to (lines about no room: the current view)."""
        if isinstance(event, Message | History | Joined):
            return [event.room]
        if isinstance(event, Parted) and not self.controller.is_me(event.name):
            return [event.room]
        if isinstance(event, Parted) and event.room == self.current_room:
            # Shown where the user lands: the snapshot without the room follows.
            return [self.controller.room_after(event.room)]
        if isinstance(event, Renamed) and renamed_in:
            extra = [] if self.current_room in renamed_in else [self.current_room]
            return [*renamed_in, *extra]
        if isinstance(event, Roster):
            # Only the rosters asked for with /who are shown; the others
            # (after every join) just fill the member list.
            if event.room not in self.controller.rosters_asked:
                return []
            if not event.more:
                self.controller.rosters_asked.discard(event.room)
        return [self.current_room]

    def _follow_link(self, event: ClientEvent) -> None:
        if isinstance(event, Connected):
            self._set_link(LinkState.ONLINE, "")
        elif isinstance(event, ConnectionLost):
            self._set_link(LinkState.WAITING_TO_RETRY, event.reason)
            self._retry_at = self._clock() + event.retry_in_s
        elif isinstance(event, Reconnecting):
            self._set_link(LinkState.CONNECTING, f"reconnecting (attempt {event.attempt})\u2026")
        elif isinstance(event, Failed):
            self._set_link(LinkState.FAILED, event.reason)
        elif isinstance(event, Closed):
            self._set_link(LinkState.CLOSED, "")

    def _set_link(self, link: LinkState, detail: str) -> None:
        self.link = link
        self._status_detail = sanitize(detail)
        if link is not LinkState.WAITING_TO_RETRY:
            self._retry_at = None

    # -- building blocks ------------------------------------------------------------

    def _rooms_of(self, name: str) -> list[str]:
        key = name_key(name)
        return [state.room for state in self.controller.session.rooms
                if any(name_key(m.name) == key for m in state.members)]

    def _append(self, room: str | None, line: DisplayLine) -> None:
        if room not in self._scrollback:
            # Not a joined room (a message still in flight after /part): show
            # it where the user is; framing marks it with its room.
            room = self.current_room
        spans = tuple(ViewSpan(span.text, _tag(span)) for span in line.framed(room))
        shown = ViewLine(spans)
        self._scrollback[room].append(shown)
        if room == self.current_room:
            self._changes.new_lines.append(shown)

    def _open_scrollback(self, room: str | None) -> None:
        if room not in self._scrollback:
            self._scrollback[room] = deque(maxlen=MAX_SCROLLBACK_LINES)
            self._changes.rooms_changed = True

    def _close_scrollbacks(self) -> None:
        """Forget the scrollbacks of rooms the session no longer lists."""
        # Only on a snapshot: a room joined by the server (our own "joined")
        # gets its scrollback with that event, and is listed by the next one.
        for room in [r for r in self._scrollback if r not in (None, self.current_room)]:
            if room not in self.rooms:
                self._scrollback.pop(room)
                self.unread.pop(room, None)
                self._changes.rooms_changed = True

    def _sync_rooms(self) -> None:
        """Give each room of the session a scrollback; follow the current room and members."""
        for room in [*self.rooms, self.current_room]:
            self._open_scrollback(room)
        if self.current_room != self._shown_room:
            self._shown_room = self.current_room
            if self.current_room is not None:
                self.unread.pop(self.current_room, None)
            self._changes.view_reset = True
            self._changes.rooms_changed = True
        members = self.controller.members()
        if members != self._shown_members:
            self._shown_members = members
            self._changes.members_changed = True
