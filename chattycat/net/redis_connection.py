"""The connection both Redis clients share: connect, log in, read replies in order, reconnect.

See :mod:`chattycat.net.redis` for the clients and why they look as they do.
"""

from __future__ import annotations

import enum
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import hiredis

from chattycat.errors import RedisConnectionError, RedisReplyError
from chattycat.net.connector import Connector, connect
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.resp import Arg, RedisAddress, encode_command, parse_redis_url
from chattycat.net.transport import Protocol, Transport

__all__ = ["ConnectionState", "RedisConnection", "Reply", "Sink", "run_callback"]

logger = logging.getLogger("chattycat.net.redis")

Reply: TypeAlias = Any  # bytes | int | list | None | RedisReplyError | RedisConnectionError
Sink: TypeAlias = Callable[[Reply], None]
# hiredis returns this from gets() while a reply is incomplete (None is a reply: $-1).
_INCOMPLETE = object()


class ConnectionState(enum.Enum):
    """Where a Redis connection is in its life (it cycles IDLE -> ... -> UP -> IDLE)."""

    IDLE = "idle"  # not started, or waiting to retry
    CONNECTING = "connecting"  # TCP connect in progress
    HANDSHAKE = "handshake"  # connected; AUTH/SELECT/SETNAME (and SUBSCRIBE) unanswered
    UP = "up"
    CLOSED = "closed"


class _Link(Protocol):
    """One TCP connection's callbacks, forwarded to its owner while it is current."""

    def __init__(self, owner: RedisConnection) -> None:
        self.owner = owner
        self.transport: Transport | None = None

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self.owner._made(self)

    def data_received(self, data: bytes) -> None:
        self.owner._data(self, data)

    def eof_received(self) -> bool | None:
        self.owner._lost(self, RedisConnectionError("Redis closed the connection"))
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.owner._lost(self, _connection_error("connection lost", exc))

    def connection_failed(self, exc: BaseException) -> None:
        self.owner._lost(self, _connection_error("cannot connect", exc))


def _connection_error(what: str, exc: BaseException | None) -> RedisConnectionError:
    if isinstance(exc, RedisConnectionError):
        return exc
    error = RedisConnectionError(what if exc is None else f"{what}: {exc}")
    error.__cause__ = exc
    return error


