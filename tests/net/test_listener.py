"""Listeners that share a port (SO_REUSEPORT), as ``serve --workers`` runs them."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from chattycat.net.listener import can_share_port, listen, reserve_port
from chattycat.net.loop import EventLoop
from chattycat.net.transport import Protocol, Transport

WAIT_S = 5.0
CONNECTIONS = 32

needs_reuse_port = pytest.mark.skipif(not can_share_port(),
                                      reason="this platform cannot share a port")


class Counting(Protocol):
    """Counts the connections a listener accepted."""

    def __init__(self, accepted: list[Transport]) -> None:
        self.accepted = accepted

    def connection_made(self, transport: Transport) -> None:
        self.accepted.append(transport)


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


@needs_reuse_port
def test_two_listeners_share_a_port_and_both_get_connections(loop: EventLoop) -> None:
    first: list[Transport] = []
    second: list[Transport] = []
    one = listen(loop, lambda: Counting(first), "127.0.0.1", 0, reuse_port=True)
    port = one.addresses()[0][1]
    two = listen(loop, lambda: Counting(second), "127.0.0.1", port, reuse_port=True)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
               for _ in range(CONNECTIONS)]
    try:
        assert loop.run_until(lambda: len(first) + len(second) == CONNECTIONS,
                              timeout_s=WAIT_S)
        # The kernel hashes each connection to one listener: with 32 of them,
        # both getting some fails by chance with probability 2**-31.
        assert first and second
    finally:
        for client in clients:
            client.close()
        for transport in first + second:
            transport.abort()
        one.close()
        two.close()


@needs_reuse_port
def test_a_port_in_use_without_reuse_port_is_still_refused(loop: EventLoop) -> None:
    one = listen(loop, Protocol, "127.0.0.1", 0, reuse_port=True)
    try:
        with pytest.raises(OSError) as raised:
            listen(loop, Protocol, "127.0.0.1", one.addresses()[0][1])
        assert raised.value.errno == errno.EADDRINUSE
    finally:
        one.close()


@needs_reuse_port
def test_a_reserved_port_takes_no_connections_but_listeners_can_share_it(
        loop: EventLoop) -> None:
    reserved = reserve_port("127.0.0.1")
    port = reserved.getsockname()[1]
    try:
        # Nothing listens yet: the port is held, yet connections are refused.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
        accepted: list[Transport] = []
        listener = listen(loop, lambda: Counting(accepted), "127.0.0.1", port,
                          reuse_port=True)
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S):
            assert loop.run_until(lambda: len(accepted) == 1, timeout_s=WAIT_S)
        accepted[0].abort()
        listener.close()
    finally:
        reserved.close()


def test_reuse_port_where_the_platform_cannot_share_a_port_is_an_error(
        loop: EventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chattycat.net.listener.can_share_port", lambda: False)
    with pytest.raises(OSError, match="cannot share a listening port"):
        listen(loop, Protocol, "127.0.0.1", 0, reuse_port=True)
    with pytest.raises(OSError, match="cannot share a listening port"):
        reserve_port("127.0.0.1")
