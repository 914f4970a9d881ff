"""Untrusted network text made inert before any front end shows it."""

from __future__ import annotations

__all__ = ["sanitize"]

# C0 controls as the Unicode "control pictures" (U+2400 + code), DEL as U+2421.
_INERT: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20)}
_INERT[ord("\n")] = "\u21b5"  # ↵, reads as a line break
_INERT[ord("\t")] = " "
_INERT[0x7F] = "\u2421"
# C1 controls have no pictures; 0x9b alone is a CSI on many terminals.
_INERT.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
# Bidi overrides/isolates let a nickname reorder the rest of the line
# (CVE-2021-42574, "Trojan Source").
_INERT.update({code: f"\\u{code:04x}" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})


def sanitize(text: str) -> str:
    """Make untrusted network text inert for a terminal: controls become visible."""
    return text.translate(_INERT)
