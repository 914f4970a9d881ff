"""The IRC line codec: any split of the stream, any bytes, round trips."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chattycat.errors import ErrorCode, RemoteProtocolError
from chattycat.protocol.irc import (
    MAX_LINE_BYTES,
    IrcMessage,
    LineDecoder,
    LineTooLong,
    format_line,
    parse_line,
    split_utf8,
    strip_formatting,
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _decode_all(decoder: LineDecoder, chunks: list[bytes]) -> list[bytes | str]:
    out: list[bytes | str] = []
    for chunk in chunks:
        decoder.feed(chunk)
        while True:
            try:
                line = decoder.next_line()
            except LineTooLong:
                out.append("too long")
                continue
            if line is None:
                break
            out.append(line)
    return out


def test_parse_line_with_tags_source_and_trailing() -> None:
    message = parse_line(rb"@label=a\sb;msgid=x :nick!u@h PRIVMSG #lobby :hello there")
    assert message == IrcMessage("PRIVMSG", ("#lobby", "hello there"), "nick!u@h",
                                 {"label": "a b", "msgid": "x"})


def test_command_is_upper_cased_and_blank_line_is_none() -> None:
    assert parse_line(b"privmsg bob hi") == IrcMessage("PRIVMSG", ("bob", "hi"))
    assert parse_line(b"   ") is None


def test_trailing_may_be_empty_or_hold_colons() -> None:
    assert parse_line(b"TOPIC #a :").params == ("#a", "")  # type: ignore[union-attr]
    assert parse_line(b"PRIVMSG #a ::-) x").params == ("#a", ":-) x")  # type: ignore[union-attr]


def test_non_utf8_line_is_refused_as_bad_frame() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_line(b"PRIVMSG #a :caf\xe9")
    assert caught.value.code is ErrorCode.BAD_FRAME


def test_decoder_accepts_crlf_and_bare_lf() -> None:
    decoder = LineDecoder()
    assert _decode_all(decoder, [b"NICK a\r\nUSER b 0 * :c\nPING x\r"]) == [
        b"NICK a", b"USER b 0 * :c"]
    assert _decode_all(decoder, [b"\n"]) == [b"PING x"]


def test_too_long_line_is_reported_once_and_the_stream_resumes() -> None:
    decoder = LineDecoder(max_bytes=20)
    got = _decode_all(decoder, [b"A" * 30, b"B" * 30, b"\r\nPING ok\r\n"])
    assert got == ["too long", b"PING ok"]


def test_format_line_uses_a_trailing_parameter_only_when_needed() -> None:
    assert format_line(IrcMessage("PRIVMSG", ("#a", "hi"), "n!u@h")) == b":n!u@h PRIVMSG #a hi\r\n"
    assert format_line(IrcMessage("PRIVMSG", ("#a", "hi you"))) == b"PRIVMSG #a :hi you\r\n"
    assert format_line(IrcMessage("X", ("",))) == b"X :\r\n"
    assert format_line(IrcMessage("X", (":)",))) == b"X ::)\r\n"


def test_format_line_escapes_tag_values() -> None:
    line = format_line(IrcMessage("ACK", (), None, {"label": "a;b c\\"}))
    assert line == b"@label=a\\:b\\sc\\\\ ACK\r\n"
    assert parse_line(line[:-2]).tags == {"label": "a;b c\\"}  # type: ignore[union-attr]


def test_split_utf8_never_cuts_a_character() -> None:
    assert split_utf8("é" * 5, 4) == ["éé", "éé", "é"]
    assert split_utf8("", 10) == []


def test_strip_formatting_removes_bold_colors_and_reset() -> None:
    assert strip_formatting("\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f") == "bold red italic"


# -- properties ---------------------------------------------------------------

_word = st.text(st.characters(blacklist_characters=" \r\n\0:", blacklist_categories=("Cs",)),
                min_size=1, max_size=20)
_trailing = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)),
                    max_size=40)
_tag_key = st.from_regex(r"[a-z][a-z0-9/+.-]{0,10}", fullmatch=True)
_tag_value = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                     min_size=1, max_size=20)


@st.composite
def messages(draw: st.DrawFn) -> IrcMessage:
    command = draw(st.from_regex(r"[A-Z]{1,10}|[0-9]{3}", fullmatch=True))
    params = draw(st.lists(_word, max_size=5))
    if draw(st.booleans()):
        params.append(draw(_trailing))
    source = draw(st.none() | _word)
    tags = draw(st.dictionaries(_tag_key, _tag_value, max_size=4))
    return IrcMessage(command, tuple(params), source, tags)


@given(messages())
def test_format_then_parse_round_trips(message: IrcMessage) -> None:
    assert parse_line(format_line(message)[:-2]) == message


@given(st.lists(messages(), min_size=1, max_size=8), st.lists(st.integers(0, 2000), max_size=12))
def test_any_split_of_the_stream_gives_the_same_lines(
    sent: list[IrcMessage], cuts: list[int]
) -> None:
    stream = b"".join(format_line(m) for m in sent)
    lines = _decode_all(LineDecoder(), _chunks(stream, cuts))
    assert [parse_line(line) for line in lines if isinstance(line, bytes)] == sent


@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=10))
def test_any_bytes_give_lines_or_protocol_errors_only(data: bytes, cuts: list[int]) -> None:
    decoder = LineDecoder(max_bytes=MAX_LINE_BYTES)
    for line in _decode_all(decoder, _chunks(data, cuts)):
        if isinstance(line, bytes):
            assert b"\n" not in line and len(line) <= MAX_LINE_BYTES
            try:
                parse_line(line)
            except RemoteProtocolError as exc:
                assert exc.code is ErrorCode.BAD_FRAME


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
       st.integers(4, 64))
def test_split_utf8_pieces_fit_and_join_back(text: str, budget: int) -> None:
    pieces = split_utf8(text, budget)
    assert "".join(pieces) == text
    assert all(0 < len(p.encode()) <= budget for p in pieces)
