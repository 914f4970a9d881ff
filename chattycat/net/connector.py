"""Outbound connections: a non-blocking connect (and TLS handshake) with a timeout."""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from typing import Any

from chattycat.net.loop import EventLoop
from chattycat.net.tls import TLSEngine
from chattycat.net.transport import Protocol, Transport, set_nodelay

__all__ = ["Connector", "connect"]

logger = logging.getLogger("chattycat.net.transport")


class Connector:
    """An outbound connection attempt; ``cancel()`` abandons it."""

    def __init__(
        self,
        loop: EventLoop,
        protocol: Protocol,
        host: str,
        port: int,
        *,
        timeout_s: float,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
    ) -> None:
        self._loop = loop
        self._protocol = protocol
        self._host, self._port = host, port
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname if server_hostname is not None else host
        self._done = False
        self._sock: socket.socket | None = None
        self._transport: Transport | None = None
        self._addresses: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self._last_error: OSError | None = None
        self._deadline = loop.time() + timeout_s
        self._timer = loop.call_at(self._deadline, self._timed_out, timeout_s)
        loop.call_soon(self._start)

    def cancel(self) -> None:
        """Abandon the attempt (no further callbacks); a no-op once connected."""
        if self._done:
            return
        self._finish()
        if self._transport is not None:
            self._transport.abort()  # still handshaking: closes without callbacks

    def _start(self) -> None:
        if self._done:
            return
        try:
            # Blocking, but instant for numeric addresses and "localhost".
            infos = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
        except OSError as exc:
            self._fail(exc)
            return
        self._addresses = [(info[0], info[1], info[2], info[4]) for info in infos]
        self._try_next_address()

    def _try_next_address(self) -> None:
        while self._addresses:
            family, type_, proto, address = self._addresses.pop(0)
            try:
                sock = socket.socket(family, type_, proto)
            except OSError as exc:  # e.g. IPv6 disabled on this host
                self._last_error = exc
                continue
            sock.setblocking(False)
            err = sock.connect_ex(address)
            if err in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EINTR):
                self._sock = sock
                self._loop.add_writer(sock, self._on_connect_ready, address)
                return
            sock.close()
            self._last_error = OSError(err, f"connect to {address}: {os.strerror(err)}")
        self._fail(self._last_error or OSError(f"no address for {self._host!r}"))

    def _on_connect_ready(self, address: tuple[Any, ...]) -> None:
        sock = self._sock
        assert sock is not None
        self._loop.remove_writer(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self._sock = None
            self._last_error = OSError(err, f"connect to {address}: {os.strerror(err)}")
            self._try_next_address()
            return
        set_nodelay(sock)
        self._sock = None  # the transport owns it now
        if self._ssl_context is None:
            self._finish()
            Transport(self._loop, sock, lambda: self._protocol)
            return
        tls = TLSEngine(self._ssl_context, False, self._server_hostname)
        self._transport = Transport(
            self._loop, sock, self._handshake_done, tls=tls, on_handshake_failed=self._fail
        )

    def _handshake_done(self) -> Protocol:
        self._finish()
        return self._protocol

    def _timed_out(self, timeout_s: float) -> None:
        self._fail(TimeoutError(f"connect to {self._host}:{self._port} timed out after "
                                f"{timeout_s} s"))

    def _finish(self) -> None:
        self._done = True
        self._timer.cancel()
        if self._sock is not None:
            self._loop.remove_writer(self._sock)
            self._sock.close()
            self._sock = None

    def _fail(self, exc: BaseException) -> None:
        if self._done:
            return
        self._finish()
        if self._transport is not None:
            self._transport.abort()
        try:
            self._protocol.connection_failed(exc)
        except Exception:
            logger.exception("protocol.connection_failed() failed")


def connect(
    loop: EventLoop,
    protocol: Protocol,
    host: str,
    port: int,
    *,
    timeout_s: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Connector:
    """Connect to ``host``:``port`` without blocking (name resolution excepted).

    On success ``protocol.connection_made(transport)`` (after the TLS handshake);
    on failure or timeout ``protocol.connection_failed(exc)``.
    """
    return Connector(loop, protocol, host, port, timeout_s=timeout_s,
                     ssl_context=ssl_context, server_hostname=server_hostname)
