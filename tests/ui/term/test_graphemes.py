"""Specification of grapheme clusters and widths: what the editor treats as one character."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.ui.term.graphemes import (
    boundaries,
    cluster_width,
    clusters,
    display_width,
    next_boundary,
    previous_boundary,
    snap_back,
    snap_forward,
)

ZWJ = "\u200d"
FAMILY = f"\U0001f468{ZWJ}\U0001f469{ZWJ}\U0001f467"  # man, woman, girl: one picture
FLAG_US = "\U0001f1fa\U0001f1f8"  # regional indicators U, S
FLAG_FR = "\U0001f1eb\U0001f1f7"
THUMBS_UP_MEDIUM = "\U0001f44d\U0001f3fd"  # with a skin-tone modifier
E_ACUTE = "e\u0301"  # e + COMBINING ACUTE ACCENT
HANGUL_GAG = "\u1100\u1161\u11a8"  # L V T jamo: the syllable 각 spelled out
HEART_EMOJI = "\u2764\ufe0f"  # with VARIATION SELECTOR-16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"a{FAMILY}b", ("a", FAMILY, "b"), id="GB11 emoji ZWJ sequence"),
        pytest.param(FLAG_US + FLAG_FR, (FLAG_US, FLAG_FR), id="GB12/13 flags pair up"),
        pytest.param(FLAG_US + "\U0001f1e9", (FLAG_US, "\U0001f1e9"), id="GB12/13 odd one out"),
        pytest.param(THUMBS_UP_MEDIUM + "!", (THUMBS_UP_MEDIUM, "!"), id="GB9 skin tone"),
        pytest.param(f"caf{E_ACUTE}s", ("c", "a", "f", E_ACUTE, "s"), id="GB9 combining accent"),
        pytest.param(E_ACUTE + "\u0323", (E_ACUTE + "\u0323",), id="GB9 two accents"),
        pytest.param(HEART_EMOJI, (HEART_EMOJI,), id="GB9 variation selector"),
        pytest.param(HANGUL_GAG + "\u1100", (HANGUL_GAG, "\u1100"), id="GB6-8 Hangul jamo"),
        pytest.param("\uac00\u11a8", ("\uac00\u11a8",), id="GB7 LV syllable then T jamo"),
        pytest.param("\u0915\u093f", ("\u0915\u093f",), id="GB9a SpacingMark"),
        pytest.param("\u0600\u0661", ("\u0600\u0661",), id="GB9b Prepend"),
        pytest.param("\u200b" + FLAG_US, ("\u200b", FLAG_US), id="GB4 then GB12 flag"),
        pytest.param("a\r\nb", ("a", "\r\n", "b"), id="GB3 CR LF"),
        pytest.param("\n\r", ("\n", "\r"), id="GB4/5 LF CR"),
        pytest.param("a\u0301\n\u0301", ("a\u0301", "\n", "\u0301"), id="GB4 after control"),
        pytest.param("", (), id="empty"),
    ],
)
def test_text_splits_into_the_clusters_a_reader_sees(text: str, expected: tuple[str, ...]) -> None:
    assert clusters(text) == expected


@pytest.mark.parametrize(
    ("cluster", "columns"),
    [
        ("a", 1), ("日", 2), ("\U0001f600", 2), (E_ACUTE, 1), (FAMILY, 2), (FLAG_US, 2),
        (THUMBS_UP_MEDIUM, 2), (HANGUL_GAG, 2), ("\u200b", 0), ("\u0301", 0),
    ],
)  # fmt: skip
def test_a_cluster_takes_the_columns_a_terminal_draws(cluster: str, columns: int) -> None:
    assert cluster_width(cluster) == columns


def test_display_width_sums_clusters_not_code_points() -> None:
    # Summed per code point the family would be 6 columns (three wide emoji).
    assert display_width(f"> {FAMILY} ok") == 2 + 2 + 3
    assert display_width("日本" + E_ACUTE) == 5
    assert display_width("") == 0


def test_boundary_steps_move_over_whole_clusters() -> None:
    text = f"a{FAMILY}{FLAG_US}"
    assert boundaries(text) == (0, 1, 1 + len(FAMILY), len(text))
    assert next_boundary(text, 1) == 1 + len(FAMILY)
    assert previous_boundary(text, len(text)) == 1 + len(FAMILY)
    assert previous_boundary(text, 0) == 0
    assert next_boundary(text, len(text)) == len(text)


def test_snapping_leaves_boundaries_alone_and_moves_out_of_a_cluster() -> None:
    text = f"a{FAMILY}b"
    inside = 3  # after the first ZWJ
    assert snap_back(text, inside) == 1
    assert snap_forward(text, inside) == 1 + len(FAMILY)
    assert snap_back(text, 1) == snap_forward(text, 1) == 1


TEXT = st.text(
    st.sampled_from(
        ["a", " ", "日", "\u0301", ZWJ, "\U0001f468", "\U0001f469", "\U0001f1fa", "\U0001f1f8",
         "\U0001f3fd", "\u1100", "\u1161", "\u11a8", "\uac00", "\u0915", "\u093f", "\u0600",
         "\ufe0f", "\u200b", "\r", "\n"]
    ),
    max_size=30,
)  # fmt: skip


@given(TEXT)
@settings(max_examples=300)
def test_clusters_cover_the_text_and_boundaries_agree(text: str) -> None:
    parts = clusters(text)
    assert "".join(parts) == text
    assert all(parts)
    edges = boundaries(text)
    assert edges[0] == 0 and edges[-1] == len(text)
    assert list(edges) == sorted(set(edges))
    for a, b in itertools.pairwise(edges):
        assert next_boundary(text, a) == b
        assert previous_boundary(text, b) == a
        for inside in range(a + 1, b):
            assert (snap_back(text, inside), snap_forward(text, inside)) == (a, b)
    assert display_width(text) == sum(cluster_width(c) for c in parts) >= 0
