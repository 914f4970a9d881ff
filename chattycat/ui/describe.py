"""What to say about each client event: sans-IO, one event in, display lines out.

All three front ends show the same words; only the form differs. This
module decides the words and marks each run of text with a :class:`Role`;
``ui.term.style`` maps roles to rich styles, ``ui.gui.model`` to Tk tags,
and ``ui.scripted`` joins the texts.

Everything that came over the network (names, rooms, text, reasons, codes,
colors) is untrusted. It is sanitized here, once, with
:func:`chattycat.ui.sanitize.sanitize`, so no front end can forget to: a name
holding ``ESC [ 2 J`` or a bidi override is shown inert, never obeyed. A
name's color is kept only when it is ``#rrggbb``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from chattycat.client.events import (
    ClientEvent,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    Reconnecting,
)
from chattycat.protocol.messages import (
    Error,
    History,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Registered,
    Renamed,
    RoomList,
    Roster,
    Whisper,
    name_key,
)
from chattycat.ui.sanitize import sanitize

__all__ = [
    "TIME_FORMAT",
    "DisplayLine",
    "EventDescriber",
    "Role",
    "Span",
    "safe_color",
]

TIME_FORMAT = "%H:%M:%S"

_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")


class Role(Enum):
    """What a run of text is; each front end gives every role its own look."""

    TIME = auto()
    ROOM = auto()  # a room tag or room name in a list
    NAME = auto()  # a user's name; Span.color holds its color, if any
    TEXT = auto()  # message text and plain punctuation
    ACTION = auto()  # the "* " of an emote
    WHISPER = auto()
    JOIN = auto()
    PART = auto()
    NOTICE = auto()
    ERROR = auto()
    INFO = auto()  # dim commentary: headers, help, command feedback
    MENTION = auto()  # the user's own name inside someone else's text
    ONLINE = auto()
    OFFLINE = auto()


def safe_color(color: str | None) -> str | None:
    """``color`` in lower case if it is ``#rrggbb``, else None."""
    # A hostile server could send anything as a color; rich and Tk raise on
    # names they do not know, and there is nothing to gain from other forms.
    if color is not None and _COLOR_RE.fullmatch(color):
        return color.lower()
    return None


@dataclass(frozen=True, slots=True)
class Span:
    """A run of sanitized text with one role (and a name's ``#rrggbb`` color)."""

    text: str
    role: Role = Role.TEXT
    color: str | None = None


@dataclass(frozen=True, slots=True)
class DisplayLine:
    """One line to show: when, which room it is about (if any), what it says.

    ``room`` is the tag a front end writes as ``[room]`` when the line is
    shown outside that room's view; ``bell`` asks for the user's attention.
    """

    ts: float
    room: str | None
    spans: tuple[Span, ...]
    bell: bool = False

    @property
    def text(self) -> str:
        """The body (no time, no room tag) as plain text."""
        return "".join(span.text for span in self.spans)

    def framed(self, view_room: str | None) -> tuple[Span, ...]:
        """The whole line as shown in ``view_room``: time, ``[room]`` if elsewhere, body."""
        head = [Span(time.strftime(TIME_FORMAT, time.localtime(self.ts)), Role.TIME), Span(" ")]
        if self.room is not None and self.room != view_room:
            head += [Span(f"[{self.room}]", Role.ROOM), Span(" ")]
        return (*head, *self.spans)


