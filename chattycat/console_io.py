"""The interactive client's console plumbing: keystrokes in, log records out.

- :class:`KeyboardReader` hands keystroke bytes from the terminal to the
  event loop: through a reader on the stdin fd on POSIX, through one helper
  thread on Windows, whose console cannot be ``select()``-ed.
- :class:`ScreenLogHandler` shows log records above the input row, where
  a line written straight to stderr would land in the middle of it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

from chattycat.loop import EventLoop

__all__ = ["STDIN_READ_BYTES", "KeyboardReader", "ScreenLogHandler"]

STDIN_READ_BYTES = 4096

# Windows console keys arrive from msvcrt.getwch() as a prefix ("\x00" or
# "\xe0") and a code; translate the editing keys into the VT sequences the
# line editor understands.
_WINDOWS_KEYS = {
    "H": "\x1b[A", "P": "\x1b[B", "M": "\x1b[C", "K": "\x1b[D",
    "G": "\x1b[H", "O": "\x1b[F", "S": "\x1b[3~",
}  # fmt: skip


class KeyboardReader:
    """Delivers keystroke bytes to ``on_keys`` on the loop; ``on_eof`` when the terminal goes."""

    def __init__(
        self,
        loop: EventLoop,
        fd: int,
        on_keys: Callable[[bytes], None],
        on_eof: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._on_keys = on_keys
        self._on_eof = on_eof

    def start(self) -> None:
        """Start reading."""
        if sys.platform == "win32":
            _start_windows_reader(self._loop, self._on_keys)
        else:
            self._loop.add_reader(self._fd, self._readable)

    def stop(self) -> None:
        """Stop reading (the Windows thread is a daemon and dies with the process)."""
        if sys.platform != "win32":
            self._loop.remove_reader(self._fd)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, STDIN_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # EIO: the terminal went away
        if not data:
            self._loop.remove_reader(self._fd)
            self._on_eof()
            return
        self._on_keys(data)


def _start_windows_reader(loop: EventLoop, on_keys: Callable[[bytes], None]) -> None:
    """Windows cannot select() on the console: one thread reads keys and hands them over."""
    if sys.platform != "win32":
        raise RuntimeError("the console reader thread is for Windows only")
    import msvcrt

    def pump() -> None:
        while True:
            ch = msvcrt.getwch()
            if ch in ("\x00", "\xe0"):
                seq = _WINDOWS_KEYS.get(msvcrt.getwch())
                if seq is None:
                    continue
                ch = seq
            # The loop owns all state; the thread only hands bytes over.
            loop.call_soon_threadsafe(on_keys, ch.encode("utf-8"))

    threading.Thread(target=pump, name="chattycat-console", daemon=True).start()


class ScreenLogHandler(logging.Handler):
    """Shows log records (warnings and worse) through ``show_error``, not on raw stderr."""

    def __init__(self, show_error: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self._show_error = show_error
        self._saved: list[logging.Handler] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._show_error(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:
            # logging's own policy for a failing handler: report, never raise.
            self.handleError(record)

    def install(self) -> None:
        """Make this the root logger's only handler, until :meth:`uninstall`."""
        root = logging.getLogger()
        self._saved = root.handlers[:]
        root.handlers[:] = [self]

    def uninstall(self) -> None:
        """Give the root logger back the handlers :meth:`install` replaced."""
        logging.getLogger().handlers[:] = self._saved
