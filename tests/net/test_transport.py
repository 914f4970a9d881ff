"""Plain TCP transports over real sockets on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import os
import selectors
import socket
import struct
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from chattycat.net.connector import connect
from chattycat.net.listener import Listener, listen
from chattycat.net.loop import EventLoop
from chattycat.net.transport import Protocol, Transport


class Recorder(Protocol):
    """Remembers everything that happened to one connection."""

    def __init__(self) -> None:
        self.transport: Transport | None = None
        self.received = bytearray()
        self.eof = False
        self.lost: list[BaseException | None] = []
        self.failed: BaseException | None = None
        self.pauses = 0
        self.resumes = 0
        self.overflows = 0
        self.handles_overflow = False  # what write_buffer_overflow() returns

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data

    def eof_received(self) -> bool | None:
        self.eof = True
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)

    def connection_failed(self, exc: BaseException) -> None:
        self.failed = exc

    def pause_writing(self) -> None:
        self.pauses += 1

    def resume_writing(self) -> None:
        self.resumes += 1

    def write_buffer_overflow(self) -> bool:
        self.overflows += 1
        return self.handles_overflow


P = TypeVar("P", bound=Protocol)


def collect(into: list[P], factory: Callable[[], P]) -> Callable[[], Protocol]:
    """A protocol factory that also remembers every protocol it made."""

    def make() -> Protocol:
        protocol = factory()
        into.append(protocol)
        return protocol

    return make


class Echo(Recorder):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        assert self.transport is not None
        self.transport.write(data)


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


def serve(loop: EventLoop, factory: Callable[[], Protocol]) -> tuple[Listener, int]:
    listener = listen(loop, factory, "127.0.0.1", 0)
    return listener, listener.addresses()[0][1]


def open_client(loop: EventLoop, port: int, protocol: Recorder | None = None) -> Recorder:
    client = protocol or Recorder()
    connect(loop, client, "127.0.0.1", port, timeout_s=5)
    assert loop.run_until(lambda: client.transport is not None, timeout_s=5)
    return client


def served(servers: list[Recorder], loop: EventLoop, count: int = 1) -> list[Recorder]:
    assert loop.run_until(
        lambda: len(servers) >= count and all(s.transport for s in servers), timeout_s=5
    )
    return servers


def test_echo_round_trip(loop: EventLoop) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Echo))
    client = open_client(loop, port)
    assert client.transport is not None
    client.transport.write(b"hello, ")
    client.transport.write(bytearray(b"cat"))
    assert loop.run_until(lambda: client.received == b"hello, cat", timeout_s=5)
    server = served(servers, loop)[0]
    assert server.transport is not None
    sock = server.transport.get_extra_info("socket")
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assert server.transport.get_extra_info("peername") == client.transport.get_extra_info(
        "sockname"
    )
    assert server.transport.get_extra_info("ssl_object") is None
    client.transport.close()
    assert loop.run_until(lambda: bool(server.lost) and bool(client.lost), timeout_s=5)
    assert server.eof and server.lost == [None] and client.lost == [None]
    listener.close()


class Producer(Recorder):
    """Writes ``total`` bytes in distinct chunks, honouring pause/resume_writing.

    pause_writing() comes only after the end-of-pass flush, so the producer
    bounds each pass itself (up to the high-water mark) and yields to the loop.
    """

    CHUNK = 256 * 1024

    def __init__(self, total: int) -> None:
        super().__init__()
        self.remaining = total
        self.index = 0
        self.paused = False
        self.digest = hashlib.sha256()
        self.max_buffered = 0
        self.base = os.urandom(self.CHUNK)

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.produce()

    def produce(self) -> None:
        transport = self.transport
        assert transport is not None
        _low, high = transport.get_write_buffer_limits()
        while not self.paused and self.remaining > 0 and transport.get_write_buffer_size() <= high:
            chunk = struct.pack("!I", self.index) + self.base[4 : min(self.CHUNK, self.remaining)]
            self.index += 1
            self.remaining -= len(chunk)
            self.digest.update(chunk)
            transport.write(chunk)
            self.max_buffered = max(self.max_buffered, transport.get_write_buffer_size())
        if self.remaining == 0:
            transport.close()
        elif not self.paused:
            transport.loop.call_soon(self.produce)  # after this pass's flush has judged

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False
        self.produce()


class HashingSink(Recorder):
    """Hashes what arrives; reading is paused for a while after connecting."""

    def __init__(self, loop: EventLoop, pause_s: float) -> None:
        super().__init__()
        self.loop = loop
        self.pause_s = pause_s
        self.digest = hashlib.sha256()
        self.count = 0

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        transport.pause_reading()
        self.loop.call_later(self.pause_s, transport.resume_reading)

    def data_received(self, data: bytes) -> None:
        self.digest.update(data)
        self.count += len(data)


def test_50_megabytes_arrive_intact_with_flow_control(loop: EventLoop) -> None:
    total = 50 * 1024 * 1024
    sinks: list[HashingSink] = []
    listener, port = serve(loop, collect(sinks, lambda: HashingSink(loop, 0.3)))
    producer = Producer(total)
    connect(loop, producer, "127.0.0.1", port, timeout_s=5)
    assert loop.run_until(lambda: bool(sinks) and sinks[0].eof, timeout_s=20)
    sink = sinks[0]
    assert sink.count == total
    assert sink.digest.hexdigest() == producer.digest.hexdigest()
    assert producer.pauses >= 1 and producer.resumes >= 1
    assert producer.max_buffered <= 64 * 1024 + Producer.CHUNK
    assert loop.run_until(lambda: producer.lost == [None], timeout_s=5)
    listener.close()


def test_writes_in_one_pass_leave_in_one_system_call(loop: EventLoop) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Recorder))
    client = open_client(loop, port)
    transport = client.transport
    assert transport is not None
    calls: list[int] = []
    original = transport._send_buffers

    def counting_send(buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return original(buffers)

    transport._send_buffers = counting_send  # type: ignore[method-assign]
    messages = [f"line {i}\n".encode() for i in range(100)]

    def burst() -> None:
        for message in messages[:50]:
            transport.write(message)
        transport.writelines(messages[50:])
        assert transport.get_write_buffer_size() == sum(map(len, messages))

    loop.call_soon(burst)
    expected = b"".join(messages)
    served(servers, loop)
    assert loop.run_until(lambda: servers[0].received == expected, timeout_s=5)
    assert calls == [100]
    assert transport.get_write_buffer_size() == 0
    transport.write(b"")  # no empty writes reach the socket
    loop.run_until(lambda: False, timeout_s=0.05)
    assert calls == [100]
    listener.close()


def test_a_shared_frame_list_longer_than_iov_max_leaves_once_in_order(loop: EventLoop) -> None:
    # write_frames sends from the caller's list; past IOV_MAX buffers it goes
    # in several calls, and no call may send a buffer an earlier one sent.
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Recorder))
    client = open_client(loop, port)
    transport = client.transport
    assert transport is not None
    frames = [f"frame {i}\n".encode() for i in range(3 * 1024 + 17)]
    expected = b"".join(frames)
    loop.call_soon(transport.write_frames, frames)
    served(servers, loop)
    assert loop.run_until(lambda: len(servers[0].received) >= len(expected), timeout_s=5)
    loop.run_until(lambda: False, timeout_s=0.05)  # anything sent twice would follow
    assert bytes(servers[0].received) == expected
    assert transport.get_write_buffer_size() == 0
    listener.close()


def test_close_flushes_pending_output(loop: EventLoop) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Recorder))
    client = open_client(loop, port)
    assert client.transport is not None
    payload = os.urandom(4 * 1024 * 1024)
    client.transport.write(payload)
    client.transport.close()
    assert client.transport.is_closing()
    client.transport.write(b"ignored after close")
    served(servers, loop)
    assert loop.run_until(lambda: servers[0].eof, timeout_s=10)
    assert bytes(servers[0].received) == payload
    assert loop.run_until(lambda: client.lost == [None], timeout_s=5)
    listener.close()


def test_close_gives_up_on_a_peer_that_never_reads_after_its_timeout(loop: EventLoop) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Recorder))
    client = open_client(loop, port)
    assert client.transport is not None
    served(servers, loop)
    assert servers[0].transport is not None
    servers[0].transport.pause_reading()  # the peer stops reading: nothing drains
    client.transport.write(b"x" * (64 * 1024 * 1024))
    started = loop.time()
    client.transport.close(timeout_s=0.3)
    assert loop.run_until(lambda: bool(client.lost), timeout_s=5)
    assert isinstance(client.lost[0], TimeoutError)
    assert loop.time() - started < 3
    listener.close()


def test_abort_discards_pending_output(loop: EventLoop) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Recorder))
    client = open_client(loop, port)
    assert client.transport is not None
    client.transport.write(b"x" * 1_000_000)
    client.transport.abort()
    assert client.transport.get_write_buffer_size() == 0
    served(servers, loop)
    assert loop.run_until(lambda: bool(servers[0].lost), timeout_s=5)
    assert servers[0].received == b""
    assert client.lost == [None]
    listener.close()


class WritesALot(Recorder):
    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        transport.write(b"z" * (32 * 1024 * 1024))


class ResetsAfterFirstData(Recorder):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        assert self.transport is not None
        if not self.transport.is_closing():
            sock = self.transport.get_extra_info("socket")
            assert isinstance(sock, socket.socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()


def test_peer_reset_mid_write_loses_only_that_connection(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, WritesALot))
    resetter = open_client(loop, port, ResetsAfterFirstData())
    with caplog.at_level(logging.DEBUG, logger="chattycat.net.transport"):
        assert loop.run_until(lambda: bool(servers) and bool(servers[0].lost), timeout_s=10)
    assert isinstance(servers[0].lost[0], OSError)
    assert resetter.lost == [None]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The loop and the listener carry on.
    echo_listener, echo_port = serve(loop, Echo)
    client = open_client(loop, echo_port)
    assert client.transport is not None
    client.transport.write(b"still alive")
    assert loop.run_until(lambda: client.received == b"still alive", timeout_s=5)
    listener.close()
    echo_listener.close()


def test_write_interest_is_registered_only_while_output_is_pending(loop: EventLoop) -> None:
    sinks: list[HashingSink] = []
    listener, port = serve(loop, collect(sinks, lambda: HashingSink(loop, 3600)))
    client = open_client(loop, port)
    transport = client.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    assert isinstance(sock, socket.socket)

    def mask() -> int:
        try:
            return loop._selector.get_key(sock).events
        except KeyError:
            return 0

    loop.run_until(lambda: bool(sinks) and sinks[0].transport is not None, timeout_s=5)
    assert mask() == selectors.EVENT_READ
    transport.write(b"w" * (16 * 1024 * 1024))  # far more than the socket buffers hold
    assert loop.run_until(lambda: bool(mask() & selectors.EVENT_WRITE), timeout_s=5)
    assert 0 < transport.get_write_buffer_size() < 16 * 1024 * 1024
    sink_transport = sinks[0].transport
    assert sink_transport is not None
    sink_transport.resume_reading()
    assert loop.run_until(lambda: transport.get_write_buffer_size() == 0, timeout_s=10)
    assert mask() == selectors.EVENT_READ
    listener.close()


def test_connect_refused_reports_connection_failed(loop: EventLoop) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Recorder()
    connect(loop, client, "127.0.0.1", port, timeout_s=5)
    assert loop.run_until(lambda: client.failed is not None, timeout_s=5)
    assert isinstance(client.failed, ConnectionRefusedError)
    assert client.transport is None and client.lost == []


def test_connect_timeout_reports_connection_failed(loop: EventLoop) -> None:
    # A listener whose accept queue is full: Linux drops further SYNs, so the
    # connection attempt hangs until our timeout fires.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(0)
    port = blocker.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    client = Recorder()
    connect(loop, client, "127.0.0.1", port, timeout_s=0.3)
    try:
        assert loop.run_until(lambda: client.failed is not None, timeout_s=5)
        if client.transport is not None:
            pytest.skip("this kernel accepted past the backlog")
        assert isinstance(client.failed, TimeoutError)
    finally:
        for filler in fillers:
            filler.close()
        blocker.close()


def test_connect_can_be_cancelled(loop: EventLoop) -> None:
    listener, port = serve(loop, Recorder)
    client = Recorder()
    connect(loop, client, "127.0.0.1", port, timeout_s=0.1).cancel()
    loop.run_until(lambda: False, timeout_s=0.2)
    assert client.transport is None and client.failed is None
    listener.close()


def test_listener_addresses_report_the_chosen_port(loop: EventLoop) -> None:
    listener = listen(loop, Recorder, "127.0.0.1", 0)
    [(host, port)] = listener.addresses()
    assert host == "127.0.0.1" and port > 0
    everywhere = listen(loop, Recorder, None, 0)
    ports = {address[1] for address in everywhere.addresses()}
    assert len(ports) == 1 and 0 not in ports
    with pytest.raises(OSError, match=str(port)):
        listen(loop, Recorder, "127.0.0.1", port, reuse_address=False)
    listener.close()
    everywhere.close()


def test_ipv6_listener(loop: EventLoop) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        listener = listen(loop, Echo, "::1", 0)
    except OSError:
        pytest.skip("::1 not available")
    host, port = listener.addresses()[0]
    assert host == "::1"
    client = Recorder()
    connect(loop, client, "::1", port, timeout_s=5)
    assert loop.run_until(lambda: client.transport is not None, timeout_s=5)
    assert client.transport is not None
    client.transport.write(b"v6")
    assert loop.run_until(lambda: client.received == b"v6", timeout_s=5)
    listener.close()


def test_listener_close_leaves_existing_connections_alone(loop: EventLoop) -> None:
    listener, port = serve(loop, Echo)
    client = open_client(loop, port)
    listener.close()
    assert client.transport is not None
    client.transport.write(b"after listener close")
    assert loop.run_until(lambda: client.received == b"after listener close", timeout_s=5)
    refused = Recorder()
    connect(loop, refused, "127.0.0.1", port, timeout_s=5)
    assert loop.run_until(lambda: refused.failed is not None, timeout_s=5)


class ReplyAndClose(Recorder):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        assert self.transport is not None
        self.transport.write(b"reply:" + data)
        self.transport.close()
        self.transport.write(b"dropped")
        assert self.lost == []  # never re-entrant


class AbortOnConnect(Recorder):
    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        transport.write(b"never sent")
        transport.abort()
        assert self.lost == []


def test_protocol_may_write_and_close_inside_data_received(loop: EventLoop) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, ReplyAndClose))
    client = open_client(loop, port)
    assert client.transport is not None
    client.transport.write(b"ping")
    assert loop.run_until(lambda: client.eof, timeout_s=5)
    assert client.received == b"reply:ping"
    assert loop.run_until(lambda: servers[0].lost == [None], timeout_s=5)
    listener.close()


def test_protocol_may_abort_inside_connection_made(loop: EventLoop) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, AbortOnConnect))
    client = open_client(loop, port)
    assert loop.run_until(lambda: bool(client.lost), timeout_s=5)
    assert client.received == b""
    assert servers[0].lost == [None]
    listener.close()


class HalfClose(Recorder):
    def eof_received(self) -> bool:
        super().eof_received()
        assert self.transport is not None
        self.transport.write(b"got " + bytes(self.received))
        self.transport.close()
        return True


def test_eof_received_returning_true_keeps_the_write_side_open(loop: EventLoop) -> None:
    listener, port = serve(loop, HalfClose)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(b"question")
    raw.shutdown(socket.SHUT_WR)
    chunks = []
    raw.setblocking(False)

    def answered() -> bool:
        try:
            chunk = raw.recv(100)
        except BlockingIOError:
            return False
        chunks.append(chunk)
        return chunk == b""

    assert loop.run_until(answered, timeout_s=5)
    assert b"".join(chunks) == b"got question"
    raw.close()
    listener.close()


class Broken(Recorder):
    def data_received(self, data: bytes) -> None:
        raise RuntimeError("protocol bug")


def test_exception_in_data_received_aborts_only_that_connection(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Broken))
    client = open_client(loop, port)
    assert client.transport is not None
    with caplog.at_level(logging.ERROR):
        client.transport.write(b"trigger")
        assert loop.run_until(lambda: bool(servers) and bool(servers[0].lost), timeout_s=5)
    assert isinstance(servers[0].lost[0], RuntimeError)
    assert "protocol bug" in caplog.text
    assert loop.run_until(lambda: bool(client.lost), timeout_s=5)
    listener.close()


# -- flow control: judged after a send attempt -----------------------------------------


class FakeKernel:
    """Stands in for the socket's send buffer: takes up to ``room`` bytes, then EAGAIN."""

    def __init__(self, transport: Transport, room: int) -> None:
        self.room = room
        self.calls = 0
        transport._send_buffers = self.send  # type: ignore[method-assign]

    def send(self, buffers: list[memoryview]) -> int:
        self.calls += 1
        if self.room == 0:
            raise BlockingIOError
        taken = min(sum(map(len, buffers)), self.room)
        self.room -= taken
        return taken


