"""TLS transports: handshake, data, verification failures, timeouts, clean close."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import time
from collections.abc import Iterator

import pytest
import trustme

from chattycat.net.connector import connect
from chattycat.net.listener import listen
from chattycat.net.loop import EventLoop
from chattycat.net.transport import Protocol, Transport
from tests.net.test_transport import Echo, Flooder, HashingSink, Producer, Recorder, collect


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_tls_echo_round_trip(
    loop: EventLoop, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    servers: list[Recorder] = []
    listener = listen(loop, collect(servers, Echo), "127.0.0.1", 0,
                      ssl_context=server_context)
    port = listener.addresses()[0][1]
    client = Recorder()
    connect(loop, client, "127.0.0.1", port, ssl_context=client_context,
            server_hostname="localhost", timeout_s=5)
    assert loop.run_until(lambda: client.transport is not None, timeout_s=5)
    assert client.transport is not None
    for line in (b"secret ", b"meow ", b"purr"):
        client.transport.write(line)
    assert loop.run_until(lambda: client.received == b"secret meow purr", timeout_s=5)
    assert isinstance(client.transport.get_extra_info("ssl_object"), ssl.SSLObject)
    assert client.transport.get_extra_info("cipher") is not None
    peercert = client.transport.get_extra_info("peercert")
    assert isinstance(peercert, dict) and ("DNS", "localhost") in peercert["subjectAltName"]
    # Clean close: close_notify reaches the server as an EOF, both sides see None.
    client.transport.close()
    assert loop.run_until(lambda: bool(servers[0].lost) and bool(client.lost), timeout_s=5)
    assert servers[0].eof and servers[0].lost == [None] and client.lost == [None]
    listener.close()


def test_tls_big_transfer_with_flow_control(
    loop: EventLoop, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    total = 8 * 1024 * 1024
    sinks: list[HashingSink] = []
    listener = listen(loop, collect(sinks, lambda: HashingSink(loop, 0.1)),
                      "127.0.0.1", 0, ssl_context=server_context)
    producer = Producer(total)
    connect(loop, producer, "127.0.0.1", listener.addresses()[0][1],
            ssl_context=client_context, server_hostname="localhost", timeout_s=5)
    assert loop.run_until(lambda: bool(sinks) and sinks[0].eof, timeout_s=20)
    assert sinks[0].count == total
    assert sinks[0].digest.hexdigest() == producer.digest.hexdigest()
    assert producer.pauses >= 1 and producer.resumes >= 1
    listener.close()


def test_server_data_written_in_connection_made_arrives(
    loop: EventLoop, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    payload = os.urandom(300_000)

    class Greeter(Recorder):
        def connection_made(self, transport: Transport) -> None:
            transport.write(payload)
            transport.close()

    listener = listen(loop, Greeter, "127.0.0.1", 0, ssl_context=server_context)
    client = Recorder()
    connect(loop, client, "127.0.0.1", listener.addresses()[0][1],
            ssl_context=client_context, server_hostname="localhost", timeout_s=5)
    assert loop.run_until(lambda: client.eof, timeout_s=5)
    assert hashlib.sha256(client.received).digest() == hashlib.sha256(payload).digest()
    listener.close()


def test_silent_plain_client_is_dropped_after_the_handshake_timeout(
    loop: EventLoop, server_context: ssl.SSLContext
) -> None:
    made: list[Protocol] = []
    listener = listen(loop, collect(made, Recorder), "127.0.0.1", 0,
                      ssl_context=server_context, ssl_handshake_timeout_s=0.3)
    raw = socket.create_connection(listener.addresses()[0], timeout=5)
    raw.setblocking(False)
    begin = time.monotonic()

    def closed_by_server() -> bool:
        try:
            return raw.recv(100) == b""
        except BlockingIOError:
            return False

    assert loop.run_until(closed_by_server, timeout_s=5)
    assert 0.25 <= time.monotonic() - begin < 3
    assert made == []  # the protocol is never created
    raw.close()
    listener.close()


def test_client_verification_failure_reports_ssl_error(
    loop: EventLoop, server_context: ssl.SSLContext
) -> None:
    made: list[Protocol] = []
    listener = listen(loop, collect(made, Recorder), "127.0.0.1", 0,
                      ssl_context=server_context)
    untrusting = ssl.create_default_context()  # does not know our test CA
    client = Recorder()
    connect(loop, client, "127.0.0.1", listener.addresses()[0][1], ssl_context=untrusting,
            server_hostname="localhost", timeout_s=5)
    assert loop.run_until(lambda: client.failed is not None, timeout_s=5)
    assert isinstance(client.failed, ssl.SSLCertVerificationError)
    assert client.transport is None and client.lost == []
    loop.run_until(lambda: False, timeout_s=0.1)
    assert made == []
    listener.close()


def test_client_handshake_timeout_reports_timeout(
    loop: EventLoop, client_context: ssl.SSLContext
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the TCP handshake; nobody speaks TLS
    client = Recorder()
    connect(loop, client, "127.0.0.1", silent.getsockname()[1], ssl_context=client_context,
            server_hostname="localhost", timeout_s=0.3)
    assert loop.run_until(lambda: client.failed is not None, timeout_s=5)
    assert isinstance(client.failed, TimeoutError)
    assert client.transport is None
    silent.close()


class StopsReading(Recorder):
    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        assert isinstance(sock, socket.socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport.pause_reading()


def test_tls_peer_that_stops_reading_passes_the_hard_limit_once(
    loop: EventLoop, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    hard = 256 * 1024
    flooders: list[Flooder] = []
    listener = listen(loop, collect(flooders, lambda: Flooder(64 * 1024, 10**9, hard, False)),
                      "127.0.0.1", 0, ssl_context=server_context)
    client = StopsReading()
    connect(loop, client, "127.0.0.1", listener.addresses()[0][1], ssl_context=client_context,
            server_hostname="localhost", timeout_s=5)
    assert loop.run_until(lambda: bool(flooders) and bool(flooders[0].lost), timeout_s=20)
    assert flooders[0].overflows == 1
    assert isinstance(flooders[0].lost[0], ConnectionAbortedError)
    assert flooders[0].max_unsent <= hard + 64 * 1024 + 1024  # TLS record overhead
    listener.close()
