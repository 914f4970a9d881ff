"""The scripted client: stdin lines in, one plain-text line per event out.

``echo hi | chattycat join --name bot`` runs this when stdin is not a
terminal. Every stdin line is a message to the current room or a command
(:mod:`chattycat.commands`); every event is printed as exactly one line with
a local ``HH:MM:SS`` timestamp, flushed at once, never wrapped, with control
characters in network text made visible, so that another program can read
the output line by line.

At end of input (or ``/quit``) the session waits until the server has
acknowledged every message it sent, bounded by :data:`FINISH_GRACE_S` without
progress, then says ``quit`` and ends.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

from chattycat import commands as cmd
from chattycat.client import (
    Client,
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    Reconnecting,
)
from chattycat.errors import ConnectFailed
from chattycat.loop import EventLoop, TimerHandle
from chattycat.messages import (
    Error,
    History,
    Joined,
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

__all__ = ["PlainSession", "format_event", "run_plain"]

# After end of input: give up waiting for acknowledgements after this long
# without progress (a message acknowledged, or a connection made).
FINISH_GRACE_S = 5.0
FINISH_POLL_S = 0.05
# After quit(): how long the quit frame may take to leave.
DRAIN_TIMEOUT_S = 2.0
STDIN_READ_BYTES = 65536


def run_plain(client: Client, loop: EventLoop, *, out: TextIO | None = None,
              stdin_fd: int = 0) -> int:
    """Run the scripted client until end of input or /quit; 0, or ConnectFailed."""
    return PlainSession(client, loop, out=out or sys.stdout, stdin_fd=stdin_fd).run()


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _message_line(message: Message) -> str:
    text = sanitize(message.text)
    if message.action:
        return f"[{message.room}] * {message.sender} {text}"
    return f"[{message.room}] <{message.sender}> {text}"


def _parted_line(parted: Parted) -> str:
    if parted.reason == "part":
        why = ""
    elif parted.reason == "disconnected":
        why = " (disconnected)"
    elif parted.reason == "quit":
        why = " (quit)"
    else:
        why = f" (quit: {sanitize(parted.reason)})"
    return f"[{parted.room}] -- {parted.name} left{why}"


def format_event(event: ClientEvent, *, server: str, now: float | None = None) -> list[str]:
    """The output lines for one event (``server`` is "host:port"); may be empty."""
    stamp = _clock(time.time() if now is None else now)
    if isinstance(event, Message):
        return [f"{_clock(event.ts)} {_message_line(event)}"]
    if isinstance(event, History):
        lines = [f"{_clock(m.ts)} {_message_line(m)}" for m in event.messages]
        if event.truncated:
            lines.insert(0, f"{stamp} [{event.room}] -- older messages not shown (see /history)")
        return lines
    return [f"{stamp} {text}" for text in _describe(event, server)]


def _describe(event: ClientEvent, server: str) -> list[str]:
    if isinstance(event, Whisper):
        text = sanitize(event.text)
        if event.action:
            return [f"[whisper] * {event.sender} -> {event.to} {text}"]
        return [f"[whisper] {event.sender} -> {event.to}: {text}"]
    if isinstance(event, Joined):
        return [f"[{event.room}] -- {event.name} joined"]
    if isinstance(event, Parted):
        return [_parted_line(event)]
    if isinstance(event, Roster):
        names = ", ".join(m.name for m in event.members) or "nobody"
        return [f"[{event.room}] -- members: {names}"]
    if isinstance(event, RoomList):
        rooms = ", ".join(f"{r.room} ({r.members})" for r in event.rooms) or "none"
        return [f"-- rooms: {rooms}"]
    if isinstance(event, Renamed):
        return [f"-- {event.old} is now known as {event.new}"]
    if isinstance(event, Notice):
        return [f"-- notice {sanitize(event.code)}: {sanitize(event.text)}"]
    if isinstance(event, Error):
        return [f"!! error {sanitize(event.code)}: {sanitize(event.message)}"]
    if isinstance(event, Connected):
        verb = "reconnected" if event.resumed else "connected"
        return [f"-- {verb} to {server} as {event.welcome.name}"]
    if isinstance(event, ConnectionLost):
        return [f"-- reconnecting in {event.retry_in_s:.1f} s ({event.reason})"]
    return []  # Reconnecting, Failed (reported by the caller), Closed


class StdinLines:
    """Reads ``fd`` on the loop, hands out complete lines, then one end-of-input call.

    Pipes and terminals are watched with ``add_reader`` and read without
    blocking. Where the selector cannot watch the descriptor (Windows, or a
    regular file or /dev/null under epoll) one thread does blocking reads and
    passes the bytes to the loop with ``call_soon_threadsafe``.
    """

    def __init__(self, loop: EventLoop, fd: int, on_line: Callable[[str], None],
                 on_eof: Callable[[], None]) -> None:
        self._loop = loop
        self._fd = fd
        self._on_line = on_line
        self._on_eof = on_eof
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._done = False
        self._restore_blocking: bool | None = None
        self._watching = False

    def start(self) -> None:
        """Begin reading."""
        if sys.platform != "win32":
            try:
                self._loop.add_reader(self._fd, self._on_readable)
                self._watching = True
            except (OSError, ValueError):
                pass  # e.g. EPERM: epoll cannot watch regular files
        if self._watching:
            self._restore_blocking = os.get_blocking(self._fd)
            os.set_blocking(self._fd, False)
            return
        thread = threading.Thread(target=self._read_in_thread, name="chattycat-stdin",
                                  daemon=True)
        thread.start()

    def stop(self) -> None:
        """Stop reading and put the descriptor back in blocking mode."""
        self._done = True
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._fd)
        if self._restore_blocking is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, self._restore_blocking)
            self._restore_blocking = None

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, STDIN_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self._feed(data)

    def _read_in_thread(self) -> None:
        while True:
            try:
                data = os.read(self._fd, STDIN_READ_BYTES)
            except OSError:
                data = b""
            self._loop.call_soon_threadsafe(self._feed, data)
            if not data:
                return

    def _feed(self, data: bytes) -> None:
        if self._done:
            return
        text = self._partial + self._decoder.decode(data, final=not data)
        *lines, self._partial = text.split("\n")
        for line in lines:
            if self._done:
                return
            self._on_line(line.removesuffix("\r"))
        if not data:
            partial, self._partial = self._partial, ""
            if partial and not self._done:
                self._on_line(partial.removesuffix("\r"))
            self.stop()
            self._on_eof()


class PlainSession:
    """The scripted client: current room, input backlog and the finish sequence."""

    def __init__(self, client: Client, loop: EventLoop, *, out: TextIO, stdin_fd: int = 0
                 ) -> None:
        self.client = client
        self.loop = loop
        self.out = out
        self.current_room: str | None = client.rooms[0] if client.rooms else None
        self.failure: Failed | None = None
        self.closed = False
        self._server = _where(client.host, client.port)
        # Lines typed before we know which room they are for (no --room given
        # and the server has not told us its default room yet).
        self._backlog: deque[str] = deque()
        self._room_known = self.current_room is not None
        self._connected_once = False
        self._quit_requested = False  # /quit seen: the rest of the input is dropped
        self._finishing = False  # end of input or /quit: quit once all is acknowledged
        self._quit_reason: str | None = None
        self._last_progress = 0.0
        self._last_pending = 0
        self._finish_timer: TimerHandle | None = None
        self._stdin = StdinLines(loop, stdin_fd, self._on_line, self._on_eof)

    def run(self) -> int:
        """Start the client and the input; returns 0 when done, raises ConnectFailed."""
        previous = self.client.on_event
        self.client.on_event = self._on_event
        try:
            self._stdin.start()
            if self.client.state is ClientState.IDLE:
                self.client.start()
            self.loop.run_until(lambda: self.closed)
            self.loop.run_until(self.client.drained, timeout_s=DRAIN_TIMEOUT_S)
        finally:
            self._stdin.stop()
            if self._finish_timer is not None:
                self._finish_timer.cancel()
            self.client.on_event = previous
            if self.client.state is not ClientState.CLOSED:
                self.client.close()
        if self.failure is not None:
            raise ConnectFailed(self.failure.reason)
        return 0

    # -- output ----------------------------------------------------------------

    def show(self, lines: list[str]) -> None:
        """Write lines, flushing each so a reader sees it at once."""
        try:
            for line in lines:
                self.out.write(line + "\n")
                self.out.flush()
        except (BrokenPipeError, ValueError):
            # Whoever read our output is gone (``| head -3``): nothing left to do.
            # Point the descriptor at devnull so the interpreter's final flush is quiet.
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.out.fileno())
                os.close(devnull)
            self.client.close()

    def note(self, text: str) -> None:
        """A local line (hint, help) with the current time."""
        self.show([f"{_clock(time.time())} {text}"])

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, Failed):
            self.failure = event
            self.closed = True
            return
        if isinstance(event, Closed):
            self.closed = True
            return
        self.show(format_event(event, server=self._server))
        if self.client.state is ClientState.CLOSED:
            return  # our reader went away while showing it: nothing more to do
        if isinstance(event, Connected | Reconnecting):
            self._connected_once = True
            self._last_progress = self.loop.time()
        if isinstance(event, Joined) and name_key(event.name) == name_key(self.client.name):
            if not self._room_known:
                self._room_known = True
                self.current_room = event.room
                self._drain_backlog()
        elif (isinstance(event, Parted) and event.room == self.current_room
              and name_key(event.name) == name_key(self.client.name)):
            self.current_room = self.client.rooms[0] if self.client.rooms else None

    # -- input -----------------------------------------------------------------

    def _on_line(self, line: str) -> None:
        if self._quit_requested:
            return
        if not self._room_known:
            self._backlog.append(line)
            return
        self._execute(line)

    def _drain_backlog(self) -> None:
        while self._backlog and not self._quit_requested:
            self._execute(self._backlog.popleft())
        self._backlog.clear()

    def _on_eof(self) -> None:
        self._begin_finish()

    def _execute(self, line: str) -> None:
        if self.client.state is ClientState.CLOSED:
            return
        command = cmd.parse_line(line)
        handler = _HANDLERS.get(type(command))
        if handler is None:
            return
        try:
            handler(self, command)
        except ValueError as exc:
            self.note(f"!! {exc}")

    def _say(self, command: cmd.SayText | cmd.Me) -> None:
        if self.current_room is None:
            self.note("!! you are in no room; /join ROOM first")
            return
        self.client.say(self.current_room, command.text, action=isinstance(command, cmd.Me))

    def _whisper(self, command: cmd.Msg) -> None:
        self.client.whisper(command.to, command.text)

    def _join(self, command: cmd.JoinRoom) -> None:
        self.client.join(command.room)
        self.current_room = command.room

    def _part(self, command: cmd.PartRoom) -> None:
        room = command.room or self.current_room
        if room is None or room not in self.client.rooms:
            self.note(f"!! you are not in {room or 'any room'}")
            return
        self.client.part(room)
        if room == self.current_room:
            self.current_room = self.client.rooms[0] if self.client.rooms else None

    def _switch(self, command: cmd.SwitchRoom) -> None:
        if command.room not in self.client.rooms:
            self.note(f"!! you are not in {command.room}; /join {command.room} first")
            return
        self.current_room = command.room
        self.note(f"-- talking in {command.room} now")

    def _nick(self, command: cmd.NickCmd) -> None:
        self.client.nick(command.name)

    def _who(self, command: cmd.WhoCmd) -> None:
        room = command.room or self.current_room
        if room is None:
            self.note("!! usage: /who ROOM")
            return
        self.client.who(room)

    def _rooms(self, command: cmd.ListRooms) -> None:
        self.client.list_rooms()

    def _history(self, command: cmd.HistoryCmd) -> None:
        room = self.current_room
        if room is None:
            self.note("!! you are in no room")
            return
        before = self.client.oldest_seq(room)
        self.client.history(room, before=before, limit=command.limit or 50)

    def _quit(self, command: cmd.QuitCmd) -> None:
        # Like end of input: what was typed before /quit still goes out first.
        self._quit_reason = command.reason
        self._quit_requested = True
        self._stdin.stop()
        self._begin_finish()

    def _help(self, command: cmd.Help) -> None:
        for line in cmd.help_lines():
            self.note(f"-- {line}")

    def _hint(self, command: cmd.Hint) -> None:
        self.note(f"!! {command.text}")

    # -- finishing -------------------------------------------------------------

    def _begin_finish(self) -> None:
        if not self._finishing:
            self._finishing = True
            self._finish()

    def _finish(self) -> None:
        """Quit once everything typed is acknowledged (bounded without progress)."""
        self._finish_timer = None
        if self.client.state is ClientState.CLOSED:
            return
        now = self.loop.time()
        pending = self.client.pending()
        if pending < self._last_pending:
            self._last_progress = now
        self._last_pending = pending
        if not self._connected_once:
            self._last_progress = now  # a start-up failure ends us through Failed
        elif not self._backlog and pending == 0:
            self.client.quit(self._quit_reason)
            return
        elif now - self._last_progress >= FINISH_GRACE_S:
            self.note(f"!! giving up on {pending} unacknowledged message(s)")
            self.client.quit(self._quit_reason)
            return
        self._finish_timer = self.loop.call_later(FINISH_POLL_S, self._finish)


_HANDLERS: dict[type, Callable[[PlainSession, Any], None]] = {
    cmd.SayText: PlainSession._say,
    cmd.Me: PlainSession._say,
    cmd.Msg: PlainSession._whisper,
    cmd.JoinRoom: PlainSession._join,
    cmd.PartRoom: PlainSession._part,
    cmd.SwitchRoom: PlainSession._switch,
    cmd.NickCmd: PlainSession._nick,
    cmd.WhoCmd: PlainSession._who,
    cmd.ListRooms: PlainSession._rooms,
    cmd.HistoryCmd: PlainSession._history,
    cmd.QuitCmd: PlainSession._quit,
    cmd.Help: PlainSession._help,
    cmd.Hint: PlainSession._hint,
}