def connected_pair(loop: EventLoop) -> tuple[Listener, Recorder, Recorder]:
    servers: list[Recorder] = []
    listener, port = serve(loop, collect(servers, Recorder))
    client = open_client(loop, port)
    return listener, client, served(servers, loop)[0]


def test_pause_is_judged_after_the_flush_not_on_what_the_pass_queued(loop: EventLoop) -> None:
    listener, client, _server = connected_pair(loop)
    transport = client.transport
    assert transport is not None
    transport.set_write_buffer_limits(high=64 * 1024)
    kernel = FakeKernel(transport, room=10**9)
    during: list[int] = []
    after: list[tuple[int, int]] = []

    def burst() -> None:
        transport.write(b"a" * (256 * 1024))  # four times the high-water mark...
        during.append(client.pauses)  # ...and no pause while it is merely queued
        # Queued after the flush (scheduled by the first write), so it runs after it.
        loop.call_before_poll(
            lambda: after.append((client.pauses, transport.get_write_buffer_size()))
        )

    loop.call_soon(burst)
    assert loop.run_until(lambda: bool(after), timeout_s=5)
    assert during == [0] and after == [(0, 0)]  # the kernel took it all: never paused
    assert kernel.calls == 1

    kernel.room = 32 * 1024  # now the peer takes only 32 KiB of the next burst
    after.clear()
    loop.call_soon(burst)
    assert loop.run_until(lambda: bool(after), timeout_s=5)
    assert after == [(1, 224 * 1024)]  # paused by what the flush left, right after it
    kernel.room = 10**9  # the peer catches up: the writable callback drains and resumes
    assert loop.run_until(lambda: client.resumes == 1, timeout_s=5)
    assert transport.get_write_buffer_size() == 0 and client.pauses == 1
    listener.close()


