"""Specification of the sans-IO line editor: keystroke bytes in, state and events out."""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chattycat.ui.term.graphemes import boundaries, display_width, next_boundary
from chattycat.ui.term.lineedit import (
    Completions,
    EndOfInput,
    Event,
    Interrupt,
    LineEditor,
    Redraw,
    Submit,
)

LEFT, RIGHT, UP, DOWN = b"\x1b[D", b"\x1b[C", b"\x1b[A", b"\x1b[B"
HOME, END, DELETE, BACKSPACE = b"\x1b[H", b"\x1b[F", b"\x1b[3~", b"\x7f"
CTRL_LEFT, CTRL_RIGHT = b"\x1b[1;5D", b"\x1b[1;5C"

# Clusters: what a reader sees as one character, made of several code points.
ZWJ = "\u200d"
FAMILY = f"\U0001f468{ZWJ}\U0001f469{ZWJ}\U0001f467"  # man ZWJ woman ZWJ girl
FLAG_US, FLAG_FR = "\U0001f1fa\U0001f1f8", "\U0001f1eb\U0001f1f7"  # regional indicator pairs
THUMBS_UP_DARK = "\U0001f44d\U0001f3ff"  # with a skin-tone modifier
E_ACUTE = "e\u0301"  # with a combining accent
HANGUL_GAG = "\u1100\u1161\u11a8"  # the syllable 각 in L, V, T jamo
CLUSTERS = [FAMILY, FLAG_US, THUMBS_UP_DARK, E_ACUTE, HANGUL_GAG]
CTRL = {c: bytes([ord(c) - 0x40]) for c in "ABCDEFHKLUWY"}


def typed(data: bytes, **kwargs: object) -> LineEditor:
    editor = LineEditor(**kwargs)  # type: ignore[arg-type]
    editor.feed(data)
    return editor


def state(editor: LineEditor) -> tuple[str, int]:
    return editor.buffer, editor.cursor


# -- insertion and movement ---------------------------------------------------


def test_typing_appends_and_moves_cursor() -> None:
    assert state(typed(b"hello")) == ("hello", 5)


def test_insert_in_the_middle() -> None:
    assert state(typed(b"helo" + LEFT + b"l")) == ("hello", 4)


@pytest.mark.parametrize("key", [LEFT, b"\x1bOD", CTRL["B"]])
def test_left_variants(key: bytes) -> None:
    assert state(typed(b"abc" + key)) == ("abc", 2)


@pytest.mark.parametrize("key", [RIGHT, b"\x1bOC", CTRL["F"]])
def test_right_variants(key: bytes) -> None:
    assert state(typed(b"abc" + HOME + key)) == ("abc", 1)


@pytest.mark.parametrize("key", [HOME, b"\x1b[1~", b"\x1bOH", b"\x1b[7~", CTRL["A"]])
def test_home_variants(key: bytes) -> None:
    assert state(typed(b"abc" + key)) == ("abc", 0)


@pytest.mark.parametrize("key", [END, b"\x1b[4~", b"\x1bOF", b"\x1b[8~", CTRL["E"]])
def test_end_variants(key: bytes) -> None:
    assert state(typed(b"abc" + HOME + key)) == ("abc", 3)


def test_cursor_stops_at_both_ends() -> None:
    assert state(typed(b"ab" + LEFT * 5)) == ("ab", 0)
    assert state(typed(b"ab" + RIGHT * 5)) == ("ab", 2)


def test_ctrl_arrows_and_meta_move_by_word() -> None:
    assert typed(b"one two three" + b"\x1b[1;5D").cursor == 8
    assert typed(b"one two three" + b"\x1bb\x1bb").cursor == 4
    assert typed(b"one two three" + HOME + b"\x1b[1;5C").cursor == 3
    assert typed(b"one two three" + HOME + b"\x1bf\x1bf").cursor == 7


# -- deletion and kills --------------------------------------------------------


@pytest.mark.parametrize("key", [b"\x7f", b"\x08"])
def test_backspace_deletes_before_cursor(key: bytes) -> None:
    assert state(typed(b"abc" + LEFT + key)) == ("ac", 1)


