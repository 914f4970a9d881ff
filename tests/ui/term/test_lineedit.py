"""Specification of the sans-IO line editor: keystroke bytes in, state and events out."""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.ui.term.lineedit import (
    Completions,
    EndOfInput,
    Event,
    Interrupt,
    LineEditor,
    Redraw,
    Submit,
    display_width,
)

LEFT, RIGHT, UP, DOWN = b"\x1b[D", b"\x1b[C", b"\x1b[A", b"\x1b[B"
HOME, END, DELETE = b"\x1b[H", b"\x1b[F", b"\x1b[3~"
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
TEXT = st.text(
    alphabet=st.sampled_from("ab xyz日本😀é\u0301\u200b\u3000\uff57"), min_size=1, max_size=5
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
        assert not any(unicodedata.category(ch) == "Cc" for ch in editor.buffer)
        for event in events:
            if isinstance(event, Submit):
                assert not any(unicodedata.category(ch) == "Cc" for ch in event.line)


@given(
    buffer=st.text(st.sampled_from("ab 日😀é\u0301\u0300\uff57\u200b"), max_size=60),
    prompt=st.text(st.sampled_from("> #日"), max_size=8),
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
    if at < len(full):
        assert at < r.start + len(r.visible)
        assert r.cursor_column + display_width(full[at]) <= width - 1
    if display_width(full) <= width - 1:
        assert r.visible == full