class _Builder:
    """Collects spans; every piece of text is sanitized on the way in."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    def add(self, text: str, role: Role = Role.TEXT) -> _Builder:
        if text:
            self.spans.append(Span(sanitize(text), role))
        return self

    def name(self, name: str, color: str | None = None) -> _Builder:
        self.spans.append(Span(sanitize(name), Role.NAME, safe_color(color)))
        return self

    def names(self, members: Iterable[Member]) -> _Builder:
        for i, member in enumerate(members):
            if i:
                self.add(", ", Role.INFO)
            self.name(member.name, member.color)
        return self


@functools.lru_cache(maxsize=16)  # one name per client, asked for every message
def _mention_pattern(name: str) -> re.Pattern[str] | None:
    if not name:
        return None
    # "Word match": not preceded or followed by another name character, so
    # "al" is not mentioned by "also" but is by "al:" or "@al".
    return re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(name)}(?![A-Za-z0-9_-])", re.IGNORECASE)


class EventDescriber:
    """Turns client events into :class:`DisplayLine` lists; see the module docstring.

    ``me`` is the user's name as of the event (for mentions and "you are now
    known as"); the caller owns it and passes it in. The describer remembers
    only which history and roster replies are continued by a "more" frame.
    ``member_color`` may tell the color of a member, for events that carry
    none (``parted``). ``clock`` dates the events that carry no timestamp.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        member_color: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self._clock = clock
        self._member_color = member_color
        # Rooms whose last history/roster frame said "more": the next frame
        # of that type continues it and gets no header of its own.
        self._history_continues: set[str] = set()
        self._roster_continues: set[str] = set()
        self._handlers: dict[type[Any], Callable[[Any, str], list[DisplayLine]]] = {
            Message: self._message,
            Whisper: self._whisper,
            History: self._history,
            Joined: self._joined,
            Parted: self._parted,
            Roster: self._roster,
            RoomList: self._room_list,
            Renamed: self._renamed,
            Notice: self._notice,
            Registered: self._registered,
            Error: self._error,
            Connected: self._connected,
            ConnectionLost: self._connection_lost,
            Reconnecting: self._reconnecting,
            Failed: self._failed,
            Closed: self._closed,
        }

    def describe(self, event: ClientEvent, me: str) -> list[DisplayLine]:
        """The lines that show ``event`` (none for an event type it does not know)."""
        handler = self._handlers.get(type(event))
        return handler(event, me) if handler is not None else []

    def info(self, text: str) -> DisplayLine:
        """A local, dim line (help, command feedback)."""
        return self._line(_Builder().add(text, Role.INFO))

    def local_error(self, text: str) -> DisplayLine:
        """A local error line (a bad command, a refused action; not a server error)."""
        return self._line(_Builder().add(text, Role.ERROR))

    # -- building blocks -------------------------------------------------------------

    def _line(self, body: _Builder, *, ts: float | None = None, room: str | None = None,
              bell: bool = False) -> DisplayLine:
        when = self._clock() if ts is None else ts
        return DisplayLine(when, None if room is None else sanitize(room), tuple(body.spans), bell)

    def _body(self, line: _Builder, body: str, me: str | None) -> bool:
        """Add message text, marking mentions of ``me``; True if there was one."""
        text = sanitize(body)
        pattern = _mention_pattern(me) if me else None
        if pattern is None:
            line.add(text)
            return False
        pos = 0
        for match in pattern.finditer(text):
            line.add(text[pos : match.start()]).add(match.group(), Role.MENTION)
            pos = match.end()
        line.add(text[pos:])
        return pos > 0

    def _chat(self, msg: Message, me: str, *, live: bool) -> DisplayLine:
        line = _Builder()
        if msg.action:
            line.add("* ", Role.ACTION).name(msg.sender, msg.color).add(" ")
        else:
            line.name(msg.sender, msg.color).add(": ")
        own = name_key(msg.sender) == name_key(me)
        mentioned = self._body(line, msg.text, None if own else me)
        # Old messages replayed in history are highlighted but do not ring.
        return self._line(line, ts=msg.ts, room=msg.room, bell=mentioned and live)

    # -- chat --------------------------------------------------------------------------

    def _message(self, msg: Message, me: str) -> list[DisplayLine]:
        return [self._chat(msg, me, live=True)]

    def _whisper(self, w: Whisper, me: str) -> list[DisplayLine]:
        line = _Builder().add("[whisper]", Role.WHISPER).add(" ")
        if w.action:
            line.add("* ", Role.ACTION)
        line.name(w.sender, w.color).add(" \u2192 ", Role.WHISPER).name(w.to)
        line.add(" " if w.action else ": ")
        incoming = name_key(w.sender) != name_key(me)
        self._body(line, w.text, me if incoming else None)
        # A whisper is addressed to you by definition: it rings like a mention.
        return [self._line(line, ts=w.ts, bell=incoming)]

    def _history(self, h: History, me: str) -> list[DisplayLine]:
        continued = _continues(self._history_continues, h.room, more=h.more)
        if not (continued or h.messages or h.more or h.truncated):
            # Only a page the user asked for arrives empty: the client drops
            # histories with nothing new in them.
            return [self._line(_Builder().add(f"no older messages in #{h.room}", Role.INFO),
                               room=h.room)]
        lines: list[DisplayLine] = []
        if not continued and h.messages:
            head = _Builder().add(f"\u2014 history of #{h.room} \u2014", Role.INFO)
            if h.truncated:
                head.add(" (older messages skipped: /history to page back)", Role.INFO)
            lines.append(self._line(head, room=h.room))
        lines.extend(self._chat(m, me, live=False) for m in h.messages)
        return lines

    # -- membership -----------------------------------------------------------------

    def _joined(self, j: Joined, me: str) -> list[DisplayLine]:
        line = _Builder().add("\u2192 ", Role.JOIN).name(j.name, j.color)
        return [self._line(line.add(f" joined #{j.room}", Role.JOIN), ts=j.ts)]

    def _parted(self, p: Parted, me: str) -> list[DisplayLine]:
        color = self._member_color(p.room, p.name) if self._member_color is not None else None
        line = _Builder().add("\u2190 ", Role.PART).name(p.name, color)
        line.add(f" left #{p.room}", Role.PART)
        if p.reason in ("quit", "disconnected"):
            line.add(f" ({p.reason})", Role.PART)
        elif p.reason != "part":
            line.add(f" (quit: {p.reason})", Role.PART)
        return [self._line(line)]

    def _roster(self, r: Roster, me: str) -> list[DisplayLine]:
        continued = _continues(self._roster_continues, r.room, more=r.more)
        line = _Builder()
        if not (continued or r.members or r.more):
            line.add(f"nobody is in #{r.room}", Role.INFO)
        elif not continued:
            line.add(f"members of #{r.room}: ", Role.INFO)
        return [self._line(line.names(r.members), room=r.room)]

    def _room_list(self, rl: RoomList, me: str) -> list[DisplayLine]:
        if not rl.rooms:
            return [self.info("no rooms have members")]
        line = _Builder().add("rooms: ", Role.INFO)
        for i, info in enumerate(rl.rooms):
            if i:
                line.add(", ", Role.INFO)
            line.add(f"#{info.room}", Role.ROOM).add(f" ({info.members})", Role.INFO)
        return [self._line(line)]

    def _renamed(self, r: Renamed, me: str) -> list[DisplayLine]:
        line = _Builder()
        if name_key(r.old) == name_key(me):
            line.add("you are now known as ", Role.INFO)
        else:
            line.name(r.old).add(" is now known as ", Role.INFO)
        return [self._line(line.name(r.new, r.color))]

    # -- server and connection ------------------------------------------------------

    def _notice(self, n: Notice, me: str) -> list[DisplayLine]:
        return [self._line(_Builder().add(f"notice {n.code}: {n.text}", Role.NOTICE))]

    def _registered(self, r: Registered, me: str) -> list[DisplayLine]:
        line = _Builder().name(r.name).add(" is registered: sign in with its password", Role.INFO)
        return [self._line(line)]

    def _error(self, e: Error, me: str) -> list[DisplayLine]:
        return [self._line(_Builder().add(f"error {e.code}: {e.message}", Role.ERROR))]

    def _connected(self, c: Connected, me: str) -> list[DisplayLine]:
        line = _Builder().add("reconnected as " if c.resumed else "connected as ", Role.ONLINE)
        line.name(c.welcome.name, c.welcome.color).add(f" ({c.welcome.server})", Role.INFO)
        return [self._line(line)]

    def _connection_lost(self, c: ConnectionLost, me: str) -> list[DisplayLine]:
        line = _Builder().add(f"connection lost ({c.reason})", Role.OFFLINE)
        if c.retry_in_s > 0:
            line.add(f", reconnecting in {_seconds(c.retry_in_s)}", Role.OFFLINE)
        return [self._line(line)]

    def _reconnecting(self, r: Reconnecting, me: str) -> list[DisplayLine]:
        return [self.info(f"reconnecting (attempt {r.attempt})\u2026")]

    def _failed(self, f: Failed, me: str) -> list[DisplayLine]:
        code = f" [{f.code}]" if f.code else ""
        return [self.local_error(f"failed{code}: {f.reason}")]

    def _closed(self, c: Closed, me: str) -> list[DisplayLine]:
        return [self.info("disconnected")]


def _continues(open_rooms: set[str], room: str, *, more: bool) -> bool:
    """Whether a reply for ``room`` continues an earlier one; remember if it is continued."""
    continued = room in open_rooms
    if more:
        open_rooms.add(room)
    else:
        open_rooms.discard(room)
    return continued


def _seconds(value: float) -> str:
    # Whole seconds, rounded up: "in 0 s" while still waiting would be a lie.
    return f"{max(1, int(-(-value // 1)))} s"

