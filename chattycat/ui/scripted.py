"""The scripted client: stdin lines in, one plain-text line per event out.

``echo hi | chattycat join --name bot`` runs this when stdin is not a
terminal. Every stdin line is a message to the current room or a command
(:mod:`chattycat.ui.commands`); every event is printed as exactly one line with
a local ``HH:MM:SS`` timestamp, flushed at once, never wrapped, with control
characters in network text made visible, so that another program can read
the output line by line.

At end of input (or ``/quit``) the session waits until the server has
handled everything it was sent (a :meth:`Client.sync` barrier: the joins'
histories have been shown) and acknowledged every message, bounded by
:data:`FINISH_GRACE_S` without progress, then says ``quit`` and ends. It
waits on the client's events (``Synced``, ``PendingChanged``, ``Connected``,
...), never by polling: each event that could end the wait checks whether it
has.
"""

from __future__ import annotations

import codecs
import contextlib
import os
from collections import deque
from typing import TextIO

from chattycat.client.client import (
    Client,
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    Failed,
    PendingChanged,
    Reconnecting,
    Synced,
)
from chattycat.errors import ConnectFailed
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.ui.controller import ChatController
from chattycat.ui.describe import DisplayLine
from chattycat.ui.stdin import ByteReader

__all__ = ["PlainSession", "format_line", "run_plain"]

# After end of input: give up waiting for acknowledgements after this long
# without progress (a message acknowledged, or a connection made).
FINISH_GRACE_S = 5.0
# After quit(): how long the quit frame may take to leave.
DRAIN_TIMEOUT_S = 2.0


def run_plain(client: Client, loop: EventLoop, *, out: TextIO, stdin_fd: int = 0) -> int:
    """Run the scripted client, writing to ``out``, until input ends; 0, or ConnectFailed."""
    return PlainSession(client, loop, out=out, stdin_fd=stdin_fd).run()


def format_line(line: DisplayLine) -> str:
    """``line`` as one line of plain text: time, ``[room]`` if it has one, what it says."""
    # No current room: a script reading the output sees every line's room.
    return "".join(span.text for span in line.framed(None))


class PlainSession:
    """The scripted client: current room, input backlog and the finish sequence."""

    def __init__(self, client: Client, loop: EventLoop, *, out: TextIO, stdin_fd: int = 0,
                 grace_s: float = FINISH_GRACE_S) -> None:
        self.client = client
        self.loop = loop
        self.out = out
        # No offline notes: a script's input is usually all there before the
        # connection is up.
        self.controller = ChatController(client, client.name, rooms=client.rooms,
                                         on_quit=self._quit, note_offline=False)
        self.failure: Failed | None = None
        self.closed = False
        # Lines typed before we know which room they are for (no --room given
        # and the server has not told us its default room yet).
        self._backlog: deque[str] = deque()
        self._room_known = self.controller.current_room is not None
        self._connected_once = False
        self._quit_requested = False  # /quit seen: the rest of the input is dropped
        self._finishing = False  # end of input or /quit: quit once all is acknowledged
        self._quit_reason: str | None = None
        self._last_pending = 0
        self._sync_token: str | None = None  # the barrier asked for while finishing
        self._synced = False
        self._grace_s = grace_s
        self._grace_timer: TimerHandle | None = None  # armed while finishing and connected
        self._stdin = ByteReader(loop, stdin_fd, self._on_bytes, self._on_eof)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""  # the start of a line whose newline has not come yet

    @property
    def current_room(self) -> str | None:
        """The room plain lines are said to (None: no room)."""
        return self.controller.current_room

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
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            self.client.on_event = previous
            if self.client.state is not ClientState.CLOSED:
                self.client.close()
        if self.failure is not None:
            raise ConnectFailed(self.failure.reason)
        return 0

    # -- output ----------------------------------------------------------------

    def show(self, lines: list[DisplayLine]) -> None:
        """Write lines, flushing each so a reader sees it at once."""
        try:
            for line in lines:
                self.out.write(format_line(line) + "\n")
                self.out.flush()
        except (BrokenPipeError, ValueError):
            # Whoever read our output is gone (``| head -3``): nothing left to do.
            # Point the descriptor at devnull so the interpreter's final flush is quiet.
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.out.fileno())
                os.close(devnull)
            self.client.close()

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, Failed):
            self.failure = event
            self.closed = True
            return
        if isinstance(event, Closed):
            self.closed = True
            return
        self.show(self.controller.handle(event))
        if self.client.state is ClientState.CLOSED:
            return  # our reader went away while showing it: nothing more to do
        if isinstance(event, Connected | Reconnecting):
            self._connected_once = True
            self._sync_token, self._synced = None, False  # a new connection: a new barrier
            self._progress()
        elif isinstance(event, Synced) and event.token == self._sync_token:
            self._synced = True
            self._progress()
        elif isinstance(event, PendingChanged):
            if event.pending < self._last_pending:
                self._progress()
            self._last_pending = event.pending
        if not self._room_known and self.controller.current_room is not None:
            self._room_known = True
            self._drain_backlog()
        self._check_finish()

    # -- input -----------------------------------------------------------------

    def _on_bytes(self, data: bytes) -> None:
        text = self._partial + self._decoder.decode(data)
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._on_line(line.removesuffix("\r"))

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
        # A last line without a newline is a line too.
        last, self._partial = self._partial + self._decoder.decode(b"", final=True), ""
        if last:
            self._on_line(last.removesuffix("\r"))
        self._begin_finish()

    def _execute(self, line: str) -> None:
        if self.client.state is not ClientState.CLOSED:
            self.show(self.controller.submit(line))

    def _quit(self, reason: str | None) -> None:
        # Like end of input: what was typed before /quit still goes out first.
        self._quit_reason = reason
        self._quit_requested = True
        self._stdin.stop()
        self._begin_finish()

    # -- finishing -------------------------------------------------------------

    def _begin_finish(self) -> None:
        if not self._finishing:
            self._finishing = True
            self._progress()
            self._check_finish()

    def _check_finish(self) -> None:
        """Quit once everything typed is handled and acknowledged (called on every event)."""
        # Before the first welcome there is nothing to wait for: a start-up
        # failure ends the session through Failed.
        if not self._finishing or self._backlog or self.client.state is not ClientState.ONLINE:
            return
        if self._sync_token is None:
            self._sync_token = self.client.sync()  # after the last line typed
        elif self._synced and self.client.pending() == 0:
            self.client.quit(self._quit_reason)

    def _progress(self) -> None:
        """Something moved: the grace period without progress starts again."""
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        if self._finishing and self._connected_once:
            self._grace_timer = self.loop.call_later(self._grace_s, self._give_up)

    def _give_up(self) -> None:
        self._grace_timer = None
        if self.client.state is ClientState.CLOSED:
            return
        pending = self.client.pending()
        noun = "message" if pending == 1 else "messages"
        self.show([self.controller.local_error(f"giving up on {pending} unacknowledged {noun}")])
        self.client.quit(self._quit_reason)

