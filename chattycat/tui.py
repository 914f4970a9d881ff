"""Rich rendering of client events: one event in, styled lines out; no I/O.

Everything that came over the network (names, rooms, text, reasons, codes,
colors) is untrusted. Text goes through :func:`chattycat.terminal.sanitize`
before it reaches a :class:`rich.text.Text`, and it is only ever *appended*
to one, never parsed as console markup: a nickname such as ``[bold]x[/]`` or
a message holding ``ESC [ 2 J`` is shown literally and cannot restyle or
clear the user's screen. Colors are used only when they are ``#rrggbb``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.style import Style
from rich.text import Text

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
)
from chattycat.terminal import sanitize

__all__ = ["Line", "Renderer", "make_console", "render_to_ansi"]

TIME_FORMAT = "%H:%M:%S"

_COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")

DIM = Style(dim=True)
TIMESTAMP = Style(dim=True)
ROOM_PREFIX = Style(color="cyan")
MENTION = Style(reverse=True, bold=True)
WHISPER_MARK = Style(color="magenta", italic=True)
JOIN = Style(color="green", dim=True)
PART = Style(dim=True)
RENAME = Style(dim=True)
NOTICE = Style(color="yellow")
ERROR = Style(color="red", bold=True)
ONLINE = Style(color="green")
OFFLINE = Style(color="yellow")
INFO = Style(dim=True)


@dataclass(frozen=True, slots=True)
class Line:
    """One rendered line; ``bell`` asks the caller to ring the terminal bell."""

    text: Text
    bell: bool = False


def name_style(color: str) -> Style:
    """The style of a user's name: the server-assigned color if it is ``#rrggbb``."""
    # A hostile server could send anything as a color; rich would raise on a
    # name it does not know, and there is nothing to gain from other forms.
    if _COLOR_RE.fullmatch(color):
        return Style(color=color, bold=True)
    return Style(bold=True)


def _mention_pattern(name: str) -> re.Pattern[str] | None:
    if not name:
        return None
    # "Word match": not preceded or followed by another name character, so
    # "al" is not mentioned by "also" but is by "al:" or "@al".
    return re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(name)}(?![A-Za-z0-9_-])", re.IGNORECASE)


