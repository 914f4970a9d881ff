"""The sanitizer: what reaches a terminal from the network is inert or visible."""

from __future__ import annotations

import pytest

from chattycat.ui.sanitize import MAX_MARKS_PER_BASE, sanitize

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
TECHNOLOGIST = "\U0001f469\U0001f3fd\u200d\U0001f4bb"
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize("text", [
    "plain ascii", "ti\u1ebfng vi\u1ec7t", FAMILY, TECHNOLOGIST, ENGLAND,
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: ZWNJ is spelling
    "\u0915\u094d\u200d\u0937",  # Devanagari half form with ZWJ
    "e\u0301\u0302",
])
def test_legitimate_text_passes_unchanged(text: str) -> None:
    assert sanitize(text) == text


@pytest.mark.parametrize(("text", "shown"), [
    ("a\u200fb", "a\\u200fb"),  # RLM
    ("a\u200eb", "a\\u200eb"),  # LRM
    ("a\u061cb", "a\\u061cb"),  # ALM
    ("ad\u200bmin", "ad\\u200bmin"),  # zero-width space
    ("ad\u200dmin", "ad\\u200dmin"),  # ZWJ between ASCII letters
    ("ad\u200cmin", "ad\\u200cmin"),
    ("a\u2060b\ufeffc", "a\\u2060b\\ufeffc"),
    ("\u3164", "\\u3164"),  # a Hangul filler: a blank-looking name
    ("\u202eevil", "\\u202eevil"),
    ("x\u2028y\u2029z", "x\u21b5y\u21b5z"),
    ("hi\U000e0041\U000e0042", "hi\\U000e0041\\U000e0042"),  # tags outside a flag
    ("\x1b[2J", "\u241b[2J"),
])
def test_invisible_and_reordering_characters_become_visible(text: str, shown: str) -> None:
    assert sanitize(text) == shown


def test_combining_marks_are_capped_per_base_character() -> None:
    zalgo = "Z" + "\u0301" * 50 + "a" + "\u0300" * 3
    assert sanitize(zalgo) == "Z" + "\u0301" * MAX_MARKS_PER_BASE + "a" + "\u0300" * 3