def test_backspace_at_start_does_nothing() -> None:
    assert state(typed(b"abc" + HOME + b"\x7f")) == ("abc", 0)


def test_delete_removes_char_under_cursor() -> None:
    assert state(typed(b"abc" + HOME + DELETE)) == ("bc", 0)
    assert state(typed(b"abc" + DELETE)) == ("abc", 3)


def test_ctrl_u_kills_to_start() -> None:
    assert state(typed(b"hello world" + LEFT * 5 + CTRL["U"])) == ("world", 0)


def test_ctrl_k_kills_to_end() -> None:
    assert state(typed(b"hello world" + LEFT * 5 + CTRL["K"])) == ("hello ", 6)


def test_ctrl_w_deletes_previous_word_and_spaces_before_cursor() -> None:
    assert state(typed(b"say hello  " + CTRL["W"])) == ("say ", 4)
    assert state(typed(b"say hello" + LEFT * 2 + CTRL["W"])) == ("say lo", 4)


def test_ctrl_y_yanks_last_kill() -> None:
    assert state(typed(b"hello world" + CTRL["W"] + HOME + CTRL["Y"])) == ("worldhello ", 5)


def test_backspace_removes_base_char_with_its_combining_marks() -> None:
    assert state(typed("xe\u0301".encode() + b"\x7f")) == ("x", 1)
    assert typed("e\u0301x".encode() + LEFT * 2).cursor == 0


# -- grapheme clusters -----------------------------------------------------------


def test_backspace_deletes_a_zwj_family_whole() -> None:
    # The reported defect: it took five Backspaces, one per code point.
    assert state(typed(f"hi {FAMILY}".encode() + BACKSPACE)) == ("hi ", 3)


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_backspace_deletes_one_whole_cluster(cluster: str) -> None:
    assert state(typed(f"a{cluster}".encode() + BACKSPACE)) == ("a", 1)


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_left_right_and_delete_step_over_one_whole_cluster(cluster: str) -> None:
    editor = typed(f"a{cluster}b".encode() + LEFT)
    assert editor.cursor == 1 + len(cluster)
    editor.feed(LEFT)
    assert editor.cursor == 1
    editor.feed(RIGHT)
    assert editor.cursor == 1 + len(cluster)
    editor.feed(LEFT + DELETE)
    assert state(editor) == ("ab", 1)


def test_backspace_after_two_flags_removes_only_the_last_flag() -> None:
    assert state(typed((FLAG_US + FLAG_FR).encode() + BACKSPACE)) == (FLAG_US, 2)


def test_a_sequence_typed_one_byte_at_a_time_is_still_one_character() -> None:
    editor = LineEditor()
    for byte in f"x{FAMILY}".encode():
        editor.feed(bytes([byte]))
    assert editor.cursor == len(editor.buffer)
    editor.feed(LEFT)
    assert editor.cursor == 1


def test_word_moves_and_ctrl_w_keep_clusters_whole() -> None:
    line = f"say {FAMILY}{FLAG_US} now"
    assert typed(line.encode() + CTRL_LEFT * 2).cursor == 4
    assert typed(line.encode() + HOME + CTRL_RIGHT * 2).cursor == len(line) - 4
    assert state(typed(f"say {FAMILY}{FLAG_US}".encode() + CTRL["W"])) == ("say ", 4)


def test_the_cursor_column_counts_each_cluster_by_its_width() -> None:
    editor = typed(f"{FAMILY}{E_ACUTE}{FLAG_US}".encode())
    assert editor.render("> ", 80).cursor_column == 2 + 2 + 1 + 2
    editor.feed(LEFT)
    assert editor.render("> ", 80).cursor_column == 2 + 2 + 1
    editor.feed(LEFT * 2)
    assert editor.render("> ", 80).cursor_column == 2


def test_text_joining_the_cluster_after_the_cursor_moves_the_cursor_past_it() -> None:
    # A joiner typed between two emoji makes one picture of them.
    editor = typed(b"\xf0\x9f\x91\xa8\xf0\x9f\x91\xa9" + LEFT + ZWJ.encode())
    assert state(editor) == ("\U0001f468" + ZWJ + "\U0001f469", 3)
    editor.feed(BACKSPACE)
    assert state(editor) == ("", 0)


