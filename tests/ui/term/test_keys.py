"""Specification of keyboard decoding: keystroke bytes in, keys and typed text out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chattycat.ui.term.keys import MAX_CSI_PARAM_CHARS, Key, KeyDecoder, is_insertable


def decoded(data: bytes) -> list[Key | str]:
    return KeyDecoder().feed(data)


def test_text_comes_out_as_one_run() -> None:
    assert decoded("héllo wörld".encode()) == ["héllo wörld"]


def test_control_keys_split_the_text() -> None:
    assert decoded(b"ab\x01cd\r") == ["ab", Key.LINE_START, "cd", Key.ENTER]


def test_crlf_is_one_enter_but_lf_lf_is_two() -> None:
    assert decoded(b"\r\n") == [Key.ENTER]
    assert decoded(b"\n\n") == [Key.ENTER, Key.ENTER]


def test_xterm_vt220_and_application_mode_sequences_mean_the_same_keys() -> None:
    assert decoded(b"\x1b[H\x1b[1~\x1b[7~\x1bOH") == [Key.LINE_START] * 4
    assert decoded(b"\x1b[A\x1bOA\x1b[3~") == [Key.UP, Key.UP, Key.DELETE]


def test_ctrl_and_alt_arrows_and_meta_chords_move_by_words() -> None:
    assert decoded(b"\x1b[1;5D\x1b[1;3C\x1bb\x1bf\x1b\x7f") == [
        Key.WORD_LEFT, Key.WORD_RIGHT, Key.WORD_LEFT, Key.WORD_RIGHT, Key.KILL_WORD,
    ]


def test_unknown_sequences_and_alt_printable_chords_are_dropped() -> None:
    assert decoded(b"\x1b[99~a\x1bxb") == ["ab"]


def test_a_cut_short_sequence_gives_back_the_char_that_ended_it() -> None:
    assert decoded(b"\x1b[\x01") == [Key.LINE_START]
    assert decoded(b"\x1b\r") == [Key.ENTER]


def test_an_overlong_csi_sequence_matches_nothing() -> None:
    assert decoded(b"\x1b[" + b"1" * (MAX_CSI_PARAM_CHARS + 5) + b"~x") == ["x"]


def test_a_bracketed_paste_is_text_only_with_newlines_as_spaces() -> None:
    assert decoded(b"a\x1b[200~b\r\nc\x03\td\x1b[201~\r") == ["ab c d", Key.ENTER]


def test_control_and_bidi_characters_are_not_text() -> None:
    assert decoded("a\u202eb\x85c".encode()) == ["abc"]
    assert not is_insertable("\u2066") and is_insertable("é")


def test_the_parts_of_a_grapheme_cluster_are_all_text() -> None:
    # Joiners, variation selectors, skin tones and accents are format or mark
    # characters, not controls: dropping one would change what the user typed
    # (a family into three people, a flag into two letters).
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    typed = f"{family}\u2764\ufe0f\U0001f44d\U0001f3fd\U0001f1fa\U0001f1f8e\u0301"
    assert decoded(typed.encode()) == [typed]


def test_invalid_utf8_becomes_the_replacement_character() -> None:
    assert decoded(b"a\xffb") == ["a\ufffdb"]


def merged(items: list[Key | str]) -> list[Key | str]:
    """Adjacent text runs joined: how the split into runs may differ, not the meaning."""
    out: list[Key | str] = []
    for item in items:
        if isinstance(item, str) and out and isinstance(out[-1], str):
            out[-1] += item
        else:
            out.append(item)
    return out


@given(st.binary(max_size=64), st.lists(st.integers(0, 64), max_size=8))
def test_any_split_of_the_input_decodes_the_same(data: bytes, cuts: list[int]) -> None:
    decoder = KeyDecoder()
    pieces: list[Key | str] = []
    start = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        pieces += decoder.feed(data[start:cut])
        start = cut
    pieces += decoder.feed(data[start:])
    assert merged(pieces) == merged(decoded(data))
