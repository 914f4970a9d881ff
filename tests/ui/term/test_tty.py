"""Specification of the client's terminal edge: tty modes, size, screen writes, sanitize."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chattycat.ui.sanitize import MAX_MARKS_PER_BASE, sanitize
from chattycat.ui.term.lineedit import LineEditor
from chattycat.ui.term.tty import RawTerminal, ScreenWriter, terminal_size, write_all

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX tty")
if sys.platform != "win32":
    import fcntl
    import struct
    import termios

REPO_ROOT = Path(__file__).resolve().parents[3]
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control(ch: str) -> bool:
    return ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F


# -- sanitize -----------------------------------------------------------------------


@given(st.text())
def test_sanitize_output_has_no_controls_or_bidi_overrides(text: str) -> None:
    out = sanitize(text)
    assert not any(is_control(ch) or ch in BIDI for ch in out)


@given(st.text())
def test_sanitize_is_idempotent(text: str) -> None:
    assert sanitize(sanitize(text)) == sanitize(text)


# Letters, digits, punctuation, symbols and spaces: what sanitize must never
# touch. (Invisible characters, ZWJ/ZWNJ out of context and long runs of
# combining marks are changed on purpose, and tested on their own.)
HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"
ORDINARY = st.characters(whitelist_categories=("L", "N", "P", "S", "Zs"),
                         blacklist_characters=HANGUL_FILLERS)


@given(st.text(ORDINARY))
def test_sanitize_keeps_ordinary_text(text: str) -> None:
    assert sanitize(text) == text


@given(st.text(ORDINARY, min_size=1), st.integers(0, MAX_MARKS_PER_BASE))
def test_sanitize_keeps_a_few_combining_marks_and_drops_the_rest(text: str, marks: int) -> None:
    accented = text[0] + "\u0301" * marks
    assert sanitize(accented) == accented
    assert sanitize(text[0] + "\u0301" * 50) == text[0] + "\u0301" * MAX_MARKS_PER_BASE


def test_sanitize_makes_escapes_visible() -> None:
    assert sanitize("a\x1b[2Jb") == "a\u241b[2Jb"
    assert sanitize("line1\nline2\tx\r") == "line1\u21b5line2 x\u240d"
    assert sanitize("\x7f\x9b31m") == "\u2421\\x9b31m"
    assert sanitize("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert sanitize("héllo 日本 😀") == "héllo 日本 😀"


# -- RawTerminal ----------------------------------------------------------------------


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    os.set_blocking(master, False)
    yield master, slave
    os.close(master)
    os.close(slave)


def drain(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@posix_only
def test_raw_terminal_switches_mode_and_restores_it(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    with RawTerminal(slave):
        iflag, oflag, _, lflag, *_ = termios.tcgetattr(slave)
        assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG)
        assert not iflag & termios.IXON
        assert oflag & termios.OPOST
    assert termios.tcgetattr(slave) == before


@posix_only
def test_raw_terminal_restores_mode_after_an_exception(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    with pytest.raises(ZeroDivisionError), RawTerminal(slave):
        1 / 0  # noqa: B018
    assert termios.tcgetattr(slave) == before


@posix_only
def test_ctrl_c_arrives_as_a_byte(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    with RawTerminal(slave, bracketed_paste=False):
        os.write(master, b"a\x03\r")
        assert os.read(slave, 16) == b"a\x03\r"
        assert drain(master) == b""  # no echo


@posix_only
def test_bracketed_paste_is_enabled_then_disabled(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    with RawTerminal(slave):
        assert drain(master) == b"\x1b[?2004h"
    assert drain(master) == b"\x1b[?2004l"


@posix_only
def test_raw_terminal_cannot_be_entered_twice(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    raw = RawTerminal(slave, bracketed_paste=False)
    with raw, pytest.raises(RuntimeError):
        raw.__enter__()


def test_raw_terminal_on_a_pipe_does_nothing() -> None:
    read_end, write_end = os.pipe()
    try:
        with RawTerminal(read_end):
            pass
    finally:
        os.close(read_end)
        os.close(write_end)


CHILD = """
import os, sys
from chattycat.ui.term.tty import RawTerminal
RawTerminal(int(sys.argv[1]), bracketed_paste=False).__enter__()
if sys.argv[2] == "hard":
    os._exit(0)  # skips atexit: the mode must stay changed