class RedisConnection:
    """What both clients share: connect, log in, read replies in order, time out, reconnect."""

    def __init__(
        self,
        loop: EventLoop,
        address: RedisAddress | str,
        *,
        name: str,
        on_up: Callable[[], None] | None,
        on_down: Callable[[BaseException], None] | None,
        connect_timeout_s: float,
        reply_timeout_s: float,
        backoff_s: tuple[float, float],
        quiet: bool = False,
    ) -> None:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"a Redis client name cannot be empty or hold spaces: {name!r}")
        if not 0 < backoff_s[0] <= backoff_s[1]:
            raise ValueError(f"need 0 < min <= max backoff, got {backoff_s}")
        self._loop = loop
        self.address = parse_redis_url(address) if isinstance(address, str) else address
        self.name = name
        self.on_up = on_up
        self.on_down = on_down
        self._connect_timeout_s = connect_timeout_s
        self._reply_timeout_s = reply_timeout_s
        self._backoff_s = backoff_s
        # A second connection to the same Redis logs its outages at DEBUG: the
        # first one already told the operator, once.
        self._log_level = logging.DEBUG if quiet else logging.INFO
        self._delay_s = backoff_s[0]
        self._state = ConnectionState.IDLE
        self._in_outage = False  # on_down was called and on_up has not been since
        self._link: _Link | None = None
        self._connector: Connector | None = None
        self._retry: TimerHandle | None = None
        self._watchdog: TimerHandle | None = None
        self._reader = self._new_reader()
        self._waiting: deque[tuple[Sink, float]] = deque()  # (callback, time written)
        self._outgoing: list[bytes] = []  # commands of this pass, written at its end

    # -- public -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the connection is up (logged in and ready for commands)."""
        return self._state is ConnectionState.UP

    def pending(self) -> int:
        """Commands written and not answered yet (a pipeline of n counts n; the handshake too)."""
        return len(self._waiting)

    def start(self) -> None:
        """Connect without blocking; ``on_up()`` follows once ready."""
        if self._state is ConnectionState.CLOSED:
            raise RuntimeError("a closed Redis client cannot be started again")
        if self._state is ConnectionState.IDLE and self._retry is None:
            self._connect()

    def close(self) -> None:
        """Disconnect for good; outstanding commands fail with ``RedisConnectionError``."""
        if self._state is ConnectionState.CLOSED:
            return
        self._state = ConnectionState.CLOSED
        for timer in (self._retry, self._watchdog):
            if timer is not None:
                timer.cancel()
        self._drop_link()
        self._fail_waiting(RedisConnectionError("the Redis client was closed"))

    # -- for subclasses ---------------------------------------------------------------

    def _handshake(self) -> list[tuple[list[Arg], int]]:
        """The commands sent on every (re)connect, each with its number of replies."""
        commands: list[tuple[list[Arg], int]] = []
        address = self.address
        if address.password is not None:
            login: list[Arg] = [address.username] if address.username else []
            commands.append((["AUTH", *login, address.password], 1))
        if address.db:
            commands.append((["SELECT", address.db], 1))
        commands.append((["CLIENT", "SETNAME", self.name], 1))
        return commands

    def _became_up(self) -> None:
        """Hook: the handshake is done (before ``on_up``)."""

    def _dispatch(self, reply: Reply) -> None:
        """Route one parsed reply; by default, to the oldest waiting callback."""
        self._resolve(reply)

    def _send(self, commands: Iterable[bytes], sinks: Iterable[Sink]) -> None:
        assert self._link is not None and self._link.transport is not None
        if not self._outgoing:
            self._loop.call_before_poll(self._write_out)
        self._outgoing.extend(commands)
        now = self._loop.time()
        self._waiting.extend((sink, now) for sink in sinks)
        timeout_s = self._reply_timeout_now_s()
        if self._watchdog is None and timeout_s > 0:
            self._watchdog = self._loop.call_at(now + timeout_s, self._check_replies)

    def _write_out(self) -> None:
        # One bytes object per pass: a pass of 10,000 small commands leaves in one
        # sendmsg() rather than one iovec each (the kernel caps those at IOV_MAX).
        outgoing, self._outgoing = self._outgoing, []
        link = self._link
        if outgoing and link is not None and link.transport is not None:
            link.transport.write(b"".join(outgoing))

    def _resolve(self, reply: Reply) -> None:
        if not self._waiting:
            self._lost(self._link, RedisConnectionError(f"unexpected reply from Redis: {reply!r}"))
            return
        sink, _ = self._waiting.popleft()
        run_callback(self._loop, sink, reply)

    # -- connecting -------------------------------------------------------------------

    def _connect(self) -> None:
        self._retry = None
        self._state = ConnectionState.CONNECTING
        self._link = _Link(self)
        self._connector = connect(self._loop, self._link, self.address.host, self.address.port,
                                  timeout_s=self._connect_timeout_s)

    def _made(self, link: _Link) -> None:
        if link is not self._link:
            assert link.transport is not None
            link.transport.abort()
            return
        self._connector = None
        self._state = ConnectionState.HANDSHAKE
        self._reader = self._new_reader()
        handshake = self._handshake()
        sinks: list[Sink] = []
        for index, (command, replies) in enumerate(handshake):
            last = index == len(handshake) - 1
            sinks.extend(self._handshake_sink(str(command[0]), last and n == replies - 1)
                         for n in range(replies))
        self._send((encode_command(*command) for command, _ in handshake), sinks)

    def _handshake_sink(self, command: str, last: bool) -> Sink:
        def check(reply: Reply) -> None:
            if isinstance(reply, RedisConnectionError):
                return  # the connection is already being dropped
            if isinstance(reply, RedisReplyError):
                self._lost(self._link, RedisConnectionError(f"Redis refused {command}: {reply}"))
            elif last and self._state is ConnectionState.HANDSHAKE:
                self._up()
        return check

    def _up(self) -> None:
        self._state = ConnectionState.UP
        self._delay_s = self._backoff_s[0]
        if self._in_outage:
            logger.log(self._log_level, "Redis at %s is back", self.address)
        else:
            logger.log(self._log_level, "connected to Redis at %s as %s", self.address, self.name)
        self._in_outage = False
        self._became_up()
        on_up = self.on_up
        if on_up is not None and self._state is ConnectionState.UP:
            run_callback(self._loop, lambda _: on_up(), None)

    def _lost(self, link: _Link | None, exc: RedisConnectionError) -> None:
        """The current connection (or attempt) is gone: fail calls, tell once, retry."""
        if link is None or link is not self._link or self._state is ConnectionState.CLOSED:
            return
        self._drop_link()
        self._state = ConnectionState.IDLE
        self._fail_waiting(exc)
        delay = random.uniform(self._delay_s / 2, self._delay_s)  # jitter: no herd of nodes
        self._delay_s = min(self._delay_s * 2, self._backoff_s[1])
        self._retry = self._loop.call_later(max(delay, self._backoff_s[0]), self._connect)
        if not self._in_outage:
            self._in_outage = True
            level = logging.DEBUG if self._log_level == logging.DEBUG else logging.WARNING
            logger.log(level, "Redis at %s unavailable (%s); retrying until it is back",
                       self.address, exc)
            if self.on_down is not None:
                run_callback(self._loop, self.on_down, exc)

    def _drop_link(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        self._outgoing = []  # commands meant for the dropped connection
        link, self._link = self._link, None
        if link is not None and link.transport is not None:
            link.transport.abort()

    # -- replies ----------------------------------------------------------------------

    @staticmethod
    def _new_reader() -> hiredis.Reader:
        return hiredis.Reader(replyError=RedisReplyError, notEnoughData=_INCOMPLETE)

    def _data(self, link: _Link, data: bytes) -> None:
        if link is not self._link:
            return
        reader = self._reader
        try:
            reader.feed(data)
            reply = reader.gets()
            while reply is not _INCOMPLETE:
                self._dispatch(reply)
                if link is not self._link:  # a callback closed us, or the stream broke
                    return
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self._lost(link, _connection_error("Redis sent something unreadable", exc))

    def _reply_timeout_now_s(self) -> float:
        # Even a connection that waits on blocking commands (reply timeout 0)
        # must not hang forever in its handshake.
        if self._reply_timeout_s > 0 or self._state is not ConnectionState.HANDSHAKE:
            return self._reply_timeout_s
        return self._connect_timeout_s

    def _check_replies(self) -> None:
        self._watchdog = None
        timeout_s = self._reply_timeout_now_s()
        if not self._waiting or self._state is ConnectionState.CLOSED or timeout_s <= 0:
            return
        oldest = self._waiting[0][1]
        if self._loop.time() - oldest >= timeout_s:
            self._lost(self._link, RedisConnectionError(
                f"no reply from Redis within {timeout_s} s"))
            return
        self._watchdog = self._loop.call_at(oldest + timeout_s, self._check_replies)

    def _fail_waiting(self, exc: RedisConnectionError) -> None:
        waiting, self._waiting = self._waiting, deque()
        for sink, _ in waiting:
            run_callback(self._loop, sink, exc)


def run_callback(loop: EventLoop, sink: Sink, reply: Reply) -> None:
    """Call ``sink(reply)``; an exception goes to the loop's handler, not into the client."""
    try:
        sink(reply)
    except Exception as exc:  # the boundary between the client and its user's code
        loop.call_soon(_reraise, exc)


def _reraise(exc: BaseException) -> None:
    raise exc
