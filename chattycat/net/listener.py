"""Listening sockets: accept connections and give each a Transport and a Protocol."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Sequence
from typing import Any

from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.tls import TLSEngine
from chattycat.net.transport import Protocol, Transport, set_nodelay

__all__ = ["Listener", "can_share_port", "listen", "reserve_port"]

logger = logging.getLogger("chattycat.net.transport")

ACCEPT_BATCH_MAX = 100
# When accept() fails for lack of descriptors or memory, retrying at once would spin:
# the listening socket stays readable. Stop watching it for a moment instead.
ACCEPT_RETRY_DELAY_S = 0.25
ACCEPT_WARNING_INTERVAL_S = 60.0
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Listener:
    """Listening sockets that make a Transport and Protocol per accepted connection."""

    def __init__(
        self,
        loop: EventLoop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], Protocol],
        *,
        backlog: int,
        ssl_context: ssl.SSLContext | None,
        ssl_handshake_timeout_s: float,
    ) -> None:
        self.sockets = sockets
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._accept_batch = max(1, min(backlog, ACCEPT_BATCH_MAX))
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout_s = ssl_handshake_timeout_s
        self._closed = False
        self._retry_timers: dict[int, TimerHandle] = {}
        self._last_warning_time = float("-inf")
        for sock in sockets:
            loop.add_reader(sock, self._on_acceptable, sock)

    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) pairs actually bound, e.g. to learn an OS-chosen port."""
        return [(sock.getsockname()[0], sock.getsockname()[1]) for sock in self.sockets]

    def close(self) -> None:
        """Stop accepting; existing transports are unaffected."""
        if self._closed:
            return
        self._closed = True
        for timer in self._retry_timers.values():
            timer.cancel()
        for sock in self.sockets:
            self._loop.remove_reader(sock)
            sock.close()

    def _on_acceptable(self, sock: socket.socket) -> None:
        # Accept a batch per wake-up: under a connection storm one accept per
        # select() would make the backlog overflow.
        for _ in range(self._accept_batch):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while queued; the next one may be fine
            except OSError as exc:
                self._back_off(sock, exc)
                return
            self._start_transport(conn)

    def _back_off(self, sock: socket.socket, exc: OSError) -> None:
        now = self._loop.time()
        recently_warned = now - self._last_warning_time < ACCEPT_WARNING_INTERVAL_S
        if exc.errno in _RESOURCE_ERRNOS and recently_warned:
            logger.debug("accept() still failing: %s", exc)
        elif exc.errno in _RESOURCE_ERRNOS:
            self._last_warning_time = now
            logger.warning(
                "accept() failed on %s: %s; pausing new connections for %s s "
                "(existing ones are still served; consider raising the open-files limit)",
                sock.getsockname(), exc.strerror, ACCEPT_RETRY_DELAY_S,
            )
        else:
            logger.error("accept() failed on %s", sock.getsockname(), exc_info=exc)
        self._loop.remove_reader(sock)
        self._retry_timers[sock.fileno()] = self._loop.call_later(
            ACCEPT_RETRY_DELAY_S, self._resume_accepting, sock
        )

    def _resume_accepting(self, sock: socket.socket) -> None:
        if not self._closed:
            self._loop.add_reader(sock, self._on_acceptable, sock)

    def _start_transport(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        set_nodelay(conn)
        tls = TLSEngine(self._ssl_context, True, None) if self._ssl_context is not None else None
        Transport(
            self._loop, conn, self._protocol_factory,
            tls=tls, handshake_timeout_s=self._ssl_handshake_timeout_s if tls else None,
        )


def listen(
    loop: EventLoop,
    protocol_factory: Callable[[], Protocol],
    host: str | Sequence[str] | None,
    port: int,
    *,
    backlog: int = 1024,
    ssl_context: ssl.SSLContext | None = None,
    ssl_handshake_timeout_s: float = 10.0,
    reuse_address: bool = True,
    reuse_port: bool = False,
) -> Listener:
    """Listen on ``host`` (None or "" = every interface, IPv4 and IPv6) and ``port``.

    Binding errors (address in use, permission denied) raise OSError right here.
    With port 0 the OS picks a port, and every socket shares it. With
    ``reuse_port`` other processes may listen on the same port (SO_REUSEPORT)
    and the kernel spreads new connections among them; OSError where the
    platform cannot share a port (see :func:`can_share_port`).
    """
    if reuse_port and not can_share_port():
        raise OSError(errno.ENOPROTOOPT, "this platform cannot share a listening port")
    hosts: list[str | None]
    if host is None or host == "":
        hosts = [None]
    elif isinstance(host, str):
        hosts = [host]
    else:
        hosts = list(host)
    wildcard = hosts == [None]
    infos = []
    for name in hosts:
        try:
            infos += socket.getaddrinfo(
                name, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise OSError(exc.errno, f"cannot resolve {name!r}: {exc.strerror}") from exc
    unique = {(info[0], info[4]): info for info in infos}.values()  # hosts may overlap
    sockets: list[socket.socket] = []
    try:
        for family, type_, proto, _canonname, sockaddr in unique:
            bound_port = sockets[0].getsockname()[1] if sockets and port == 0 else port
            address = (sockaddr[0], bound_port, *sockaddr[2:])
            sock = _bind_socket(family, type_, proto, address, reuse_address=reuse_address,
                                reuse_port=reuse_port, optional=wildcard and bool(sockets))
            if sock is not None:
                sock.listen(backlog)
                sock.setblocking(False)
                sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(errno.EADDRNOTAVAIL, f"no address to listen on for {host!r}")
    return Listener(loop, sockets, protocol_factory, backlog=backlog,
                    ssl_context=ssl_context, ssl_handshake_timeout_s=ssl_handshake_timeout_s)


def can_share_port() -> bool:
    """Whether several processes can listen on one port here (SO_REUSEPORT)."""
    # Windows has no SO_REUSEPORT; its SO_REUSEADDR would let any process
    # steal the port, which is not the same thing.
    return hasattr(socket, "SO_REUSEPORT") and sys.platform != "win32"


def reserve_port(host: str | None, port: int = 0) -> socket.socket:
    """A socket bound with SO_REUSEPORT but not listening: it holds a port for siblings.

    Processes that later listen with ``reuse_port=True`` on the same port
    share it; since this socket never listens, no connection is queued on it.
    ``host`` None means the IPv4 wildcard.
    """
    if not can_share_port():
        raise OSError(errno.ENOPROTOOPT, "this platform cannot share a listening port")
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)
    family, type_, proto, _canonname, sockaddr = infos[0]
    sock = _bind_socket(family, type_, proto, sockaddr, reuse_address=True,
                        reuse_port=True, optional=False)
    assert sock is not None  # not optional: failures raise
    return sock


def _bind_socket(
    family: int, type_: int, proto: int, address: tuple[Any, ...], *,
    reuse_address: bool, optional: bool, reuse_port: bool = False,
) -> socket.socket | None:
    """A bound socket; None if ``optional`` and the family is unavailable (IPv6 disabled)."""
    try:
        sock = socket.socket(family, type_, proto)
    except OSError as exc:
        if optional and exc.errno == errno.EAFNOSUPPORT:
            return None
        raise
    try:
        # On Windows SO_REUSEADDR lets another process steal the port; elsewhere it
        # only skips TIME_WAIT, so a restarted server can bind at once.
        if reuse_address and sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # One socket per family; without this, "::" would also grab IPv4 and
            # the IPv4 socket's bind would fail with EADDRINUSE.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if optional and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return None
        where = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
        raise OSError(exc.errno, f"cannot listen on {where}:{address[1]}: {exc.strerror}") from exc
    return sock