"""


@posix_only
@pytest.mark.parametrize(("how", "restored"), [("normal", True), ("hard", False)])
def test_atexit_restores_mode_when_exit_is_skipped(
    pty_pair: tuple[int, int], how: str, restored: bool
) -> None:
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(
        [sys.executable, "-c", CHILD, str(slave), how], pass_fds=[slave], env=env, check=True
    )
    assert (termios.tcgetattr(slave) == before) is restored


# -- terminal_size ------------------------------------------------------------------------


@posix_only
def test_terminal_size_reads_the_window_size(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 120, 0, 0))
    assert terminal_size(slave) == (120, 33)


@posix_only
def test_terminal_size_falls_back_for_unset_pty(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    assert terminal_size(slave) == (80, 24)


def test_terminal_size_falls_back_for_non_tty() -> None:
    read_end, write_end = os.pipe()
    try:
        assert terminal_size(read_end) == (80, 24)
    finally:
        os.close(read_end)
        os.close(write_end)


# -- write_all and ScreenWriter --------------------------------------------------------------


def test_write_all_survives_partial_writes_on_nonblocking_fd() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    data = bytes(range(256)) * 4096  # 1 MiB, far beyond a pipe buffer
    received = bytearray()

    def reader() -> None:
        while chunk := os.read(read_end, 65536):
            received.extend(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    write_all(write_end, data)
    os.close(write_end)
    thread.join()
    os.close(read_end)
    assert received == data


class Capture:
    """A ScreenWriter on a pipe whose output is replayed on a pyte screen."""

    def __init__(self, columns: int = 40, rows: int = 6) -> None:
        self.read_end, self.write_end = os.pipe()
        self.editor = LineEditor()
        self.writer = ScreenWriter(self.write_end, self.editor, prompt="> ", columns=columns)
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)

    def sync(self) -> pyte.Screen:
        os.set_blocking(self.read_end, False)
        self.stream.feed(drain(self.read_end))
        return self.screen

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


@pytest.fixture
def capture() -> Iterator[Capture]:
    cap = Capture()
    yield cap
    cap.close()


def rows(screen: pyte.Screen) -> list[str]:
    return [line.rstrip() for line in screen.display]


def test_print_above_keeps_half_typed_input_intact(capture: Capture) -> None:
    capture.editor.feed(b"hello wrld" + b"\x1b[D" * 3 + b"o")
    capture.writer.redraw()
    capture.writer.print_above("alice: hi")
    capture.writer.print_above("\x1b[1mbob\x1b[0m: two\nlines")
    screen = capture.sync()
    assert rows(screen)[:5] == ["alice: hi", "bob: two", "lines", "> hello world", ""]
    assert (screen.cursor.y, screen.cursor.x) == (3, len("> hello wo"))
    assert screen.buffer[0][0].bold is False
    assert screen.buffer[1][0].bold is True


def test_print_above_clears_a_longer_input_row(capture: Capture) -> None:
    capture.editor.feed(b"a long draft that is longer than the output")
    capture.writer.redraw()
    capture.editor.feed(b"\x15x")
    capture.writer.print_above("short")
    screen = capture.sync()
    assert rows(screen)[:2] == ["short", "> x"]
    assert (screen.cursor.y, screen.cursor.x) == (1, 3)


def test_print_above_scrolls_when_screen_is_full(capture: Capture) -> None:
    capture.editor.feed("日本語".encode() + b"\x1b[D")
    for n in range(10):
        capture.writer.print_above(f"message {n}")
    screen = capture.sync()
    assert rows(screen) == [f"message {n}" for n in range(5, 10)] + ["> 日本語"]
    assert (screen.cursor.y, screen.cursor.x) == (5, 2 + 4)


def test_redraw_of_a_long_line_fits_the_row_with_cursor_visible(capture: Capture) -> None:
    capture.editor.feed(b"0123456789" * 6 + b"\x1b[D" * 5)
    capture.writer.redraw()
    screen = capture.sync()
    row = rows(screen)[0]
    assert len(row) <= 39
    assert row[screen.cursor.x] == "5"
    assert screen.cursor.y == 0
