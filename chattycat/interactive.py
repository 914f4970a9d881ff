"""The interactive client: an input line at the bottom, chat scrolling above it.

One :class:`InteractiveSession` wires four sans-IO or thin pieces to one
event loop: the :class:`~chattycat.client.Client` (network events in),
:class:`~chattycat.tui.Renderer` (events to styled lines),
:class:`~chattycat.lineedit.LineEditor` (keystrokes to edits and submitted
lines) and :class:`~chattycat.terminal.ScreenWriter` (lines printed above the
input row, which is then repainted with the cursor where it was).

The current room is UI state, not protocol state: it is the room a plain
line is said to, shown in the prompt, and the room Tab completes names from.
"""

from __future__ import annotations

import math
import signal
import sys
from collections.abc import Callable
from enum import Enum, auto
from typing import Any

from chattycat import commands as cmd
from chattycat.client import (
    Client,
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
)
from chattycat.console_io import KeyboardReader, ScreenLogHandler
from chattycat.lineedit import Completions, EndOfInput, Interrupt, LineEditor, Redraw, Submit
from chattycat.loop import EventLoop, TimerHandle
from chattycat.messages import Joined, Parted, name_key
from chattycat.terminal import RawTerminal, ScreenWriter, terminal_size, write_all
from chattycat.tui import Line, Renderer, make_console, render_to_ansi

__all__ = ["InteractiveSession", "run_interactive"]

# After /quit, Ctrl-C or Ctrl-D: how long to wait for the server to close the
# connection (so the quit reason and pending messages get out) before leaving.
QUIT_TIMEOUT_S = 2.0
# The "reconnecting in N s" countdown in the prompt is refreshed this often.
PROMPT_TICK_S = 1.0

# SIGTERM (kill) and SIGHUP (the terminal window was closed).
_QUIT_SIGNALS = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]

BELL = b"\a"
# Clear the screen and home the cursor (Ctrl-L).
CLEAR_SCREEN = b"\x1b[H\x1b[2J"
# Wipe the input row on the way out so the shell prompt starts on a clean row.
CLEAR_ROW = b"\r\x1b[K"


class _Phase(Enum):
    RUNNING = auto()
    QUITTING = auto()  # quit sent; waiting for Closed (bounded by QUIT_TIMEOUT_S)
    DONE = auto()


def run_interactive(client: Client, loop: EventLoop, *, no_color: bool = False) -> int:
    """Run the interactive client on the terminal (fds 0 and 1) until quit; the exit code."""
    return InteractiveSession(client, loop, no_color=no_color).run()


