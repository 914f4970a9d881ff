"""A sans-IO line editor for the interactive chat client.

Keystroke bytes go in through :meth:`LineEditor.feed`; the editor updates its
buffer and cursor and returns events (:class:`Submit`, :class:`Interrupt`, ...).
:meth:`LineEditor.render` says what the single input row should look like.
Nothing here touches a terminal, a file descriptor or a clock: the client's
I/O edge (``chattycat.terminal``) reads the bytes and writes the redraw.

Decoding happens in two layers, both incremental so that any split of the
input across ``feed()`` calls gives the same result as one call:

1. bytes -> str through an incremental UTF-8 decoder (invalid bytes -> U+FFFD);
2. str -> keys through a small escape-sequence parser (:class:`_Parse`).

Keys are then dispatched through tables (``_CONTROL_KEYS``, ``_CSI_KEYS``, ...)
to one method per editing command.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto

__all__ = [
    "Completions",
    "EndOfInput",
    "Event",
    "Interrupt",
    "LineEditor",
    "Redraw",
    "RenderedLine",
    "Submit",
    "char_width",
    "display_width",
]

# A paste of a whole file must not grow the buffer without bound; a chat line
# longer than this is rejected by the server anyway.
MAX_BUFFER_CHARS = 8192
# Longest CSI parameter string we keep; longer ones cannot be a key we know and
# are consumed without being stored, so a hostile stream cannot grow memory.
MAX_CSI_PARAM_CHARS = 16

# Bidi embedding/override/isolate controls: inside the input row they reorder
# what the terminal shows, which breaks the column math below.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Submit:
    """Enter was pressed: ``line`` is the submitted text (possibly empty)."""

    line: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Ctrl-C was pressed (the terminal delivers it as a byte, not a signal)."""


@dataclass(frozen=True, slots=True)
class EndOfInput:
    """Ctrl-D on an empty line."""


@dataclass(frozen=True, slots=True)
class Redraw:
    """Ctrl-L: the user asks for the screen to be repainted."""


@dataclass(frozen=True, slots=True)
class Completions:
    """Tab found several candidates; the UI may list them."""

    candidates: tuple[str, ...]


Event = Submit | Interrupt | EndOfInput | Redraw | Completions


@dataclass(frozen=True, slots=True)
class RenderedLine:
    """What the input row shows: a slice of ``prompt + buffer`` and the cursor column."""

    visible: str
    cursor_column: int
    # Index into ``prompt + buffer`` where ``visible`` starts (horizontal scroll).
    start: int

    @property
    def sequence(self) -> str:
        """Terminal control string that repaints the row and places the cursor."""
        # "CSI 0 C" moves one column on most terminals (0 means default=1), so
        # column 0 must be reached with the carriage return alone.
        move = f"\x1b[{self.cursor_column}C" if self.cursor_column else ""
        return f"\r{self.visible}\x1b[K\r{move}"

    def to_bytes(self) -> bytes:
        """:attr:`sequence` encoded for writing to the terminal."""
        return self.sequence.encode("utf-8")


def char_width(ch: str) -> int:
    """Terminal columns taken by one code point (0, 1 or 2)."""
    category = unicodedata.category(ch)
    # U+00AD SOFT HYPHEN is format (Cf) but terminals draw it as a hyphen.
    if (
        unicodedata.combining(ch)
        or category in ("Mn", "Me", "Cc")
        or (category == "Cf" and ch != "\u00ad")
    ):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(s: str) -> int:
    """Terminal columns taken by ``s`` (wide chars 2, combining marks 0)."""
    return sum(char_width(ch) for ch in s)


def _is_insertable(ch: str) -> bool:
    # Cc covers C0, DEL and C1: none of them may reach the buffer (they would be
    # sent to other users' terminals) nor the input row.
    return unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS


def _printable(text: str) -> str:
    return "".join(ch for ch in text if _is_insertable(ch))


class _Parse(Enum):
    GROUND = auto()
    ESCAPE = auto()  # after ESC
    CSI = auto()  # after ESC [
    SS3 = auto()  # after ESC O


