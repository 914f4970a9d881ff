"""The thin I/O edge of the interactive client: tty modes, size, and screen writes.

Everything stateful about editing lives in the sans-IO ``chattycat.ui.term.lineedit``;
this module only switches the terminal mode, asks for its size and writes the
bytes that :class:`~chattycat.ui.term.lineedit.LineEditor` says to write.

POSIX only. On Windows the module imports (so the package does), but
:class:`RawTerminal` does nothing: a console-mode implementation via
``msvcrt``/``SetConsoleMode`` is out of scope for now.
"""

from __future__ import annotations

import atexit
import os
import select
import sys
from types import TracebackType
from typing import Any

from chattycat.ui.term.lineedit import LineEditor

__all__ = ["RawTerminal", "ScreenWriter", "terminal_size", "write_all"]

if sys.platform != "win32":
    import termios

    def _enter_raw_mode(fd: int) -> list[Any]:
        """Switch ``fd`` to the editor's input mode; return the mode to restore."""
        saved = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[0] &= ~(termios.IXON | termios.ICRNL)  # Ctrl-S/Ctrl-Q and Enter arrive as typed
        # IEXTEN off too, or Ctrl-V/Ctrl-O are eaten by the tty driver (lnext/discard).
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        # TCSADRAIN, not TCSAFLUSH: keep what the user typed ahead.
        termios.tcsetattr(fd, termios.TCSADRAIN, mode)
        return saved


DEFAULT_SIZE = (80, 24)

# xterm "bracketed paste" (DEC private mode 2004): pasted text arrives wrapped
# in ESC [200~ ... ESC [201~ so the editor can tell it from typing.
_PASTE_ON = b"\x1b[?2004h"
_PASTE_OFF = b"\x1b[?2004l"


class RawTerminal:
    """Context manager: the tty at ``fd`` in no-echo, non-canonical, no-signal mode.

    ISIG is off so Ctrl-C reaches the line editor as byte 0x03 instead of
    killing the client mid-write; OPOST stays on so "\\n" still returns the
    carriage. The original mode is restored on exit, after an exception, and
    (as a safety net if ``__exit__`` never runs) at interpreter exit. A fatal
    signal such as SIGKILL cannot be covered; ``stty sane`` fixes that.

    If ``fd`` is not a tty (piped input, tests), entering does nothing.
    """

    def __init__(self, fd: int, *, bracketed_paste: bool = True) -> None:
        self.fd = fd
        self.bracketed_paste = bracketed_paste
        self._saved: list[Any] | None = None

    def __enter__(self) -> RawTerminal:
        if self._saved is not None:
            raise RuntimeError("RawTerminal is already active")
        if sys.platform != "win32" and os.isatty(self.fd):
            self._saved = _enter_raw_mode(self.fd)
            atexit.register(self.restore)
            if self.bracketed_paste:
                write_all(self.fd, _PASTE_ON)
        return self

    def restore(self) -> None:
        """Put the terminal back as it was; idempotent."""
        saved, self._saved = self._saved, None
        if sys.platform != "win32" and saved is not None:
            atexit.unregister(self.restore)
            try:
                if self.bracketed_paste:
                    write_all(self.fd, _PASTE_OFF)
            finally:
                # TCSADRAIN: let our last output reach the screen in the old mode.
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()


def terminal_size(fd: int) -> tuple[int, int]:
    """``(columns, rows)`` of the terminal at ``fd``; 80x24 if unknown."""
    try:
        size = os.get_terminal_size(fd)
    except (OSError, ValueError):
        return DEFAULT_SIZE
    # A freshly created pty (and some serial consoles) reports 0x0.
    if size.columns <= 0 or size.lines <= 0:
        return DEFAULT_SIZE
    return size.columns, size.lines


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, looping over partial writes.

    This blocks. That is acceptable at this edge: it writes a few hundred
    bytes to the user's own terminal, which drains at once unless the user
    has paused it (Ctrl-S without IXON off, or a stopped pager), and then
    waiting is what the user asked for. If the event loop made ``fd``
    non-blocking we wait for writability rather than drop output.
    """
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[written:]


class ScreenWriter:
    """Prints lines above the input row while the user types, then redraws the input.

    ``columns`` and ``prompt`` are plain attributes: update ``columns`` from
    :func:`terminal_size` on SIGWINCH, then call :meth:`redraw`.
    """

    def __init__(
        self,
        fd: int,
        editor: LineEditor,
        *,
        prompt: str = "> ",
        columns: int = DEFAULT_SIZE[0],
    ) -> None:
        self.fd = fd
        self.editor = editor
        self.prompt = prompt
        self.columns = columns

    def input_row(self) -> bytes:
        """Bytes that repaint the input row with the cursor in place."""
        return self.editor.render(self.prompt, self.columns).to_bytes()

    def redraw(self) -> None:
        """Repaint the input row (after a keystroke or a resize)."""
        write_all(self.fd, self.input_row())

    def print_above(self, text: str) -> None:
        """Show ``text`` (already rendered, e.g. ANSI from rich) above the input row.

        ``text`` is written as is: untrusted parts must have gone through
        :func:`chattycat.ui.sanitize.sanitize` before they were styled.
        """
        out = []
        for line in text.splitlines() or [""]:
            # Clear each row before writing: the first is the input row, and
            # rows below the cursor may hold stale output when the screen is
            # not full. Clearing *after* the text would be wrong: a line that
            # fills the width leaves the cursor in the deferred-wrap state,
            # where "ESC [ K" erases its last character.
            out.append(f"\r\x1b[K{line}\r\n")
        # "\r\n" rather than "\n" so this works whether or not OPOST/ONLCR is on.
        write_all(self.fd, "".join(out).encode("utf-8") + self.input_row())
