"""FramedProtocol: bytes in any chunking become the same payloads; an oversized frame ends it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chattycat.net.connector import connect
from chattycat.net.framed import FramedProtocol
from chattycat.net.listener import listen
from chattycat.net.loop import EventLoop
from chattycat.net.transport import Protocol, Transport
from chattycat.protocol.framing import FrameDecoder, encode_frame


class Collector(FramedProtocol[FrameDecoder]):
    """Remembers the payloads and oversized frames it was told about."""

    def __init__(self, max_frame: int = 65536) -> None:
        super().__init__(FrameDecoder(max_frame))
        self.payloads: list[bytes] = []
        self.too_large: list[int] = []

    def payload_received(self, payload: bytes) -> None:
        self.payloads.append(payload)

    def frame_too_large(self, length: int) -> None:
        self.too_large.append(length)


def split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    """``data`` cut at the given offsets (taken modulo its length, sorted)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(points):
        yield data[start:end]


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0), max_size=40),
)
def test_any_chunking_delivers_the_same_payloads_in_order(
    payloads: list[bytes], cuts: list[int]
) -> None:
    protocol = Collector()
    for chunk in split(b"".join(map(encode_frame, payloads)), cuts):
        protocol.data_received(chunk)
    assert protocol.payloads == payloads and protocol.too_large == []


def test_one_byte_at_a_time() -> None:
    protocol = Collector()
    stream = encode_frame(b"hello") + encode_frame(b"") + encode_frame(b"cat")
    for index in range(len(stream)):
        protocol.data_received(stream[index : index + 1])
    assert protocol.payloads == [b"hello", b"", b"cat"]


@given(
    before=st.lists(st.binary(max_size=10), max_size=5),
    length=st.integers(min_value=11, max_value=2**32 - 1),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_a_frame_too_large_is_reported_once_from_its_header_and_ends_the_stream(
    before: list[bytes], length: int, cuts: list[int]
) -> None:
    protocol = Collector(max_frame=10)
    header = length.to_bytes(4, "big")
    stream = b"".join(map(encode_frame, before)) + header + b"x" * 50 + encode_frame(b"after")
    for chunk in split(stream, cuts):
        protocol.data_received(chunk)
    protocol.data_received(encode_frame(b"later"))
    assert protocol.payloads == before
    assert protocol.too_large == [length]


def test_frame_of_exactly_max_frame_is_delivered() -> None:
    protocol = Collector(max_frame=10)
    protocol.data_received(encode_frame(b"0123456789"))
    assert protocol.payloads == [b"0123456789"] and protocol.too_large == []


def test_eof_closes_our_side_and_a_truncated_frame_is_never_delivered() -> None:
    protocol = Collector()
    protocol.data_received(encode_frame(b"whole") + encode_frame(b"cut short")[:-2])
    assert protocol.eof_received() is False
    assert protocol.payloads == [b"whole"]


class Echo(Collector):
    def payload_received(self, payload: bytes) -> None:
        super().payload_received(payload)
        assert self.transport is not None
        self.transport.write(encode_frame(payload.upper()))


class Client(Collector):
    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        transport.write(encode_frame(b"ping") + encode_frame(b"pong")[:3])
        transport.loop.call_soon(transport.write, encode_frame(b"pong")[3:])


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


def test_over_a_real_connection(loop: EventLoop) -> None:
    servers: list[Echo] = []

    def make() -> Protocol:
        servers.append(Echo())
        return servers[-1]

    listener = listen(loop, make, "127.0.0.1", 0)
    client = Client()
    connect(loop, client, "127.0.0.1", listener.addresses()[0][1], timeout_s=5)
    assert loop.run_until(lambda: len(client.payloads) == 2, timeout_s=5)
    assert client.payloads == [b"PING", b"PONG"]
    assert servers[0].payloads == [b"ping", b"pong"]
    assert servers[0].transport is not None
    listener.close()
