"""Grapheme clusters and their terminal widths, for the line editor.

What a user sees as one character may be several code points: ``e`` plus a
combining accent, a flag (two regional indicators), a thumbs-up with a skin
tone, a family joined by ZERO WIDTH JOINERs (U+1F468 U+200D U+1F469 U+200D
U+1F467: five code points, one picture two columns wide), a Hangul syllable
spelled in jamo. The editor moves over, deletes and measures these whole, as
Unicode's *extended grapheme clusters* (UAX #29, section 3.1). The rules that
matter in a chat line: GB3 (CR LF stay together), GB4/GB5 (break around other
controls), GB6-GB8 (Hangul L, V, T jamo and LV/LVT syllables), GB9 (no break
before Extend or ZWJ: accents, variation selectors, skin-tone modifiers),
GB9a (nor before a SpacingMark), GB9b (nor after a Prepend), GB9c (Indic
conjuncts), GB11 (emoji ZWJ sequences), GB12/GB13 (regional indicators pair
up into flags).

The segmentation and the widths come from the ``wcwidth`` package, a small
pure-Python library with no dependencies of its own. Hand-written code would
need tables the standard library does not have (Grapheme_Cluster_Break,
Extended_Pictographic, Indic_Conjunct_Break), and ``unicodedata`` is frozen at
the Unicode version of the running Python (14.0 on 3.11), so newer emoji
would be split and mis-measured; ``wcwidth`` carries current tables and
already measures a ZWJ sequence as the two columns a terminal draws, where
summing code points gives six. This module is the one place that calls it.
Nothing here touches a terminal.
"""

from __future__ import annotations

import bisect
import functools

from wcwidth import iter_graphemes, wcswidth

__all__ = [
    "boundaries",
    "cluster_width",
    "clusters",
    "display_width",
    "next_boundary",
    "previous_boundary",
    "snap_back",
    "snap_forward",
]


@functools.lru_cache(maxsize=8)
def clusters(text: str) -> tuple[str, ...]:
    """``text`` split into extended grapheme clusters (they join back to ``text``)."""
    # Cached: the editor asks about the same buffer several times per key.
    return tuple(iter_graphemes(text))


@functools.lru_cache(maxsize=8)
def boundaries(text: str) -> tuple[int, ...]:
    """Indexes where clusters start, plus ``len(text)``: ``(0, ..., len(text))``."""
    edges = [0]
    for cluster in clusters(text):
        edges.append(edges[-1] + len(cluster))
    return tuple(edges)


def previous_boundary(text: str, index: int) -> int:
    """The last cluster boundary before ``index`` (0 at the start)."""
    edges = boundaries(text)
    return edges[max(bisect.bisect_left(edges, index) - 1, 0)]


def next_boundary(text: str, index: int) -> int:
    """The first cluster boundary after ``index`` (``len(text)`` at the end)."""
    edges = boundaries(text)
    return edges[min(bisect.bisect_right(edges, index), len(edges) - 1)]


def snap_back(text: str, index: int) -> int:
    """``index`` if it is a boundary, else the start of the cluster it is inside."""
    edges = boundaries(text)
    return edges[max(bisect.bisect_right(edges, index) - 1, 0)]


def snap_forward(text: str, index: int) -> int:
    """``index`` if it is a boundary, else the end of the cluster it is inside."""
    edges = boundaries(text)
    return edges[min(bisect.bisect_left(edges, index), len(edges) - 1)]


def cluster_width(cluster: str) -> int:
    """Terminal columns taken by one cluster: 0, 1 or 2 but for odd spellings."""
    # Odd spellings: a run of leading Hangul jamo is one cluster (GB6) that
    # terminals draw two columns per jamo.
    # wcswidth says -1 for C0/C1 controls; the editor never holds any, and a
    # width must not be negative whatever the caller passes.
    return max(wcswidth(cluster), 0)


def display_width(text: str) -> int:
    """Terminal columns taken by ``text``, cluster by cluster."""
    return sum(cluster_width(cluster) for cluster in clusters(text))