class InteractiveSession:
    """Terminal UI state: the current room, the input line, and the quit sequence."""

    def __init__(
        self,
        client: Client,
        loop: EventLoop,
        *,
        no_color: bool = False,
        stdin_fd: int = 0,
        stdout_fd: int = 1,
    ) -> None:
        self.client = client
        self.loop = loop
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.current_room: str | None = client.rooms[0] if client.rooms else None
        # Set by /join ROOM: switch there once our own "joined" arrives (not
        # before: the join may fail, e.g. with rate_limited).
        self._switch_on_join: str | None = None
        self.editor = LineEditor(complete=self._complete)
        columns, _ = terminal_size(stdout_fd)
        self.screen = ScreenWriter(stdout_fd, self.editor, columns=columns)
        self.console = make_console(columns, no_color=no_color)
        self.renderer = Renderer(client.name, current_room=self.current_room)
        self._phase = _Phase.RUNNING
        self._exit_code = 0
        self._ever_connected = False
        self._startup_failure: str | None = None
        self._retry_deadline: float | None = None
        self._tick: TimerHandle | None = None
        self._quit_timer: TimerHandle | None = None
        self._keyboard = KeyboardReader(loop, stdin_fd, self._on_keys, self.quit)
        self._log_handler = ScreenLogHandler(self._show_error)

    # -- running ------------------------------------------------------------------------

    def run(self) -> int:
        """Take over the terminal, run the loop until the session ends; the exit code."""
        previous_on_event = self.client.on_event
        self.client.on_event = self._on_client_event
        try:
            with RawTerminal(self.stdin_fd):
                self._install()
                try:
                    if self.client.state is ClientState.IDLE:
                        self.client.start()
                    self._refresh_prompt()
                    self.screen.redraw()
                    self.loop.run_until(lambda: self._phase is _Phase.DONE)
                finally:
                    self._uninstall()
                    write_all(self.stdout_fd, CLEAR_ROW)
        finally:
            self.client.on_event = previous_on_event
            if self.client.state is not ClientState.CLOSED:
                self.client.close()
        if self._startup_failure is not None:
            print(f"Error: {self._startup_failure}", file=sys.stderr)
        return self._exit_code

    def _install(self) -> None:
        self._keyboard.start()
        if hasattr(signal, "SIGWINCH"):
            self.loop.add_signal_handler(signal.SIGWINCH, self._on_resize)
        # Without these the default action would kill us in raw mode, leaving
        # the terminal without echo (atexit does not run on a fatal signal).
        for sig in _QUIT_SIGNALS:
            self.loop.add_signal_handler(sig, self.quit)
        # A log line written straight to stderr would land in the middle of
        # the input row; while the session runs, log records are printed above it.
        self._log_handler.install()

    def _uninstall(self) -> None:
        self._log_handler.uninstall()
        self._keyboard.stop()
        if hasattr(signal, "SIGWINCH"):
            self.loop.remove_signal_handler(signal.SIGWINCH)
        for sig in _QUIT_SIGNALS:
            self.loop.remove_signal_handler(sig)
        for timer in (self._tick, self._quit_timer):
            if timer is not None:
                timer.cancel()

    def _finish(self, exit_code: int) -> None:
        self._phase = _Phase.DONE
        self._exit_code = exit_code

    def quit(self, reason: str | None = None) -> None:
        """Leave: send quit, then end once the client is closed (or after QUIT_TIMEOUT_S)."""
        if self._phase is not _Phase.RUNNING or self.client.state is ClientState.CLOSED:
            # A second Ctrl-C while waiting means "now".
            self._finish(self._exit_code)
            return
        self._phase = _Phase.QUITTING
        self.client.quit(reason)
        self._quit_timer = self.loop.call_later(QUIT_TIMEOUT_S, self._finish, 0)
        self._refresh_prompt()

    # -- terminal input -----------------------------------------------------------------

    def _on_keys(self, data: bytes) -> None:
        for event in self.editor.feed(data):
            if isinstance(event, Submit):
                self._submit(event.line)
            elif isinstance(event, Interrupt | EndOfInput):
                self.quit()
            elif isinstance(event, Redraw):
                write_all(self.stdout_fd, CLEAR_SCREEN)
            elif isinstance(event, Completions):
                self.show([self.renderer.info("  ".join(event.candidates))])
        if self._phase is not _Phase.DONE:
            self.screen.redraw()

    def _on_resize(self) -> None:
        columns, _ = terminal_size(self.stdout_fd)
        self.screen.columns = columns
        self.console.width = max(columns, 20)
        self.screen.redraw()

    def _complete(self, prefix: str) -> list[str]:
        if prefix.startswith("/") and self.editor.buffer.startswith(prefix):
            return [f"/{name}" for name in cmd.COMMANDS if f"/{name}".startswith(prefix.lower())]
        if self.current_room is None:
            return []
        key = name_key(prefix)
        members = self.client.members(self.current_room)
        return [m.name for m in members if name_key(m.name).startswith(key)]

    # -- output -------------------------------------------------------------------------

    def show(self, lines: list[Line]) -> None:
        """Print rendered lines above the input row, ringing the bell if one asks."""
        if not lines:
            return
        ansi = "\n".join(render_to_ansi(line.text, self.console) for line in lines)
        self.screen.print_above(ansi)
        if any(line.bell for line in lines):
            write_all(self.stdout_fd, BELL)

    def _show_error(self, text: str) -> None:
        self.show([self.renderer.local_error(text)])

    def _set_room(self, room: str | None) -> None:
        self.current_room = room
        self.renderer.current_room = room
        self._refresh_prompt()

    def _refresh_prompt(self) -> None:
        room = self.current_room or "no room"
        status = self._status()
        self.screen.prompt = f"[{room} \u00b7 {status}]> " if status else f"[{room}]> "

    def _status(self) -> str:
        if self._phase is _Phase.QUITTING:
            return "quitting"
        state = self.client.state
        if state is ClientState.ONLINE:
            return ""
        if state is ClientState.WAITING_TO_RETRY:
            if self._retry_deadline is None:
                return "reconnecting"
            remaining = max(1, math.ceil(self._retry_deadline - self.loop.time()))
            return f"reconnecting in {remaining} s"
        if state is ClientState.CLOSED:
            return "offline"
        return "connecting"

    def _on_tick(self) -> None:
        self._tick = None
        self._refresh_prompt()
        self.screen.redraw()
        if self.client.state is ClientState.WAITING_TO_RETRY:
            self._tick = self.loop.call_later(PROMPT_TICK_S, self._on_tick)

    # -- client events ------------------------------------------------------------------

    def _on_client_event(self, event: ClientEvent) -> None:
        if self._phase is _Phase.DONE:
            return
        self._track_rooms(event)
        self._track_connection(event)
        if not (isinstance(event, Failed) and not self._ever_connected):
            self.show(self.renderer.render(event))
        self._refresh_prompt()
        self.screen.redraw()

    def _is_me(self, name: str) -> bool:
        me = self.renderer.me or self.client.name
        return name_key(name) == name_key(me)

    def _track_rooms(self, event: ClientEvent) -> None:
        if isinstance(event, Joined) and self._is_me(event.name):
            if self.current_room is None or event.room == self._switch_on_join:
                self._switch_on_join = None
                self._set_room(event.room)
        elif (
            isinstance(event, Parted)
            and self._is_me(event.name)
            and event.room == self.current_room
        ):
            others = [r for r in self.client.rooms if r != event.room]
            self._set_room(others[0] if others else None)

    def _track_connection(self, event: ClientEvent) -> None:
        if isinstance(event, Connected):
            self._ever_connected = True
            self._retry_deadline = None
        elif isinstance(event, ConnectionLost):
            self._retry_deadline = self.loop.time() + event.retry_in_s
            if self._tick is None:
                self._tick = self.loop.call_later(PROMPT_TICK_S, self._on_tick)
        elif isinstance(event, Failed):
            if not self._ever_connected:
                self._startup_failure = event.reason
            self._finish(1)
        elif isinstance(event, Closed):
            self._finish(0 if self._phase is _Phase.QUITTING else 1)

    # -- commands -----------------------------------------------------------------------

    def _submit(self, line: str) -> None:
        command = cmd.parse_line(line)
        handler = _COMMANDS.get(type(command))
        if handler is None:
            return
        try:
            handler(self, command)
        except (ValueError, RuntimeError) as exc:
            # The client refuses what it cannot send (a closed client, a bad
            # name it checks itself): one line for the user, not a traceback.
            self._show_error(str(exc))

    def _need_room(self) -> str | None:
        if self.current_room is None:
            self._show_error("you are in no room: /join ROOM first")
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
        if self.client.state is not ClientState.ONLINE:
            self.show([self.renderer.info("not connected: will be sent once reconnected")])

    def _join(self, command: cmd.JoinRoom) -> None:
        if command.room in self.client.rooms:
            self._set_room(command.room)
        else:
            self._switch_on_join = command.room
        # Joining a room one is in re-sends its roster and history: the
        # reminder of who is there is what a user switching back wants.
        self.client.join(command.room)

    def _part(self, command: cmd.PartRoom) -> None:
        room = command.room or self._need_room()
        if room is None:
            return
        if room not in self.client.rooms:
            self._show_error(f"you are not in #{room}")
            return
        self.client.part(room)

    def _switch(self, command: cmd.SwitchRoom) -> None:
        if command.room in self.client.rooms:
            self._set_room(command.room)
            self.show([self.renderer.info(f"now talking in #{command.room}")])
        else:
            error = f"you are not in #{command.room}: /join {command.room}"
            self._show_error(error)

    def _nick(self, command: cmd.NickCmd) -> None:
        self.client.nick(command.name)

    def _who(self, command: cmd.WhoCmd) -> None:
        room = command.room or self._need_room()
        if room is not None:
            self.client.who(room)

    def _rooms(self, command: cmd.ListRooms) -> None:
        self.client.list_rooms()

    def _history(self, command: cmd.HistoryCmd) -> None:
        room = self._need_room()
        if room is not None:
            before = self.client.oldest_seq(room)
            self.client.history(room, before=before, limit=command.limit or 50)

    def _quit(self, command: cmd.QuitCmd) -> None:
        self.quit(command.reason)

    def _help(self, command: cmd.Help) -> None:
        keys = [
            "Tab completes names in the current room, Up/Down recall earlier lines,",
            "Ctrl-C or Ctrl-D (on an empty line) quits, Ctrl-L clears the screen.",
        ]
        self.show([self.renderer.info(text) for text in [*cmd.help_lines(), *keys]])

    def _hint(self, command: cmd.Hint) -> None:
        self._show_error(command.text)


# What each parsed line does; cmd.Ignore (an empty line) does nothing.
_COMMANDS: dict[type[Any], Callable[[InteractiveSession, Any], None]] = {
    cmd.SayText: InteractiveSession._say,
    cmd.Me: InteractiveSession._say,
    cmd.Msg: InteractiveSession._whisper,
    cmd.JoinRoom: InteractiveSession._join,
    cmd.PartRoom: InteractiveSession._part,
    cmd.SwitchRoom: InteractiveSession._switch,
    cmd.NickCmd: InteractiveSession._nick,
    cmd.WhoCmd: InteractiveSession._who,
    cmd.ListRooms: InteractiveSession._rooms,
    cmd.HistoryCmd: InteractiveSession._history,
    cmd.QuitCmd: InteractiveSession._quit,
    cmd.Help: InteractiveSession._help,
    cmd.Hint: InteractiveSession._hint,
}
