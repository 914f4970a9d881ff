"""Specification of the length-prefixed framing codec (PROTOCOL section 1).

A frame is a 4-byte unsigned big-endian length N followed by exactly N payload
bytes; a header announcing more than ``max_frame`` is fatal and must be caught
from the header alone. Like h11's and wsproto's own tests, the decoder is fed
whole streams, one byte at a time and in random splits, and must not care.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.errors import ErrorCode, FrameTooLarge, RemoteProtocolError
from chattycat.protocol.framing import (
    DEFAULT_MAX_FRAME_BYTES,
    HEADER_BYTES,
    FrameDecoder,
    encode_frame,
)
from tests.strategies import payload_lists

HEAVY = settings(max_examples=200, deadline=None)


def header(length: int) -> bytes:
    return struct.pack(">I", length)


def stream_of(payloads: Iterable[bytes]) -> bytes:
    return b"".join(encode_frame(p) for p in payloads)


def decode_all(chunks: Iterable[bytes], max_frame: int = DEFAULT_MAX_FRAME_BYTES) -> list[bytes]:
    """Feed chunks one by one, draining complete payloads after each, as a server does."""
    decoder = FrameDecoder(max_frame)
    out: list[bytes] = []
    for chunk in chunks:
        decoder.feed(chunk)
        out.extend(decoder)
    assert decoder.buffered_bytes == 0
    return out


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points (empty chunks and one-byte chunks included)."""
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=len(data) + 2))
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def reference_decode(stream: bytes, max_frame: int) -> tuple[list[bytes], bool, int]:
    """A deliberately naive model: (payloads, whether the stream broke, bytes left over)."""
    payloads: list[bytes] = []
    pos = 0
    while len(stream) - pos >= HEADER_BYTES:
        (length,) = struct.unpack_from(">I", stream, pos)
        if length > max_frame:
            return payloads, True, 0
        if len(stream) - pos - HEADER_BYTES < length:
            break
        payloads.append(stream[pos + HEADER_BYTES : pos + HEADER_BYTES + length])
        pos += HEADER_BYTES + length
    return payloads, False, len(stream) - pos


# -- encoding -------------------------------------------------------------------


def test_encode_prefixes_payload_with_four_byte_big_endian_length() -> None:
    assert encode_frame(b"hi") == b"\x00\x00\x00\x02hi"
    assert encode_frame(b"x" * 0x0102) == b"\x00\x00\x01\x02" + b"x" * 0x0102


def test_encode_empty_payload_is_a_bare_zero_header() -> None:
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


@given(payload=st.binary(max_size=1000))
def test_encoded_frame_is_header_plus_payload_verbatim(payload: bytes) -> None:
    frame = encode_frame(payload)
    assert len(frame) == HEADER_BYTES + len(payload)
    assert int.from_bytes(frame[:HEADER_BYTES], "big") == len(payload)
    assert frame[HEADER_BYTES:] == payload


# -- decoding whole frames --------------------------------------------------------


def test_decoder_returns_none_until_a_frame_is_complete() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"hello")
    decoder.feed(frame[:-1])
    assert decoder.next_payload() is None
    decoder.feed(frame[-1:])
    assert decoder.next_payload() == b"hello"
    assert decoder.next_payload() is None


def test_partial_header_is_buffered_not_decoded() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00")
    assert decoder.next_payload() is None
    assert decoder.buffered_bytes == 3


def test_empty_payload_frame_decodes_to_empty_bytes() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"") + encode_frame(b"after"))
    assert list(decoder) == [b"", b"after"]


def test_many_frames_in_one_feed_come_out_in_order_and_leave_nothing_buffered() -> None:
    payloads = [str(i).encode() * i for i in range(50)]
    decoder = FrameDecoder()
    decoder.feed(stream_of(payloads))
    assert list(decoder) == payloads
    assert decoder.buffered_bytes == 0


def test_buffered_bytes_counts_the_incomplete_tail_only() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"abc") + encode_frame(b"defgh")[:6])
    assert list(decoder) == [b"abc"]
    assert decoder.buffered_bytes == 6


def test_feed_accepts_bytearray_and_memoryview() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"payload")
    decoder.feed(bytearray(frame[:5]))
    decoder.feed(memoryview(frame)[5:])
    assert list(decoder) == [b"payload"]


def test_length_header_is_unsigned() -> None:
    # 0x80000000 read as signed would be negative and slip under any limit.
    decoder = FrameDecoder(max_frame=2**32 - 1)
    decoder.feed(b"\x80\x00\x00\x00")
    assert decoder.next_payload() is None
    small = FrameDecoder(max_frame=DEFAULT_MAX_FRAME_BYTES)
    small.feed(b"\x80\x00\x00\x00")
    with pytest.raises(FrameTooLarge) as caught:
        small.next_payload()
    assert caught.value.length == 2**31


def test_default_max_frame_is_65536() -> None:
    assert FrameDecoder().max_frame == DEFAULT_MAX_FRAME_BYTES == 65536


@pytest.mark.parametrize("max_frame", [-1, 2**32])
def test_max_frame_outside_what_a_header_can_say_is_rejected(max_frame: int) -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame)


# -- the max_frame limit --------------------------------------------------------------


