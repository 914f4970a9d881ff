"""Console plumbing for the terminal front ends: input bytes in, log records out.

- :class:`ByteReader` hands the bytes read from stdin to the event loop:
  through a reader on the fd where the selector can watch it, through one
  helper thread where it cannot (Windows; a regular file or /dev/null under
  epoll). The interactive client gets keystrokes from it, the scripted
  client lines it splits itself.
- :class:`ScreenLogHandler` shows log records above the input row, where
  a line written straight to stderr would land in the middle of it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

from chattycat.net.loop import EventLoop

__all__ = ["STDIN_READ_BYTES", "ByteReader", "ScreenLogHandler"]

STDIN_READ_BYTES = 65536

# Windows console keys arrive from msvcrt.getwch() as a prefix ("\x00" or
# "\xe0") and a code; translate the editing keys into the VT sequences the
# line editor understands.
_WINDOWS_KEYS = {
    "H": "\x1b[A", "P": "\x1b[B", "M": "\x1b[C", "K": "\x1b[D",
    "G": "\x1b[H", "O": "\x1b[F", "S": "\x1b[3~",
}  # fmt: skip


class ByteReader:
    """Delivers the bytes read from ``fd`` to ``on_data`` on the loop, then ``on_eof`` once.

    With ``console_keys`` on Windows, keys are read from the console with
    ``msvcrt`` (a console handle is not a stream ``os.read`` can use).
    Nothing is delivered after :meth:`stop`.
    """

    def __init__(
        self,
        loop: EventLoop,
        fd: int,
        on_data: Callable[[bytes], None],
        on_eof: Callable[[], None],
        *,
        console_keys: bool = False,
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._on_data = on_data
        self._on_eof = on_eof
        self._console_keys = console_keys
        self._watching = False
        self._done = False

    def start(self) -> None:
        """Start reading."""
        if sys.platform == "win32" and self._console_keys:
            _start_windows_reader(self._loop, self._deliver)
            return
        if sys.platform != "win32":
            try:
                self._loop.add_reader(self._fd, self._readable)
                self._watching = True
                return
            except (OSError, ValueError):
                pass  # e.g. EPERM: epoll cannot watch regular files
        threading.Thread(target=self._read_in_thread, name="chattycat-stdin", daemon=True).start()

    def stop(self) -> None:
        """Stop reading (a reader thread is a daemon and dies with the process)."""
        self._done = True
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._fd)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, STDIN_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # EIO: the terminal went away
        self._deliver(data)

    def _read_in_thread(self) -> None:
        while True:
            try:
                data = os.read(self._fd, STDIN_READ_BYTES)
            except OSError:
                data = b""
            # The loop owns all state; the thread only hands bytes over.
            self._loop.call_soon_threadsafe(self._deliver, data)
            if not data:
                return

    def _deliver(self, data: bytes) -> None:
        if self._done:
            return
        if not data:
            self.stop()
            self._on_eof()
            return
        self._on_data(data)


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
