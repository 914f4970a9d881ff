"""The interactive client: an input line at the bottom, chat scrolling above it.

One :class:`InteractiveSession` wires sans-IO or thin pieces to one
event loop: the :class:`~chattycat.client.client.Client` (network events in),
:class:`~chattycat.ui.controller.ChatController` (typed lines to client calls,
events to display lines, the current room), :mod:`chattycat.ui.term.style` (display
lines to styled text),
:class:`~chattycat.ui.term.lineedit.LineEditor` (keystrokes to edits and submitted
lines) and :class:`~chattycat.ui.term.tty.ScreenWriter` (lines printed above the
input row, which is then repainted with the cursor where it was).

The current room (the controller's) is shown in the prompt, and it is the
room Tab completes names from.

Quitting while offline with messages still unsent asks first: the first
Ctrl-C, Ctrl-D or ``/quit`` says how many would be dropped, the second one
quits. Nothing here prints outside the screen: a start-up failure is raised
as :class:`~chattycat.errors.ConnectFailed` for the command line to report
once the terminal is restored.
"""

from __future__ import annotations

import math
import signal
from enum import Enum, auto

from chattycat.client.client import (
    Client,
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
)
from chattycat.errors import ConnectFailed
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.protocol.messages import name_key
from chattycat.ui import commands as cmd
from chattycat.ui.controller import ChatController
from chattycat.ui.describe import DisplayLine
from chattycat.ui.stdin import ByteReader, ScreenLogHandler
from chattycat.ui.term.lineedit import (
    Completions,
    EndOfInput,
    Interrupt,
    LineEditor,
    Redraw,
    Submit,
)
from chattycat.ui.term.style import make_console, render_to_ansi, to_text
from chattycat.ui.term.tty import RawTerminal, ScreenWriter, terminal_size, write_all

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

KEYS_HELP = (
    "Tab completes names in the current room, Up/Down recall earlier lines,",
    "Ctrl-C or Ctrl-D (on an empty line) quits, Ctrl-L clears the screen.",
)


class _Phase(Enum):
    RUNNING = auto()
    QUITTING = auto()  # quit sent; waiting for Closed (bounded by QUIT_TIMEOUT_S)
    DONE = auto()


def run_interactive(client: Client, loop: EventLoop, *, no_color: bool = False) -> int:
    """Run the interactive client on the terminal (fds 0 and 1) until quit; the exit code.

    Raises ConnectFailed when the server cannot be reached at start-up.
    """
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
        self.controller = ChatController(client, client.name, rooms=client.rooms,
                                         on_quit=self.ask_to_quit, help_extra=KEYS_HELP)
        self.editor = LineEditor(complete=self._complete)
        columns, _ = terminal_size(stdout_fd)
        self.screen = ScreenWriter(stdout_fd, self.editor, columns=columns)
        self.console = make_console(columns, no_color=no_color)
        self._phase = _Phase.RUNNING
        self._exit_code = 0
        self._ever_connected = False
        self._startup_failure: str | None = None
        self._retry_deadline: float | None = None
        self._tick: TimerHandle | None = None
        self._quit_timer: TimerHandle | None = None
        self._drop_warned = False  # told that quitting now drops unsent messages
        self._keyboard = ByteReader(loop, stdin_fd, self._on_keys, self.quit, console_keys=True)
        self._log_handler = ScreenLogHandler(self._show_error)

    @property
    def current_room(self) -> str | None:
        """The room plain lines are said to (None: no room)."""
        return self.controller.current_room

    # -- running ------------------------------------------------------------------------

    def run(self) -> int:
        """Take over the terminal, run the loop until the session ends; the exit code.

        Raises ConnectFailed (after restoring the terminal) when the server
        cannot be reached at start-up.
        """
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
            raise ConnectFailed(self._startup_failure)
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

    def ask_to_quit(self, reason: str | None = None) -> None:
        """The user asked to leave (Ctrl-C, Ctrl-D, /quit): quit, unless that drops messages.

        Offline, messages typed are only queued: the first request says how
        many would be dropped, and only a second one quits.
        """
        unsent = self.client.pending()
        online = self.client.state in (ClientState.ONLINE, ClientState.CLOSED)
        if unsent and not online and not self._drop_warned and self._phase is _Phase.RUNNING:
            self._drop_warned = True
            noun = "message" if unsent == 1 else "messages"
            self.show([self.controller.local_error(
                f"not connected: {unsent} unsent {noun} would be dropped; "
                "press Ctrl-C again to quit anyway")])
            return
        self.quit(reason)

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
                self.ask_to_quit()
            elif isinstance(event, Redraw):
                write_all(self.stdout_fd, CLEAR_SCREEN)
            elif isinstance(event, Completions):
                self.show([self.controller.info("  ".join(event.candidates))])
        if self._phase is not _Phase.DONE:
            self.screen.redraw()

    def _submit(self, line: str) -> None:
        self.show(self.controller.submit(line))
        # After a bare /register the next line is a password: masked, not in history.
        self.editor.secret = self.controller.awaiting_password
        self._refresh_prompt()  # the line may have switched rooms

    def _on_resize(self) -> None:
        columns, _ = terminal_size(self.stdout_fd)
        self.screen.columns = columns
        self.console.width = max(columns, 20)
        self.screen.redraw()

    def _complete(self, prefix: str) -> list[str]:
        if prefix.startswith("/") and self.editor.buffer[:self.editor.cursor] == prefix:
            return self._complete_command(prefix)  # a command is the first word only
        key = name_key(prefix)
        return [m.name for m in self.controller.members() if name_key(m.name).startswith(key)]

    def _complete_command(self, prefix: str) -> list[str]:
        names = [f"/{name}" for name in cmd.COMMANDS if f"/{name}".startswith(prefix.lower())]
        if len(names) != 1:
            return names  # the editor lists them and extends the common prefix
        # One command: completed here, followed by a space. The editor would
        # add ": " to a single candidate at the start of the line, which is
        # right for a name ("bob: hi") and wrong for "/join".
        rest = self.editor.buffer[self.editor.cursor:]
        completed = names[0] + " "
        self.editor.set_buffer(completed + rest.lstrip(" "), cursor=len(completed))
        return []

    # -- output -------------------------------------------------------------------------

    def show(self, lines: list[DisplayLine]) -> None:
        """Print lines above the input row, ringing the bell if one asks."""
        if not lines:
            return
        ansi = "\n".join(
            render_to_ansi(to_text(line, self.current_room), self.console) for line in lines
        )
        self.screen.print_above(ansi)
        if any(line.bell for line in lines):
            write_all(self.stdout_fd, BELL)

    def _show_error(self, text: str) -> None:
        self.show([self.controller.local_error(text)])

    def _refresh_prompt(self) -> None:
        room = self.current_room or "no room"
        status = self._status()
        self.screen.prompt = f"[{room} \u00b7 {status}]> " if status else f"[{room}]> "
        if self.controller.awaiting_password:
            self.screen.prompt = f"[password for {self.controller.me}]> "

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
        if isinstance(event, Connected):
            self._drop_warned = False  # what was queued is being sent now
        lines = self.controller.handle(event)
        self._track_connection(event)
        if not (isinstance(event, Failed) and not self._ever_connected):
            self.show(lines)
        self._refresh_prompt()
        self.screen.redraw()

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
