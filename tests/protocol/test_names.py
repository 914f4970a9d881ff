"""Specification of the naming rules (PROTOCOL 2), the one place every layer takes them from.

User names are 1-32 characters from ``A-Z a-z 0-9 _ -`` and compare without
case; room names are 1-32 characters from ``a-z 0-9 _ -``. The rules are
checked here against a model written from that sentence, not from the code.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chattycat.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from chattycat.protocol.messages import Join, Nick, parse_request
from chattycat.protocol.names import (
    MAX_NAME_CHARS,
    NAME_RULE,
    ROOM_RULE,
    is_valid_name,
    is_valid_room,
    name_key,
)

NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
ROOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"


def follows(text: str, alphabet: str) -> bool:
    return 1 <= len(text) <= 32 and all(char in alphabet for char in text)


@given(text=st.text(NAME_CHARS + " .!\u00e9\u540d\n#@", max_size=40))
def test_a_user_name_is_1_to_32_characters_from_letters_digits_underscore_dash(text: str) -> None:
    assert is_valid_name(text) == follows(text, NAME_CHARS)


@given(text=st.text(NAME_CHARS + " .!\u00e9\n#", max_size=40))
def test_a_room_name_is_1_to_32_characters_from_lower_case_letters_digits_underscore_dash(
    text: str,
) -> None:
    assert is_valid_room(text) == follows(text, ROOM_CHARS)


@given(text=st.text(max_size=40))
def test_any_text_outside_the_alphabets_is_neither_a_name_nor_a_room(text: str) -> None:
    assert is_valid_name(text) == follows(text, NAME_CHARS)
    assert is_valid_room(text) == follows(text, ROOM_CHARS)


@pytest.mark.parametrize("length", [0, 1, 32, 33])
def test_the_length_limit_is_32_characters_for_both(length: int) -> None:
    assert MAX_NAME_CHARS == 32
    assert is_valid_name("a" * length) == (1 <= length <= 32)
    assert is_valid_room("a" * length) == (1 <= length <= 32)


def test_every_room_name_is_a_user_name_but_not_the_reverse() -> None:
    assert is_valid_name("Alice") and not is_valid_room("Alice")


def test_a_trailing_newline_is_not_part_of_a_valid_name() -> None:
    # re's "$" would accept "alice\n"; the rule is a full match.
    assert not is_valid_name("alice\n")
    assert not is_valid_room("lobby\n")


@given(name=st.text(NAME_CHARS, min_size=1, max_size=32))
def test_name_key_identifies_names_that_differ_only_in_case(name: str) -> None:
    assert name_key(name) == name_key(name.upper()) == name_key(name.swapcase())


def test_name_key_tells_different_names_apart() -> None:
    assert name_key("alice") != name_key("alice_")


@pytest.mark.parametrize("rule", [NAME_RULE, ROOM_RULE])
def test_each_rule_is_one_line_a_user_can_read(rule: str) -> None:
    assert "\n" not in rule
    assert "1-32" in rule
    assert "_ -" in rule


def test_the_rules_in_words_say_which_letters_are_allowed() -> None:
    assert "A-Z a-z" in NAME_RULE
    assert "A-Z" not in ROOM_RULE and "a-z" in ROOM_RULE


def test_the_rule_text_is_the_text_of_the_error_on_the_wire() -> None:
    with pytest.raises(RemoteProtocolError) as bad_name:
        parse_request({"type": "nick", "name": "bad name"})
    with pytest.raises(RemoteProtocolError) as bad_room:
        parse_request({"type": "join", "room": "Bad Room"})
    assert (bad_name.value.code, bad_name.value.message) == (ErrorCode.BAD_NAME, NAME_RULE)
    assert (bad_room.value.code, bad_room.value.message) == (ErrorCode.BAD_ROOM, ROOM_RULE)


def test_a_frame_built_with_a_bad_name_quotes_the_same_rule() -> None:
    with pytest.raises(LocalProtocolError, match=re.escape(NAME_RULE)):
        Nick("bad name")
    with pytest.raises(LocalProtocolError, match=re.escape(ROOM_RULE)):
        Join("Bad Room")