class Renderer:
    """Turns client events into :class:`Line` objects for the terminal.

    ``me`` is the user's own name (for mentions) and ``current_room`` the room
    the input line talks to (other rooms get a ``[room]`` prefix). Both are
    plain attributes the caller may set; ``me`` also follows ``welcome`` and
    ``renamed``. ``clock`` dates the events that carry no timestamp.
    """

    def __init__(
        self,
        me: str = "",
        *,
        current_room: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.me = me
        self.current_room = current_room
        self._clock = clock
        # Rooms whose last history/roster frame said "more": the next frame
        # of that type continues it and gets no header of its own.
        self._history_continues: set[str] = set()
        self._roster_continues: set[str] = set()
        self._handlers: dict[type[Any], Callable[[Any], list[Line]]] = {
            Message: self._message,
            Whisper: self._whisper,
            Joined: self._joined,
            Parted: self._parted,
            Roster: self._roster,
            History: self._history,
            RoomList: self._room_list,
            Renamed: self._renamed,
            Notice: self._notice,
            Error: self._error,
            Connected: self._connected,
            ConnectionLost: self._connection_lost,
            Reconnecting: self._reconnecting,
            Failed: self._failed,
            Closed: self._closed,
        }

    def render(self, event: ClientEvent) -> list[Line]:
        """The lines that show ``event`` (none for an event type it does not know)."""
        handler = self._handlers.get(type(event))
        return handler(event) if handler is not None else []

    # -- lines the UI makes itself ---------------------------------------------------

    def info(self, text: str) -> Line:
        """A local, dim line (help, command feedback); ``text`` is trusted."""
        return Line(self._head(None).append(sanitize(text), INFO))

    def local_error(self, text: str) -> Line:
        """A local error line (a bad command, not a server error)."""
        return Line(self._head(None).append(sanitize(text), ERROR))

    # -- building blocks -------------------------------------------------------------

    def _head(self, ts: float | None, room: str | None = None) -> Text:
        """A new line starting with the timestamp and, for another room, ``[room]``."""
        stamp = time.strftime(TIME_FORMAT, time.localtime(self._clock() if ts is None else ts))
        text = Text(overflow="fold", end="")
        text.append(stamp, TIMESTAMP)
        text.append(" ")
        if room is not None and room != self.current_room:
            text.append(f"[{sanitize(room)}]", ROOM_PREFIX)
            text.append(" ")
        return text

    def _is_me(self, name: str) -> bool:
        return bool(self.me) and name.lower() == self.me.lower()

    def _append_body(self, line: Text, body: str, highlight: bool) -> bool:
        """Append message text, marking mentions of ``me``; True if there was one."""
        body = sanitize(body)
        pattern = _mention_pattern(self.me) if highlight else None
        if pattern is None:
            line.append(body)
            return False
        pos = 0
        for match in pattern.finditer(body):
            line.append(body[pos : match.start()])
            line.append(match.group(), MENTION)
            pos = match.end()
        line.append(body[pos:])
        return pos > 0

    def _chat_line(self, msg: Message, *, live: bool) -> Line:
        line = self._head(msg.ts, msg.room)
        sender = sanitize(msg.sender)
        if msg.action:
            line.append("* ")
            line.append(sender, name_style(msg.color))
            line.append(" ")
        else:
            line.append(sender, name_style(msg.color))
            line.append(": ")
        mentioned = self._append_body(line, msg.text, highlight=not self._is_me(msg.sender))
        # Old messages replayed in history are highlighted but do not ring.
        return Line(line, bell=mentioned and live)

    # -- chat --------------------------------------------------------------------------

    def _message(self, msg: Message) -> list[Line]:
        return [self._chat_line(msg, live=True)]

    def _whisper(self, w: Whisper) -> list[Line]:
        line = self._head(w.ts)
        line.append("[whisper]", WHISPER_MARK)
        line.append(" ")
        if w.action:
            line.append("* ")
        line.append(sanitize(w.sender), name_style(w.color))
        line.append(" \u2192 ", WHISPER_MARK)
        line.append(sanitize(w.to), Style(bold=True))
        line.append(" " if w.action else ": ")
        incoming = not self._is_me(w.sender)
        self._append_body(line, w.text, highlight=incoming)
        # A whisper is addressed to you by definition: it rings like a mention.
        return [Line(line, bell=incoming)]

    def _history(self, h: History) -> list[Line]:
        lines: list[Line] = []
        continued = h.room in self._history_continues
        if h.more:
            self._history_continues.add(h.room)
        else:
            self._history_continues.discard(h.room)
        if not continued and h.messages:
            head = self._head(None, h.room)
            head.append(f"\u2014 history of #{sanitize(h.room)} \u2014", DIM)
            if h.truncated:
                head.append(" (older messages skipped: /history to page back)", DIM)
            lines.append(Line(head))
        lines.extend(self._chat_line(m, live=False) for m in h.messages)
        return lines

    # -- membership -----------------------------------------------------------------

    def _joined(self, j: Joined) -> list[Line]:
        line = self._head(j.ts)
        line.append("\u2192 ", JOIN)
        line.append(sanitize(j.name), name_style(j.color))
        line.append(f" joined #{sanitize(j.room)}", JOIN)
        return [Line(line)]

    def _parted(self, p: Parted) -> list[Line]:
        line = self._head(None)
        line.append("\u2190 ", PART)
        line.append(sanitize(p.name), Style(bold=True, dim=True))
        line.append(f" left #{sanitize(p.room)}", PART)
        if p.reason == "disconnected":
            line.append(" (disconnected)", PART)
        elif p.reason == "quit":
            line.append(" (quit)", PART)
        elif p.reason != "part":
            line.append(f" (quit: {sanitize(p.reason)})", PART)
        return [Line(line)]

    def _roster(self, r: Roster) -> list[Line]:
        continued = r.room in self._roster_continues
        if r.more:
            self._roster_continues.add(r.room)
        else:
            self._roster_continues.discard(r.room)
        line = self._head(None, r.room)
        if not continued:
            line.append(f"members of #{sanitize(r.room)}: ", DIM)
        self._append_names(line, r.members)
        return [Line(line)]

    def _append_names(self, line: Text, members: Iterable[Member]) -> None:
        for i, member in enumerate(members):
            if i:
                line.append(", ", DIM)
            line.append(sanitize(member.name), name_style(member.color))

    def _room_list(self, rl: RoomList) -> list[Line]:
        line = self._head(None)
        if not rl.rooms:
            line.append("no rooms have members", DIM)
            return [Line(line)]
        line.append("rooms: ", DIM)
        for i, info in enumerate(rl.rooms):
            if i:
                line.append(", ", DIM)
            line.append(f"#{sanitize(info.room)}", ROOM_PREFIX)
            line.append(f" ({info.members})", DIM)
        return [Line(line)]

    def _renamed(self, r: Renamed) -> list[Line]:
        line = self._head(None)
        if self._is_me(r.old):
            self.me = r.new
            line.append("you are now known as ", RENAME)
        else:
            line.append(sanitize(r.old), Style(bold=True, dim=True))
            line.append(" is now known as ", RENAME)
        line.append(sanitize(r.new), name_style(r.color))
        return [Line(line)]

    # -- server and connection ------------------------------------------------------

    def _notice(self, n: Notice) -> list[Line]:
        line = self._head(None)
        line.append(f"notice {sanitize(n.code)}: {sanitize(n.text)}", NOTICE)
        return [Line(line)]

    def _error(self, e: Error) -> list[Line]:
        line = self._head(None)
        line.append(f"error {sanitize(e.code)}: {sanitize(e.message)}", ERROR)
        return [Line(line)]

    def _connected(self, c: Connected) -> list[Line]:
        self.me = c.welcome.name
        line = self._head(None)
        line.append("reconnected as " if c.resumed else "connected as ", ONLINE)
        line.append(sanitize(c.welcome.name), name_style(c.welcome.color))
        line.append(f" ({sanitize(c.welcome.server)})", DIM)
        return [Line(line)]

    def _connection_lost(self, c: ConnectionLost) -> list[Line]:
        line = self._head(None)
        line.append(f"connection lost ({sanitize(c.reason)})", OFFLINE)
        if c.retry_in_s > 0:
            line.append(f", reconnecting in {_seconds(c.retry_in_s)}", OFFLINE)
        return [Line(line)]

    def _reconnecting(self, r: Reconnecting) -> list[Line]:
        line = self._head(None)
        line.append(f"reconnecting (attempt {r.attempt})\u2026", DIM)
        return [Line(line)]

    def _failed(self, f: Failed) -> list[Line]:
        line = self._head(None)
        code = f" [{sanitize(f.code)}]" if f.code else ""
        line.append(f"failed{code}: {sanitize(f.reason)}", ERROR)
        return [Line(line)]

    def _closed(self, c: Closed) -> list[Line]:
        line = self._head(None)
        line.append("disconnected", DIM)
        return [Line(line)]


def _seconds(value: float) -> str:
    # Whole seconds, rounded up: "in 0 s" while still waiting would be a lie.
    return f"{max(1, int(-(-value // 1)))} s"


def make_console(width: int, *, no_color: bool = False) -> Console:
    """A console that renders into memory for :func:`render_to_ansi`.

    With ``no_color`` the output is plain text; otherwise rich picks the color
    depth from ``COLORTERM``/``TERM`` and downsamples ``#rrggbb`` to fit.
    """
    return Console(
        file=io.StringIO(),  # only used through capture()
        force_terminal=True,
        color_system=None if no_color else "auto",
        width=max(width, 20),
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
        soft_wrap=False,
    )


def render_to_ansi(text: Text, console: Console) -> str:
    """``text`` as the string ``console`` would print, wrapped to its width."""
    with console.capture() as capture:
        console.print(text, end="", highlight=False, markup=False, emoji=False)
    return capture.get()