@pytest.mark.parametrize("max_frame", [0, 1, 100, DEFAULT_MAX_FRAME_BYTES])
def test_frame_of_exactly_max_frame_bytes_is_accepted(max_frame: int) -> None:
    decoder = FrameDecoder(max_frame)
    decoder.feed(encode_frame(b"m" * max_frame))
    assert list(decoder) == [b"m" * max_frame]


@pytest.mark.parametrize("max_frame", [0, 1, 100, DEFAULT_MAX_FRAME_BYTES])
def test_frame_of_max_frame_plus_one_bytes_raises_frame_too_large(max_frame: int) -> None:
    decoder = FrameDecoder(max_frame)
    decoder.feed(encode_frame(b"m" * (max_frame + 1)))
    with pytest.raises(FrameTooLarge) as caught:
        decoder.next_payload()
    assert caught.value.length == max_frame + 1
    assert caught.value.max_frame == max_frame


@pytest.mark.parametrize("announced", [DEFAULT_MAX_FRAME_BYTES + 1, 2**31, 2**32 - 1])
def test_header_over_max_frame_raises_frame_too_large_before_payload(announced: int) -> None:
    decoder = FrameDecoder()
    decoder.feed(header(announced))  # not one byte of the payload
    with pytest.raises(FrameTooLarge):
        decoder.next_payload()
    assert decoder.buffered_bytes <= HEADER_BYTES


def test_frame_too_large_is_a_fatal_remote_error_with_its_wire_code() -> None:
    decoder = FrameDecoder(max_frame=10)
    decoder.feed(header(11))
    with pytest.raises(RemoteProtocolError) as caught:
        decoder.next_payload()
    error = caught.value
    assert isinstance(error, FrameTooLarge)
    assert error.code is ErrorCode.FRAME_TOO_LARGE
    assert error.fatal  # PROTOCOL 1: the server closes the connection after it
    assert "11" in error.message and "10" in error.message


def test_frames_before_an_oversized_header_are_still_delivered() -> None:
    decoder = FrameDecoder(max_frame=10)
    decoder.feed(encode_frame(b"ok") + header(11))
    assert decoder.next_payload() == b"ok"
    with pytest.raises(FrameTooLarge):
        decoder.next_payload()


def test_after_frame_too_large_decoder_keeps_raising_and_buffers_nothing() -> None:
    decoder = FrameDecoder(max_frame=10)
    decoder.feed(header(11))
    with pytest.raises(FrameTooLarge):
        decoder.next_payload()
    # The stream cannot be resynchronised: even a valid frame is not decoded.
    for _ in range(3):
        decoder.feed(encode_frame(b"fine") + b"z" * 1000)
        assert decoder.buffered_bytes == 0
        with pytest.raises(FrameTooLarge):
            decoder.next_payload()
        with pytest.raises(FrameTooLarge):
            list(decoder)


def test_oversized_header_split_across_feeds_raises_once_complete() -> None:
    decoder = FrameDecoder(max_frame=10)
    for byte in header(1 << 30)[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_payload() is None
    decoder.feed(header(1 << 30)[-1:])
    with pytest.raises(FrameTooLarge):
        decoder.next_payload()


# -- properties ---------------------------------------------------------------------


@HEAVY
@given(payloads=payload_lists)
def test_decode_of_encode_is_identity(payloads: list[bytes]) -> None:
    assert decode_all([stream_of(payloads)]) == payloads


@given(payloads=payload_lists)
def test_stream_fed_one_byte_at_a_time_yields_the_same_payloads(payloads: list[bytes]) -> None:
    stream = stream_of(payloads)
    assert decode_all(stream[i : i + 1] for i in range(len(stream))) == payloads


@HEAVY
@given(data=st.data(), payloads=payload_lists)
def test_any_split_of_the_stream_yields_the_same_payloads(
    data: st.DataObject, payloads: list[bytes]
) -> None:
    chunks = data.draw(splits(stream_of(payloads)))
    assert decode_all(chunks) == payloads


@HEAVY
@given(data=st.data(), payloads=payload_lists)
def test_feeding_everything_before_reading_equals_reading_after_each_chunk(
    data: st.DataObject, payloads: list[bytes]
) -> None:
    decoder = FrameDecoder()
    for chunk in data.draw(splits(stream_of(payloads))):
        decoder.feed(chunk)
    assert list(decoder) == payloads


@HEAVY
@given(data=st.data(), stream=st.binary(max_size=600), max_frame=st.integers(0, 300))
def test_arbitrary_bytes_in_arbitrary_chunks_raise_nothing_but_frame_too_large(
    data: st.DataObject, stream: bytes, max_frame: int
) -> None:
    expected, breaks, left_over = reference_decode(stream, max_frame)
    decoder = FrameDecoder(max_frame)
    got: list[bytes] = []
    broke = False
    for chunk in data.draw(splits(stream)):
        decoder.feed(chunk)
        try:
            got.extend(decoder)
        except FrameTooLarge:
            broke = True
            with pytest.raises(FrameTooLarge):
                decoder.next_payload()
        assert all(len(p) <= max_frame for p in got)
    assert got == expected
    assert broke == breaks
    if not broke:
        assert decoder.buffered_bytes == left_over