def test_typing_goes_on_where_it_was_even_after_the_cursor_skipped_a_cluster() -> None:
    # "a" joins the stray accent at the start of the line; the "b" typed next
    # still follows the "a", as it would had both come in one read.
    editor = LineEditor()
    editor.set_buffer("\u0301", cursor=0)
    editor.feed(b"a")
    assert state(editor) == ("a\u0301", 2)
    editor.feed(b"b")
    assert editor.buffer == "ab\u0301"


def test_deleting_what_kept_two_halves_apart_leaves_the_cursor_on_a_boundary() -> None:
    # U, x, S: deleting the x pairs the regional indicators into one flag.
    editor = typed("\U0001f1fax\U0001f1f8".encode() + LEFT + BACKSPACE)
    assert state(editor) == (FLAG_US, 0)


def test_set_buffer_moves_a_cursor_inside_a_cluster_to_its_start() -> None:
    editor = LineEditor()
    editor.set_buffer(f"a{FAMILY}", cursor=3)
    assert editor.cursor == 1


def test_a_pasted_crlf_is_one_space_not_a_line_end() -> None:
    # CR LF is one cluster (GB3) and one Enter when typed; pasted, one space.
    editor = LineEditor()
    assert editor.feed(b"\x1b[200~a\r\nb\x1b[201~") == []
    assert state(editor) == ("a b", 3)


# -- control keys and events ---------------------------------------------------


@pytest.mark.parametrize("enter", [b"\r", b"\n", b"\r\n"])
def test_enter_submits_and_clears(enter: bytes) -> None:
    editor = LineEditor()
    assert editor.feed(b"hi there" + LEFT + enter) == [Submit("hi there")]
    assert state(editor) == ("", 0)


def test_crlf_counts_once_even_when_split() -> None:
    editor = LineEditor()
    assert editor.feed(b"a\r") == [Submit("a")]
    assert editor.feed(b"\nb\n") == [Submit("b")]


def test_two_crs_submit_an_empty_line_too() -> None:
    assert LineEditor().feed(b"a\r\r") == [Submit("a"), Submit("")]


def test_ctrl_c_interrupts_without_touching_the_buffer() -> None:
    editor = LineEditor()
    assert editor.feed(b"abc\x03") == [Interrupt()]
    assert state(editor) == ("abc", 3)


def test_ctrl_d_on_empty_line_is_end_of_input() -> None:
    assert LineEditor().feed(b"\x04") == [EndOfInput()]


def test_ctrl_d_on_nonempty_line_deletes_forward() -> None:
    editor = LineEditor()
    assert editor.feed(b"abc" + HOME + b"\x04") == []
    assert state(editor) == ("bc", 0)


def test_ctrl_l_asks_for_redraw() -> None:
    assert LineEditor().feed(b"\x0c") == [Redraw()]


def test_events_come_out_in_order() -> None:
    events = LineEditor().feed(b"a\r\x03b\r\x04")
    assert events == [Submit("a"), Interrupt(), Submit("b"), EndOfInput()]


def test_other_control_characters_are_ignored() -> None:
    assert state(typed(b"a\x00\x07\x0f\x1a\x1fb")) == ("ab", 2)
    assert state(typed("a\u0085\u009bb\u202ec".encode())) == ("abc", 3)


# -- escape sequences and decoding ------------------------------------------------


@pytest.mark.parametrize(
    "seq", [b"\x1b[15~", b"\x1b[1;2P", b"\x1b[?25h", b"\x1bOP", b"\x1b[200;5;9x", b"\x1bx"]
)
def test_unknown_escape_sequences_are_swallowed(seq: bytes) -> None:
    assert state(typed(b"a" + seq + b"b")) == ("ab", 2)


def test_escape_then_control_key_still_acts() -> None:
    assert LineEditor().feed(b"hi\x1b\r") == [Submit("hi")]


def test_overlong_csi_is_swallowed_without_matching_a_key() -> None:
    assert state(typed(b"ab\x1b[" + b"1" * 1000 + b"D")) == ("ab", 2)