class LineEditor:
    """Keystroke bytes in, buffer/cursor state and events out."""

    def __init__(
        self,
        *,
        history_size: int = 500,
        complete: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        self._buffer = ""
        self._cursor = 0
        self._complete = complete
        self._history: deque[str] = deque(maxlen=max(history_size, 0))
        # While browsing history: a scratch copy of the history plus the
        # in-progress line as the last entry, so edits survive Up/Down like in
        # readline. None when not browsing.
        self._browse: list[str] | None = None
        self._browse_index = 0
        self._killed = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parse = _Parse.GROUND
        self._csi_params = ""
        # CRLF is one Enter: remember that the previous char was a CR.
        self._after_cr = False
        self._pasting = False
        self._pending_text: list[str] = []
        self._events: list[Event] = []

    # -- state ------------------------------------------------------------

    @property
    def buffer(self) -> str:
        """The line being edited."""
        return self._buffer

    @property
    def cursor(self) -> int:
        """Cursor position as an index into :attr:`buffer` (0..len)."""
        return self._cursor

    @property
    def history(self) -> tuple[str, ...]:
        """Submitted lines, oldest first."""
        return tuple(self._history)

    def set_buffer(self, text: str, cursor: int | None = None) -> None:
        """Replace the line (control chars dropped); cursor defaults to the end."""
        self._buffer = _printable(text)[:MAX_BUFFER_CHARS]
        end = len(self._buffer)
        self._cursor = end if cursor is None else min(max(cursor, 0), end)

    def clear(self) -> None:
        """Empty the line and leave history browsing."""
        self.set_buffer("")
        self._browse = None

    def add_history(self, line: str) -> None:
        """Append a line to the history (e.g. loaded from disk); blanks/repeats skipped."""
        line = _printable(line)
        if line.strip() and (not self._history or self._history[-1] != line):
            self._history.append(line)

    # -- input ------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Process keystroke bytes; return the events they produced, in order."""
        for ch in self._decoder.decode(data):
            self._feed_char(ch)
        self._flush_text()
        events, self._events = self._events, []
        return events

    def _feed_char(self, ch: str) -> None:
        after_cr, self._after_cr = self._after_cr, False
        if self._parse is _Parse.GROUND:
            self._ground(ch, after_cr)
        elif self._parse is _Parse.ESCAPE:
            self._escape(ch)
        elif self._parse is _Parse.CSI:
            self._csi(ch)
        else:
            self._ss3(ch)

    def _ground(self, ch: str, after_cr: bool) -> None:
        if ch == "\x1b":
            self._parse = _Parse.ESCAPE
        elif ch == "\n" and after_cr:
            pass  # second half of CRLF
        elif self._pasting and ch in "\r\n\t":
            # A pasted newline must not send the half-pasted line.
            self._after_cr = ch == "\r"
            self._pending_text.append(" ")
        elif ch in _CONTROL_KEYS:
            self._after_cr = ch == "\r"
            self._key(_CONTROL_KEYS[ch])
        elif _is_insertable(ch):
            self._pending_text.append(ch)

    def _escape(self, ch: str) -> None:
        if ch == "[":
            self._parse, self._csi_params = _Parse.CSI, ""
        elif ch == "O":
            self._parse = _Parse.SS3
        elif ch == "\x1b":
            pass  # a lone Escape key press followed by a sequence: drop the first
        else:
            self._parse = _Parse.GROUND
            if ch in _META_KEYS:
                self._key(_META_KEYS[ch])
            elif unicodedata.category(ch) == "Cc":
                # Escape, then e.g. Enter: the Escape means nothing, the
                # Enter must still work. Alt+printable chords are dropped.
                self._ground(ch, after_cr=False)

    def _csi(self, ch: str) -> None:
        # ECMA-48: parameter and intermediate bytes are 0x20-0x3F, the final
        # byte 0x40-0x7E. Anything else means the sequence was cut short
        # (e.g. a terminal that sends a bare ESC [); abandon it and treat the
        # char as ordinary input rather than swallowing a real keystroke.
        if "\x20" <= ch <= "\x3f":
            if len(self._csi_params) < MAX_CSI_PARAM_CHARS:
                self._csi_params += ch
            else:
                self._csi_params = "\x00"  # poison: matches no known key
        elif "\x40" <= ch <= "\x7e":
            self._parse = _Parse.GROUND
            command = _CSI_KEYS.get(self._csi_params + ch)
            if command is not None:
                self._key(command)
        else:
            self._parse = _Parse.GROUND
            self._ground(ch, after_cr=False)

    def _ss3(self, ch: str) -> None:
        self._parse = _Parse.GROUND
        if "\x40" <= ch <= "\x7e":
            command = _SS3_KEYS.get(ch)
            if command is not None:
                self._key(command)
        else:
            self._ground(ch, after_cr=False)

    def _flush_text(self) -> None:
        # Printable runs are inserted in one go: a large paste is then one
        # string operation, not one per character.
        if self._pending_text:
            text, self._pending_text = "".join(self._pending_text), []
            self._insert(text)

    def _key(self, command: _Command) -> None:
        self._flush_text()
        # During a bracketed paste only the end marker counts: a pasted text
        # must never submit or edit the line.
        if not self._pasting or command is LineEditor._paste_end:
            command(self)

    # -- editing commands ---------------------------------------------------

    def _insert(self, text: str) -> None:
        text = text[: MAX_BUFFER_CHARS - len(self._buffer)]
        b, c = self._buffer, self._cursor
        self._buffer = b[:c] + text + b[c:]
        self._cursor = c + len(text)

    def _delete(self, start: int, end: int) -> str:
        removed = self._buffer[start:end]
        self._buffer = self._buffer[:start] + self._buffer[end:]
        self._cursor = start
        return removed

    def _cluster_start(self, i: int) -> int:
        # Step back over zero-width chars so a base char and its combining
        # marks move and delete as one visible character.
        while i > 0 and char_width(self._buffer[i - 1]) == 0:
            i -= 1
        return max(i - 1, 0)

    def _cluster_end(self, i: int) -> int:
        n = len(self._buffer)
        i = min(i + 1, n)
        while i < n and char_width(self._buffer[i]) == 0:
            i += 1
        return i

    def _word_start(self, i: int, *, skip_spaces: bool = True) -> int:
        b = self._buffer
        while skip_spaces and i > 0 and b[i - 1].isspace():
            i -= 1
        while i > 0 and not b[i - 1].isspace():
            i -= 1
        return i

    def _word_end(self, i: int) -> int:
        b, n = self._buffer, len(self._buffer)
        while i < n and b[i].isspace():
            i += 1
        while i < n and not b[i].isspace():
            i += 1
        return i

    def _left(self) -> None:
        self._cursor = self._cluster_start(self._cursor)

    def _right(self) -> None:
        self._cursor = self._cluster_end(self._cursor)

    def _word_left(self) -> None:
        self._cursor = self._word_start(self._cursor)

    def _word_right(self) -> None:
        self._cursor = self._word_end(self._cursor)

    def _home(self) -> None:
        self._cursor = 0

    def _end(self) -> None:
        self._cursor = len(self._buffer)

    def _backspace(self) -> None:
        if self._cursor > 0:
            self._delete(self._cluster_start(self._cursor), self._cursor)

    def _delete_forward(self) -> None:
        self._delete(self._cursor, self._cluster_end(self._cursor))

    def _kill_to_start(self) -> None:
        if self._cursor > 0:
            self._killed = self._delete(0, self._cursor)

    def _kill_to_end(self) -> None:
        if self._cursor < len(self._buffer):
            self._killed = self._delete(self._cursor, len(self._buffer))

    def _kill_word(self) -> None:
        if self._cursor > 0:
            self._killed = self._delete(self._word_start(self._cursor), self._cursor)

    def _yank(self) -> None:
        self._insert(self._killed)

    def _eof_or_delete(self) -> None:
        if self._buffer:
            self._delete_forward()
        else:
            self._events.append(EndOfInput())

    def _interrupt(self) -> None:
        # The buffer is left alone: whether Ctrl-C quits or clears the line is
        # the client's policy (it can call clear()).
        self._events.append(Interrupt())

    def _redraw(self) -> None:
        self._events.append(Redraw())

    def _paste_start(self) -> None:
        self._pasting = True

    def _paste_end(self) -> None:
        self._pasting = False

    def _enter(self) -> None:
        line = self._buffer
        self.add_history(line)
        self.clear()
        self._events.append(Submit(line))

    # -- history ------------------------------------------------------------

    def _history_move(self, step: int) -> None:
        if self._browse is None:
            if not self._history:
                return
            self._browse = [*self._history, self._buffer]
            self._browse_index = len(self._browse) - 1
        target = self._browse_index + step
        if not 0 <= target < len(self._browse):
            return
        self._browse[self._browse_index] = self._buffer
        self._browse_index = target
        self.set_buffer(self._browse[target])

    def _up(self) -> None:
        self._history_move(-1)

    def _down(self) -> None:
        self._history_move(+1)

    # -- completion ---------------------------------------------------------

    def _tab(self) -> None:
        if self._complete is None:
            return
        start = self._word_start(self._cursor, skip_spaces=False)
        prefix = self._buffer[start : self._cursor]
        # Candidates are member names from the network: drop control chars
        # before they can reach the buffer (and from there other terminals).
        candidates = tuple(dict.fromkeys(filter(None, map(_printable, self._complete(prefix)))))
        if not candidates:
            return
        if len(candidates) == 1:
            suffix = ": " if start == 0 else " "
            self._replace_word(start, candidates[0] + suffix)
            return
        common = _common_prefix(candidates)
        # Never shorten what was typed (a fuzzy completer may return names
        # that share less than the prefix).
        if len(common) >= len(prefix):
            self._replace_word(start, common)
        self._events.append(Completions(candidates))

    def _replace_word(self, start: int, text: str) -> None:
        self._delete(start, self._cursor)
        self._insert(text)

    # -- rendering ----------------------------------------------------------

    def render(self, prompt: str, width: int) -> RenderedLine:
        """Lay out ``prompt + buffer`` in one row of ``width`` columns, cursor visible.

        The prompt is plain text (control chars are dropped). The last column
        is never written: with xterm's deferred wrap, writing it and then
        "ESC [ K" would erase that very character. When the line is too wide
        it scrolls so the cursor stays on screen; the prompt scrolls away too.
        """
        prompt = _printable(prompt)
        full = prompt + self._buffer
        widths = [char_width(ch) for ch in full]
        avail = max(width - 1, 0)
        cursor_at = len(prompt) + self._cursor
        # Columns that must be visible: up to and including the char under
        # the cursor (a wide char there must be whole), or the empty cell at
        # the end of the line.
        need_end = cursor_at + 1 if cursor_at < len(full) else cursor_at
        start, used = 0, sum(widths[:need_end])
        while used > avail and start < cursor_at:
            used -= widths[start]
            start += 1
        # Skip zero-width chars at the left edge: a combining mark with its
        # base scrolled away would draw on nothing.
        while 0 < start < cursor_at and widths[start] == 0:
            start += 1
        end = start
        used = 0
        while end < len(full) and used + widths[end] <= avail:
            used += widths[end]
            end += 1
        end = max(end, start)
        column = sum(widths[start:cursor_at])
        return RenderedLine(visible=full[start:end], cursor_column=column, start=start)


def _common_prefix(words: Sequence[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


_Command = Callable[[LineEditor], None]
_E = LineEditor

# Tables from what the terminal sends to the editing command it means.
_CONTROL_KEYS: dict[str, _Command] = {
    "\x01": _E._home, "\x05": _E._end,  # Ctrl-A, Ctrl-E
    "\x02": _E._left, "\x06": _E._right,  # Ctrl-B, Ctrl-F
    "\x10": _E._up, "\x0e": _E._down,  # Ctrl-P, Ctrl-N
    "\x7f": _E._backspace, "\x08": _E._backspace,  # Ctrl-H: Backspace on some terminals
    "\x04": _E._eof_or_delete,  # Ctrl-D
    "\x15": _E._kill_to_start, "\x0b": _E._kill_to_end,  # Ctrl-U, Ctrl-K
    "\x17": _E._kill_word, "\x19": _E._yank,  # Ctrl-W, Ctrl-Y
    "\r": _E._enter, "\n": _E._enter, "\t": _E._tab,
    "\x03": _E._interrupt, "\x0c": _E._redraw,  # Ctrl-C, Ctrl-L
}  # fmt: skip

# "ESC [ params final". xterm sends the letter forms, VT220-style terminals and
# tmux/screen the "n~" forms; "1;5C" and "1;3C" are Ctrl- and Alt-arrows.
_CSI_KEYS: dict[str, _Command] = {
    "A": _E._up, "B": _E._down, "C": _E._right, "D": _E._left,
    "H": _E._home, "1~": _E._home, "7~": _E._home,
    "F": _E._end, "4~": _E._end, "8~": _E._end,
    "3~": _E._delete_forward,
    "1;5C": _E._word_right, "1;3C": _E._word_right,
    "1;5D": _E._word_left, "1;3D": _E._word_left,
    "200~": _E._paste_start, "201~": _E._paste_end,
}  # fmt: skip

# "ESC O x": arrows and Home/End in application cursor-keys mode.
_SS3_KEYS: dict[str, _Command] = {
    "A": _E._up, "B": _E._down, "C": _E._right, "D": _E._left, "H": _E._home, "F": _E._end,
}  # fmt: skip

# "ESC x": Meta/Alt chords from terminals with meta-sends-escape.
_META_KEYS: dict[str, _Command] = {
    "b": _E._word_left, "f": _E._word_right, "\x7f": _E._kill_word, "\x08": _E._kill_word,
}  # fmt: skip
