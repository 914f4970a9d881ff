"""A sans-IO line editor for the interactive chat client.

Keystroke bytes go in through :meth:`LineEditor.feed`; the editor updates its
buffer and cursor and returns events (:class:`Submit`, :class:`Interrupt`, ...).
:meth:`LineEditor.render` says what the single input row should look like.
Nothing here touches a terminal, a file descriptor or a clock: the client's
I/O edge (``chattycat.ui.term.tty``) reads the bytes and writes the redraw.

The bytes are decoded into keys and typed text by
:class:`~chattycat.ui.term.keys.KeyDecoder` (incrementally: any split of the input
across ``feed()`` calls gives the same result as one call). Each
:class:`~chattycat.ui.term.keys.Key` is then dispatched through one table
(``_COMMANDS``) to one method per editing command.

The editor works in grapheme clusters (:mod:`chattycat.ui.term.graphemes`),
what the user sees as one character: Left, Right, Backspace and Delete step
over a whole flag, accented letter or emoji ZWJ sequence, word moves stop
only between clusters, and the cursor column counts the columns each cluster
takes. The cursor is always on a cluster boundary.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chattycat.ui.term.graphemes import (
    boundaries,
    cluster_width,
    next_boundary,
    previous_boundary,
    snap_back,
    snap_forward,
)
from chattycat.ui.term.keys import Key, KeyDecoder, is_insertable

__all__ = [
    "Completions",
    "EndOfInput",
    "Event",
    "Interrupt",
    "LineEditor",
    "Redraw",
    "RenderedLine",
    "Submit",
]

# A paste of a whole file must not grow the buffer without bound; a chat line
# longer than this is rejected by the server anyway.
MAX_BUFFER_CHARS = 8192


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


def _printable(text: str) -> str:
    # Control and bidi chars never reach the buffer (they would be sent to
    # other users' terminals) nor the input row.
    return "".join(ch for ch in text if is_insertable(ch))


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
        # A password being typed: shown as one '*' per character, never kept
        # in the history.
        self.secret = False
        self._history: deque[str] = deque(maxlen=max(history_size, 0))
        # While browsing history: a scratch copy of the history plus the
        # in-progress line as the last entry, so edits survive Up/Down like in
        # readline. None when not browsing.
        self._browse: list[str] | None = None
        self._browse_index = 0
        self._killed = ""
        # Where typed text goes while typing goes on; None after any key.
        # Usually the cursor, but not after text that joined the cluster
        # after it: see _type().
        self._typing_at: int | None = None
        self._keys = KeyDecoder()
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
        if cursor is not None:
            end = snap_back(self._buffer, min(max(cursor, 0), end))
        self._cursor = end
        self._typing_at = None

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
        for key_or_text in self._keys.feed(data):
            if isinstance(key_or_text, str):
                self._type(key_or_text)
            else:
                self._typing_at = None
                _COMMANDS[key_or_text](self)
        events, self._events = self._events, []
        return events

    # -- editing commands ---------------------------------------------------

    def _insert(self, text: str, at: int | None = None) -> int:
        # Returns where the inserted text ends.
        at = self._cursor if at is None else at
        text = text[: MAX_BUFFER_CHARS - len(self._buffer)]
        b = self._buffer
        self._buffer = b[:at] + text + b[at:]
        # The text may join the cluster after it into one (a letter typed
        # before a stray accent, a regional indicator before a flag): the
        # cursor goes after that whole cluster, never inside it.
        self._cursor = snap_forward(self._buffer, at + len(text))
        return at + len(text)

    def _type(self, text: str) -> None:
        # Text typed in a row goes in one piece, after the previous piece
        # even when the cursor had to skip past a cluster it joined: the
        # line then does not depend on how the terminal split the typing
        # across reads.
        self._typing_at = self._insert(text, self._typing_at)

    def _delete(self, start: int, end: int) -> str:
        removed = self._buffer[start:end]
        self._buffer = self._buffer[:start] + self._buffer[end:]
        # What was on either side may now join (two regional indicators
        # into a flag, a ZWJ and the next emoji): stay on a boundary.
        self._cursor = snap_back(self._buffer, start)
        return removed

    def _cluster_start(self, i: int) -> int:
        return previous_boundary(self._buffer, i)

    def _cluster_end(self, i: int) -> int:
        return next_boundary(self._buffer, i)

    def _is_space_before(self, i: int) -> bool:
        # A cluster is a space if its base is: a space with a stray accent
        # on it still separates words.
        return self._buffer[self._cluster_start(i)].isspace()

    def _word_start(self, i: int, *, skip_spaces: bool = True) -> int:
        while skip_spaces and i > 0 and self._is_space_before(i):
            i = self._cluster_start(i)
        while i > 0 and not self._is_space_before(i):
            i = self._cluster_start(i)
        return i

    def _word_end(self, i: int) -> int:
        n = len(self._buffer)
        while i < n and self._buffer[i].isspace():
            i = self._cluster_end(i)
        while i < n and not self._buffer[i].isspace():
            i = self._cluster_end(i)
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

    def _enter(self) -> None:
        line = self._buffer
        if not self.secret:
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
        buffer = "*" * len(self._buffer) if self.secret else self._buffer
        full = prompt + buffer
        # Whole clusters: edges[k] is where cluster k starts in ``full``. The
        # prompt and the buffer are segmented apart so that the buffer's
        # start is a boundary the cursor can sit on; the client's prompt
        # ends in a space, after which the two measure the same either way.
        edges = [*boundaries(prompt), *(len(prompt) + b for b in boundaries(buffer)[1:])]
        widths = [cluster_width(full[a:b]) for a, b in itertools.pairwise(edges)]
        avail = max(width - 1, 0)
        cursor_at = bisect.bisect_right(edges, len(prompt) + self._cursor) - 1
        # Columns that must be visible: up to and including the cluster under
        # the cursor (a wide one there must be whole), or the empty cell at
        # the end of the line.
        need_end = cursor_at + 1 if cursor_at < len(widths) else cursor_at
        start, used = 0, sum(widths[:need_end])
        while used > avail and start < cursor_at:
            used -= widths[start]
            start += 1
        # Skip zero-width clusters at the left edge: an accent typed at the
        # start of the line would draw on whatever is left in column 0.
        while 0 < start < cursor_at and widths[start] == 0:
            start += 1
        end = start
        used = 0
        while end < len(widths) and used + widths[end] <= avail:
            used += widths[end]
            end += 1
        column = sum(widths[start:cursor_at])
        visible = full[edges[start] : edges[end]]
        return RenderedLine(visible=visible, cursor_column=column, start=edges[start])


def _common_prefix(words: Sequence[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


_Command = Callable[[LineEditor], None]
_E = LineEditor

# What each key does.
_COMMANDS: dict[Key, _Command] = {
    Key.LINE_START: _E._home, Key.LINE_END: _E._end,
    Key.LEFT: _E._left, Key.RIGHT: _E._right,
    Key.WORD_LEFT: _E._word_left, Key.WORD_RIGHT: _E._word_right,
    Key.UP: _E._up, Key.DOWN: _E._down,
    Key.BACKSPACE: _E._backspace, Key.DELETE: _E._delete_forward,
    Key.EOF_OR_DELETE: _E._eof_or_delete,
    Key.KILL_TO_START: _E._kill_to_start, Key.KILL_TO_END: _E._kill_to_end,
    Key.KILL_WORD: _E._kill_word, Key.YANK: _E._yank,
    Key.ENTER: _E._enter, Key.TAB: _E._tab,
    Key.INTERRUPT: _E._interrupt, Key.REDRAW: _E._redraw,
}  # fmt: skip