def test_escape_sequence_split_across_feeds() -> None:
    editor = LineEditor()
    for chunk in (b"ab", b"\x1b", b"[", b"D", b"c"):
        editor.feed(chunk)
    assert state(editor) == ("acb", 2)


def test_utf8_split_across_feeds() -> None:
    editor = LineEditor()
    for byte in "日本é😀".encode():
        editor.feed(bytes([byte]))
    assert state(editor) == ("日本é😀", 4)


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert typed(b"a\xff\xc3(b").buffer == "a\ufffd\ufffd(b"


def test_interrupted_csi_hands_the_char_back() -> None:
    # A truncated "ESC [" followed by a control key: the key must still work.
    assert LineEditor().feed(b"x\x1b[\r") == [Submit("x")]


def test_bracketed_paste_inserts_newlines_as_spaces_and_never_submits() -> None:
    editor = LineEditor()
    events = editor.feed(b"> \x1b[200~one\r\ntwo\x03\x7f\tthree\x1b[201~!")
    assert events == []
    assert state(editor) == ("> one two three!", 16)


# -- history ---------------------------------------------------------------------


def submitted(*lines: str) -> LineEditor:
    editor = LineEditor()
    for line in lines:
        editor.feed(line.encode() + b"\r")
    return editor


def test_up_recalls_previous_lines_and_down_returns() -> None:
    editor = submitted("first", "second")
    editor.feed(UP)
    assert state(editor) == ("second", 6)
    editor.feed(UP + UP + UP)
    assert editor.buffer == "first"
    editor.feed(DOWN)
    assert editor.buffer == "second"


def test_in_progress_line_is_kept_as_bottom_entry() -> None:
    editor = submitted("first")
    editor.feed(b"draft" + UP)
    assert editor.buffer == "first"
    editor.feed(DOWN)
    assert state(editor) == ("draft", 5)
    editor.feed(DOWN)
    assert editor.buffer == "draft"


def test_edits_to_recalled_lines_survive_browsing_until_submit() -> None:
    editor = submitted("first", "second")
    editor.feed(UP + b"!" + UP + DOWN)
    assert editor.buffer == "second!"
    assert editor.feed(b"\r") == [Submit("second!")]
    assert editor.history == ("first", "second", "second!")


def test_history_skips_blank_and_repeated_lines() -> None:
    assert submitted("a", "", "  ", "a", "b").history == ("a", "b")


def test_history_is_bounded() -> None:
    editor = LineEditor(history_size=2)
    for line in (b"a\r", b"b\r", b"c\r"):
        editor.feed(line)
    assert editor.history == ("b", "c")


def test_up_with_empty_history_does_nothing() -> None:
    assert state(typed(b"x" + UP)) == ("x", 1)


def test_ctrl_p_and_ctrl_n_browse_history() -> None:
    editor = submitted("first")
    editor.feed(b"\x10")
    assert editor.buffer == "first"
    editor.feed(b"\x0e")
    assert editor.buffer == ""


# -- completion -----------------------------------------------------------------

MEMBERS = ("alice", "alina", "bob", "Bobby")


def members(prefix: str) -> list[str]:
    return [m for m in MEMBERS if m.lower().startswith(prefix.lower())]


def test_tab_unique_match_at_line_start_adds_colon() -> None:
    editor = LineEditor(complete=members)
    assert editor.feed(b"ali\tc") == [Completions(("alice", "alina"))]
    editor.clear()
    assert editor.feed(b"bobb\t") == []
    assert state(editor) == ("Bobby: ", 7)


def test_tab_unique_match_mid_line_adds_space() -> None:
    editor = typed(b"hi alic\tthere", complete=members)
    assert state(editor) == ("hi alice there", 14)


def test_tab_multiple_matches_completes_common_prefix_and_lists() -> None:
    editor = LineEditor(complete=members)
    assert editor.feed(b"hey a\t") == [Completions(("alice", "alina"))]
    assert state(editor) == ("hey ali", 7)


def test_tab_completes_word_before_cursor_only() -> None:
    editor = typed(b"x bo yz" + LEFT * 3, complete=lambda p: ["bobcat"] if p == "bo" else [])
    editor.feed(b"\t")
    assert state(editor) == ("x bobcat  yz", 9)