def test_hard_limit_is_judged_after_the_flush_and_aborts_by_default(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    listener, client, server = connected_pair(loop)
    transport = client.transport
    assert transport is not None
    transport.set_write_buffer_limits(high=64 * 1024, hard=128 * 1024)
    assert transport.get_write_buffer_hard_limit() == 128 * 1024
    FakeKernel(transport, room=64 * 1024)
    during: list[int] = []

    def burst() -> None:
        transport.write(b"h" * (192 * 1024 + 1))  # over the hard limit only while queued
        during.append(client.overflows)

    with caplog.at_level(logging.INFO, logger="chattycat.net.transport"):
        loop.call_soon(burst)
        assert loop.run_until(lambda: bool(client.lost), timeout_s=5)
    assert during == [0]
    assert client.overflows == 1
    assert isinstance(client.lost[0], ConnectionAbortedError)
    assert [r.getMessage() for r in caplog.records if "hard limit" in r.getMessage()] == [
        f"{transport!r}: {128 * 1024 + 1} bytes unsent, over the hard limit of {128 * 1024}: "
        "aborting"
    ]
    assert loop.run_until(lambda: bool(server.lost), timeout_s=5)
    listener.close()


def test_a_burst_the_kernel_takes_does_not_reach_the_hard_limit(loop: EventLoop) -> None:
    listener, client, _server = connected_pair(loop)
    transport = client.transport
    assert transport is not None
    transport.set_write_buffer_limits(high=64 * 1024, hard=128 * 1024)
    FakeKernel(transport, room=10**9)
    transport.write(b"h" * (1024 * 1024))  # eight times the hard limit, all taken at once
    loop.run_until(lambda: False, timeout_s=0.05)
    assert client.overflows == 0 and client.pauses == 0 and client.lost == []
    listener.close()


def test_hard_limit_below_the_high_water_mark_is_refused(loop: EventLoop) -> None:
    listener, client, _server = connected_pair(loop)
    assert client.transport is not None
    with pytest.raises(ValueError, match="hard"):
        client.transport.set_write_buffer_limits(high=64 * 1024, hard=1024)
    client.transport.set_write_buffer_limits(high=64 * 1024, hard=None)
    assert client.transport.get_write_buffer_hard_limit() is None
    listener.close()


class Flooder(Recorder):
    """Writes ``chunk`` bytes every loop pass, pause or not (a chat room's fan-out)."""

    def __init__(self, chunk: int, total: int, hard: int, handles_overflow: bool) -> None:
        super().__init__()
        self.chunk = os.urandom(chunk)
        self.remaining = total
        self.hard = hard
        self.handles_overflow = handles_overflow
        self.max_unsent = 0

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=self.hard // 2, hard=self.hard)
        self.produce()

    def produce(self) -> None:
        transport = self.transport
        assert transport is not None
        if transport.is_closing() or self.remaining <= 0:
            return
        # What the previous pass's flush left plus this pass's chunk.
        self.max_unsent = max(self.max_unsent, transport.get_write_buffer_size())
        transport.write(self.chunk[: self.remaining])
        self.remaining -= len(self.chunk)
        transport.loop.call_soon(self.produce)

    def write_buffer_overflow(self) -> bool:
        super().write_buffer_overflow()
        if self.handles_overflow and self.transport is not None:
            self.transport.write(b"goodbye")  # accepted: the transport is still open
            self.transport.close(timeout_s=0.2)
        return self.handles_overflow


def stalled_peer(port: int) -> socket.socket:
    """A client that never reads, with a small receive window."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.mark.parametrize("handles_overflow", [False, True])
def test_a_peer_that_stops_reading_passes_the_hard_limit_once(
    loop: EventLoop, handles_overflow: bool
) -> None:
    hard = 256 * 1024
    flooders: list[Flooder] = []

    def make() -> Flooder:
        return Flooder(64 * 1024, 10**9, hard, handles_overflow)

    listener, port = serve(loop, collect(flooders, make))
    with stalled_peer(port):
        assert loop.run_until(lambda: bool(flooders) and bool(flooders[0].lost), timeout_s=20)
    flooder = flooders[0]
    assert flooder.overflows == 1
    if handles_overflow:
        assert isinstance(flooder.lost[0], TimeoutError)  # its own close() gave up
    else:
        assert isinstance(flooder.lost[0], ConnectionAbortedError)
    # Memory stays bounded: never more than the hard limit plus one pass's writes.
    assert flooder.max_unsent <= hard + 64 * 1024
    listener.close()


def test_a_peer_that_reads_never_reaches_the_hard_limit(loop: EventLoop) -> None:
    total = 32 * 1024 * 1024
    flooders: list[Flooder] = []
    listener, port = serve(loop, collect(flooders, lambda: Flooder(96 * 1024, total, 256 * 1024,
                                                                   False)))
    reader = open_client(loop, port)
    assert loop.run_until(lambda: len(reader.received) == total, timeout_s=20)
    assert flooders[0].overflows == 0 and flooders[0].lost == []
    listener.close()


def test_a_prompt_reader_of_a_burst_above_high_is_paused_only_if_the_flush_left_it(
    loop: EventLoop,
) -> None:
    # What is true: a burst bigger than the high-water mark pauses the producer
    # only if the kernel did not take it at the end of the pass. On loopback
    # with a reader that keeps up, that is normally never.
    listener, client, server = connected_pair(loop)
    transport = client.transport
    assert transport is not None
    transport.set_write_buffer_limits(high=64 * 1024)
    payload = os.urandom(1024 * 1024)
    left: list[int] = []

    def burst() -> None:
        transport.write(payload)
        loop.call_before_poll(lambda: left.append(transport.get_write_buffer_size()))

    loop.call_soon(burst)
    assert loop.run_until(lambda: len(server.received) == len(payload), timeout_s=10)
    assert bytes(server.received) == payload
    assert client.pauses == (1 if left[0] > 64 * 1024 else 0)
    assert client.resumes == client.pauses
    listener.close()
