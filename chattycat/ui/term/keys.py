"""Sans-IO keyboard decoding: keystroke bytes in, editing keys and typed text out.

:class:`KeyDecoder` turns what a terminal sends into what the user pressed.
It works in two layers, both incremental so that any split of the input
across ``feed()`` calls gives the same result as one call:

1. bytes -> str through an incremental UTF-8 decoder (invalid bytes -> U+FFFD);
2. str -> keys through a small escape-sequence parser (:class:`_Parse`) and
   tables from control characters and sequences to :class:`Key` members.

Bracketed paste (xterm mode 2004) is resolved here too: everything between
the paste markers comes out as text, never as a key, so a pasted text can
neither submit nor edit the line. Nothing here touches a terminal or a clock.
"""

from __future__ import annotations

import codecs
import unicodedata
from enum import Enum, auto

__all__ = ["MAX_CSI_PARAM_CHARS", "Key", "KeyDecoder", "is_insertable"]

# Longest CSI parameter string we keep; longer ones cannot be a key we know and
# are consumed without being stored, so a hostile stream cannot grow memory.
MAX_CSI_PARAM_CHARS = 16

# Bidi embedding/override/isolate controls: inside the input row they reorder
# what the terminal shows, which breaks the editor's column math.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Key(Enum):
    """An editing key, named for what it does in a readline-style line editor."""

    LINE_START = auto()  # Home, Ctrl-A
    LINE_END = auto()  # End, Ctrl-E
    LEFT = auto()  # Left, Ctrl-B
    RIGHT = auto()  # Right, Ctrl-F
    WORD_LEFT = auto()  # Ctrl-Left, Alt-Left, Alt-B
    WORD_RIGHT = auto()  # Ctrl-Right, Alt-Right, Alt-F
    UP = auto()  # Up, Ctrl-P
    DOWN = auto()  # Down, Ctrl-N
    BACKSPACE = auto()  # Backspace (DEL or Ctrl-H)
    DELETE = auto()  # Delete
    EOF_OR_DELETE = auto()  # Ctrl-D
    KILL_TO_START = auto()  # Ctrl-U
    KILL_TO_END = auto()  # Ctrl-K
    KILL_WORD = auto()  # Ctrl-W, Alt-Backspace
    YANK = auto()  # Ctrl-Y
    ENTER = auto()  # Enter (CR, LF or CRLF)
    TAB = auto()
    INTERRUPT = auto()  # Ctrl-C (a byte in raw mode, not a signal)
    REDRAW = auto()  # Ctrl-L


def is_insertable(ch: str) -> bool:
    """Whether ``ch`` may be typed into a line (no control or bidi characters)."""
    # Cc covers C0, DEL and C1: none of them may reach the buffer (they would be
    # sent to other users' terminals) nor the input row.
    return unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS


class _Parse(Enum):
    GROUND = auto()
    ESCAPE = auto()  # after ESC
    CSI = auto()  # after ESC [
    SS3 = auto()  # after ESC O


class KeyDecoder:
    """Keystroke bytes in; keys and runs of insertable text out, in order."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parse = _Parse.GROUND
        self._csi_params = ""
        # CRLF is one Enter: remember that the previous char was a CR.
        self._after_cr = False
        self._pasting = False
        self._text: list[str] = []
        self._out: list[Key | str] = []

    def feed(self, data: bytes) -> list[Key | str]:
        """Decode keystroke bytes; the keys and text (as strings) they make, in order."""
        for ch in self._utf8.decode(data):
            self._feed_char(ch)
        self._flush_text()
        out, self._out = self._out, []
        return out

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
            self._text.append(" ")
        elif ch in _CONTROL_KEYS:
            self._after_cr = ch == "\r"
            self._key(_CONTROL_KEYS[ch])
        elif is_insertable(ch):
            self._text.append(ch)

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
            sequence = self._csi_params + ch
            if sequence in _PASTE_MARKERS:
                self._pasting = _PASTE_MARKERS[sequence]
            elif sequence in _CSI_KEYS:
                self._key(_CSI_KEYS[sequence])
        else:
            self._parse = _Parse.GROUND
            self._ground(ch, after_cr=False)

    def _ss3(self, ch: str) -> None:
        self._parse = _Parse.GROUND
        if "\x40" <= ch <= "\x7e":
            key = _SS3_KEYS.get(ch)
            if key is not None:
                self._key(key)
        else:
            self._ground(ch, after_cr=False)

    def _key(self, key: Key) -> None:
        # During a bracketed paste only the end marker counts: a pasted text
        # must never submit or edit the line.
        if not self._pasting:
            self._flush_text()
            self._out.append(key)

    def _flush_text(self) -> None:
        # Printable runs come out in one string: a large paste is then one
        # insertion for the editor, not one per character.
        if self._text:
            self._out.append("".join(self._text))
            self._text = []


# Tables from what the terminal sends to the key it means.
_CONTROL_KEYS: dict[str, Key] = {
    "\x01": Key.LINE_START, "\x05": Key.LINE_END,  # Ctrl-A, Ctrl-E
    "\x02": Key.LEFT, "\x06": Key.RIGHT,  # Ctrl-B, Ctrl-F
    "\x10": Key.UP, "\x0e": Key.DOWN,  # Ctrl-P, Ctrl-N
    "\x7f": Key.BACKSPACE, "\x08": Key.BACKSPACE,  # Ctrl-H: Backspace on some terminals
    "\x04": Key.EOF_OR_DELETE,  # Ctrl-D
    "\x15": Key.KILL_TO_START, "\x0b": Key.KILL_TO_END,  # Ctrl-U, Ctrl-K
    "\x17": Key.KILL_WORD, "\x19": Key.YANK,  # Ctrl-W, Ctrl-Y
    "\r": Key.ENTER, "\n": Key.ENTER, "\t": Key.TAB,
    "\x03": Key.INTERRUPT, "\x0c": Key.REDRAW,  # Ctrl-C, Ctrl-L
}  # fmt: skip

# "ESC [ params final". xterm sends the letter forms, VT220-style terminals and
# tmux/screen the "n~" forms; "1;5C" and "1;3C" are Ctrl- and Alt-arrows.
_CSI_KEYS: dict[str, Key] = {
    "A": Key.UP, "B": Key.DOWN, "C": Key.RIGHT, "D": Key.LEFT,
    "H": Key.LINE_START, "1~": Key.LINE_START, "7~": Key.LINE_START,
    "F": Key.LINE_END, "4~": Key.LINE_END, "8~": Key.LINE_END,
    "3~": Key.DELETE,
    "1;5C": Key.WORD_RIGHT, "1;3C": Key.WORD_RIGHT,
    "1;5D": Key.WORD_LEFT, "1;3D": Key.WORD_LEFT,
}  # fmt: skip

# Bracketed paste markers "ESC [ 200 ~" and "ESC [ 201 ~": whether a paste starts.
_PASTE_MARKERS: dict[str, bool] = {"200~": True, "201~": False}

# "ESC O x": arrows and Home/End in application cursor-keys mode.
_SS3_KEYS: dict[str, Key] = {
    "A": Key.UP, "B": Key.DOWN, "C": Key.RIGHT, "D": Key.LEFT,
    "H": Key.LINE_START, "F": Key.LINE_END,
}  # fmt: skip

# "ESC x": Meta/Alt chords from terminals with meta-sends-escape.
_META_KEYS: dict[str, Key] = {
    "b": Key.WORD_LEFT, "f": Key.WORD_RIGHT, "\x7f": Key.KILL_WORD, "\x08": Key.KILL_WORD,
}  # fmt: skip