def test_tab_without_matches_or_completer_changes_nothing() -> None:
    assert state(typed(b"zed\t", complete=members)) == ("zed", 3)
    assert state(typed(b"zed\t")) == ("zed", 3)


def test_completion_candidates_cannot_smuggle_control_chars() -> None:
    editor = typed(b"ev\t", complete=lambda p: ["eve\x1b[2J"])
    assert editor.buffer == "eve[2J: "


def test_fuzzy_completer_never_shortens_typed_word() -> None:
    editor = LineEditor(complete=lambda p: ["xa", "xb"])
    assert editor.feed(b"hello\t") == [Completions(("xa", "xb"))]
    assert editor.buffer == "hello"


# -- width and rendering ---------------------------------------------------------


def test_display_width_counts_wide_and_combining() -> None:
    assert display_width("abc") == 3
    assert display_width("日本") == 4
    assert display_width("😀") == 2
    assert display_width("e\u0301") == 1
    assert display_width("") == 0


def test_render_short_line_shows_everything() -> None:
    editor = typed(b"hello" + LEFT * 2)
    r = editor.render("> ", 80)
    assert (r.visible, r.cursor_column, r.start) == ("> hello", 5, 0)
    assert r.to_bytes() == b"\r> hello\x1b[K\r\x1b[5C"


def test_render_cursor_at_column_zero_uses_no_cursor_forward() -> None:
    # "ESC [ 0 C" would move one column right on real terminals.
    assert typed(b"abc" + HOME).render("", 80).sequence == "\rabc\x1b[K\r"


def test_render_wide_chars_count_two_columns() -> None:
    r = typed("日本語".encode() + LEFT).render("> ", 80)
    assert r.cursor_column == 2 + 4


def test_render_long_line_scrolls_to_keep_cursor_visible() -> None:
    editor = typed(b"x" * 50)
    r = editor.render("> ", 20)
    assert r.visible == "x" * 19
    assert r.cursor_column == 19
    editor.feed(HOME)
    r = editor.render("> ", 20)
    assert (r.visible, r.cursor_column) == ("> " + "x" * 17, 2)


def test_render_strips_control_chars_from_prompt() -> None:
    assert LineEditor().render("\x1b[31m#room> ", 80).visible == "[31m#room> "


# -- properties -------------------------------------------------------------------

KEYS = [
    LEFT, RIGHT, UP, DOWN, HOME, END, DELETE, b"\x1bOD", b"\x1b[1~", b"\x1b[4~",
    b"\x1b[1;5C", b"\x1b[200~", b"\x1b[201~", b"\x1b[99;7z", b"\x1bO", b"\x1b",
    b"\x7f", b"\x08", b"\r", b"\n", b"\t", b"\x03", b"\x04", b"\x0c",
    *CTRL.values(), b"\xff", b"\xe6\x97", b"\x00",
]  # fmt: skip
# Code points that build clusters: accents, joiners, regional indicators,
# skin tones, Hangul jamo, variation selectors.
CLUSTER_PARTS = (
    "\u0301\u200d\U0001f468\U0001f469\U0001f1fa\U0001f1f8\U0001f3fd\u1100\u1161\u11a8\ufe0f"
)
TEXT = st.text(
    alphabet=st.sampled_from("ab xyz日本😀é\u200b\u3000\uff57" + CLUSTER_PARTS),
    min_size=1,
    max_size=5,
)
KEYSTROKES = st.lists(
    st.one_of(st.sampled_from(KEYS), TEXT.map(str.encode), st.binary(max_size=3)), max_size=40
).map(b"".join)


def complete_any(prefix: str) -> Sequence[str]:
    return [name for name in ("ab", "abx", "日本", "a😀") if name.startswith(prefix)]


