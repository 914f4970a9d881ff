"""Untrusted network text made inert before any front end shows it.

What is done to which characters, and why:

- C0/C1 controls and DEL become visible pictures or escapes: they drive the
  terminal (ESC starts a sequence; 0x9b alone is a CSI on many terminals).
- Bidi controls become visible escapes: overrides, embeddings and isolates
  (CVE-2021-42574, "Trojan Source") and the marks RLM, LRM and ALM, which can
  reorder the punctuation and digits around them, so a line can claim to
  say what it does not.
- Invisible characters that have no business in a chat line become visible
  escapes: zero-width space, word joiner, BOM, invisible math operators,
  interlinear annotations, the Mongolian vowel separator, the deprecated
  format characters, Hangul fillers (which make a blank-looking name). They
  hide text and split words that filters or readers would otherwise see.
- ZERO WIDTH JOINER and NON-JOINER stay where they are legitimate and become
  visible elsewhere. ZWJ glues emoji into one picture (a family, a profession,
  a flag with a colour: U+1F468 U+200D U+1F469 ...), so it stays between a
  pictograph (or its modifier or variation selector) and another pictograph.
  Both are part of correct spelling in Persian and several Indic scripts
  (half forms, chillu letters), so they also stay between two non-ASCII
  letters or marks. Anywhere else, between ASCII
  letters for instance, they only serve to make two strings look alike.
- Tag characters (U+E0000-U+E007F) are invisible and can carry a whole hidden
  ASCII message; they stay only in the one legitimate use, a subdivision flag
  (U+1F3F4 followed by tags and CANCEL TAG), and become escapes elsewhere.
- LINE and PARAGRAPH SEPARATOR read as line breaks to some renderers: shown
  as the same arrow as a newline.
- Combining marks: at most :data:`MAX_MARKS_PER_BASE` on one base character.
  Real text needs a few (Vietnamese two, Hebrew pointing or Indic clusters
  three or four); "Zalgo" stacks of dozens draw over the lines above and
  below. The excess is dropped.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_MARKS_PER_BASE", "sanitize"]

#: Combining marks kept on one base character; more are dropped.
MAX_MARKS_PER_BASE = 6

_ZWNJ, _ZWJ = "\u200c", "\u200d"
_BLACK_FLAG = "\U0001f3f4"
_TAGS = range(0xE0000, 0xE0080)


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# C0 controls as the Unicode "control pictures" (U+2400 + code), DEL as U+2421.
_INERT: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20)}
_INERT[ord("\n")] = "\u21b5"  # ↵, reads as a line break
_INERT[ord("\t")] = " "
_INERT[0x7F] = "\u2421"
# C1 controls have no pictures; 0x9b alone is a CSI on many terminals.
_INERT.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
_INERT[0x2028] = _INERT[0x2029] = "\u21b5"
_INERT.update({code: _escape(code) for code in [
    *range(0x202A, 0x202F), *range(0x2066, 0x206A),  # bidi embeddings, overrides, isolates
    0x200E, 0x200F, 0x061C,  # LRM, RLM, ALM
    0x200B, 0x2060, 0xFEFF, 0x180E,  # zero-width space, word joiner, BOM, MVS
    *range(0x2061, 0x2065), *range(0x206A, 0x2070),  # invisible operators, deprecated
    *range(0xFFF9, 0xFFFC),  # interlinear annotation
    0x115F, 0x1160, 0x3164, 0xFFA0,  # Hangul fillers
]})
# Decided in context (see the module docstring), not by the table.
_IN_CONTEXT = frozenset({_ZWJ, _ZWNJ, *map(chr, _TAGS)})


def sanitize(text: str) -> str:
    """Make untrusted network text inert for a terminal: controls become visible."""
    text = text.translate(_INERT)
    if text.isascii():
        return text  # the common case: nothing below can apply
    return _limit_marks(_in_context(text)) if _needs_second_pass(text) else text


def _needs_second_pass(text: str) -> bool:
    return any(ch in _IN_CONTEXT or unicodedata.combining(ch) for ch in text)


def _is_pictograph(ch: str) -> bool:
    # "Symbol, other" covers the emoji a ZWJ sequence joins (and the gender
    # signs); U+FE0F and the skin-tone modifiers may stand between them.
    return unicodedata.category(ch) == "So" or ch == "\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff"


def _is_script_letter(ch: str) -> bool:
    return not ch.isascii() and unicodedata.category(ch)[0] in "LM"


def _in_context(text: str) -> str:
    out: list[str] = []
    in_flag = False  # inside U+1F3F4 + tag characters
    for i, ch in enumerate(text):
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        if ord(ch) in _TAGS:
            in_flag = in_flag or before == _BLACK_FLAG
            out.append(ch if in_flag else _escape(ord(ch)))
            in_flag = in_flag and ch != "\U000e007f"  # CANCEL TAG ends the flag
            continue
        in_flag = False
        if ch == _ZWJ:
            keep = bool(before and after) and (
                (_is_pictograph(before) and _is_pictograph(after))
                or (_is_script_letter(before) and _is_script_letter(after)))
            out.append(ch if keep else _escape(ord(ch)))
        elif ch == _ZWNJ:
            keep = bool(before and after) and _is_script_letter(before) and _is_script_letter(after)
            out.append(ch if keep else _escape(ord(ch)))
        else:
            out.append(ch)
    return "".join(out)


def _limit_marks(text: str) -> str:
    out: list[str] = []
    marks = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            marks += 1
            if marks > MAX_MARKS_PER_BASE:
                continue
        else:
            marks = 0
        out.append(ch)
    return "".join(out)