def run(chunks: list[bytes]) -> tuple[list[Event], str, int, tuple[str, ...]]:
    editor = LineEditor(complete=complete_any)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(editor.feed(chunk))
    return events, editor.buffer, editor.cursor, editor.history


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(KEYSTROKES)
    cuts = sorted(draw(st.sets(st.integers(0, len(data)), max_size=len(data) + 1)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunked())
@settings(max_examples=300)
def test_any_chunking_gives_the_same_result(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    assert run(chunks) == run([data])
    assert run(chunks) == run([bytes([b]) for b in data])


@given(KEYSTROKES)
@settings(max_examples=300)
def test_random_keystrokes_keep_invariants(data: bytes) -> None:
    editor = LineEditor(complete=complete_any)
    for byte in data:
        events = editor.feed(bytes([byte]))
        assert 0 <= editor.cursor <= len(editor.buffer)
        assert editor.cursor in boundaries(editor.buffer)
        assert not any(unicodedata.category(ch) == "Cc" for ch in editor.buffer)
        for event in events:
            if isinstance(event, Submit):
                assert not any(unicodedata.category(ch) == "Cc" for ch in event.line)


@given(
    buffer=st.text(st.sampled_from("ab 日😀é\u0300\uff57\u200b" + CLUSTER_PARTS), max_size=60),
    # Empty, or ending in a space like the client's "[room]> ": the prompt
    # and the line are measured apart, and nothing joins a space visibly.
    prompt=st.one_of(st.just(""), st.text(st.sampled_from("> #日"), max_size=7).map("{} ".format)),
    width=st.integers(3, 40),
    data=st.data(),
)
@settings(max_examples=500)
def test_render_round_trips(buffer: str, prompt: str, width: int, data: st.DataObject) -> None:
    editor = LineEditor()
    editor.set_buffer(buffer, cursor=data.draw(st.integers(0, len(buffer))))
    r = editor.render(prompt, width)
    full = prompt + editor.buffer
    at = len(prompt) + editor.cursor
    # The visible text is a contiguous slice that never reaches the last column.
    assert full[r.start : r.start + len(r.visible)] == r.visible
    assert display_width(r.visible) <= width - 1
    # The cursor column is where the char under the cursor is drawn.
    assert r.start <= at <= r.start + len(r.visible)
    assert r.cursor_column == display_width(full[r.start : at])
    assert r.cursor_column <= width - 1
    under_cursor = editor.buffer[editor.cursor : next_boundary(editor.buffer, editor.cursor)]
    # (A cluster can be wider than a narrow row: leading Hangul jamo in a row
    # make one cluster of two columns each.)
    if under_cursor and display_width(under_cursor) <= width - 1:
        assert at < r.start + len(r.visible)
        assert r.cursor_column + display_width(under_cursor) <= width - 1
    if display_width(full) <= width - 1:
        assert r.visible == full


@given(
    before=st.text(st.sampled_from("ab 日" + CLUSTER_PARTS), max_size=12),
    cluster=st.sampled_from(["x", "日", *CLUSTERS, FLAG_FR, "\u2764\ufe0f"]),
    data=st.data(),
)
@settings(max_examples=300)
def test_backspace_after_typing_a_cluster_restores_the_line(
    before: str, cluster: str, data: st.DataObject
) -> None:
    editor = LineEditor()
    editor.set_buffer(before, cursor=data.draw(st.integers(0, len(before))))
    at = editor.cursor
    after = before[:at] + cluster + before[at:]
    # Only when it stays a character of its own: an accent typed after a
    # letter, or half a flag beside another, becomes part of its neighbour.
    assume(at in boundaries(after) and at + len(cluster) in boundaries(after))
    editor.feed(cluster.encode())
    assert state(editor) == (after, at + len(cluster))
    editor.feed(BACKSPACE)
    assert state(editor) == (before, at)
    editor.feed(cluster.encode() + LEFT + DELETE)
    assert state(editor) == (before, at)


# -- secret input -------------------------------------------------------------


def test_a_secret_line_is_masked_and_kept_out_of_the_history() -> None:
    editor = LineEditor()
    editor.secret = True
    events = editor.feed(b"hunter22\r")
    assert events == [Submit("hunter22")]
    assert editor.history == ()
    editor.feed(b"abc")
    assert editor.render("> ", 40).visible == "> ***"
    editor.secret = False
    assert editor.render("> ", 40).visible == "> abc"
