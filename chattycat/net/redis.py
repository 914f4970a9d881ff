"""A Redis client on the project's own loop: non-blocking sockets, replies parsed by hiredis.

Why not redis-py's clients: the blocking one would stall every chat connection
for a round trip, and the asyncio one needs a second loop. Here a command is
encoded (:mod:`chattycat.net.resp`) and written to a :class:`Transport`,
which sends everything written in one loop pass in one ``sendmsg()``: a pass
that appends to ten rooms costs Redis one round trip, not ten. Replies come
back in order (Redis answers each connection FIFO), are parsed by
``hiredis.Reader`` and matched to their callbacks by position.

Both classes here reconnect by themselves, with jittered exponential backoff,
until ``close()``. ``on_down(exc)`` is called once per outage (the first
failure after start counts as one) and ``on_up()`` when a connection is ready
again (logged in, database selected, named, and for the subscriber,
subscribed). Every outstanding command fails with ``RedisConnectionError``
when its connection is lost: it may or may not have been carried out.

A *reply timeout* treats the connection as lost when the oldest outstanding
command has waited longer than ``reply_timeout_s``: a hung Redis must not
hang the node. Set it to 0 on a connection that issues blocking commands
(``XREAD BLOCK``, ``BLPOP``, ``WAIT``) for longer than that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chattycat.errors import RedisConnectionError, RedisReplyError
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.redis_connection import (
    ConnectionState,
    RedisConnection,
    Reply,
    Sink,
    run_callback,
)
from chattycat.net.resp import Arg, RedisAddress, encode_command, parse_redis_url

__all__ = [
    "RedisAddress",
    "RedisClient",
    "RedisConnectionError",
    "RedisReplyError",
    "RedisSubscriber",
    "encode_command",
    "parse_redis_url",
]


class RedisClient(RedisConnection):
    """Commands to Redis, pipelined: ``call(args, done)``; ``done(reply)`` on the loop.

    A reply is what hiredis decodes (bytes, int, list, None), a
    :class:`RedisReplyError` for an error reply, or a
    :class:`RedisConnectionError` when the connection is not up or is lost
    before the reply. ``done`` is never called from inside ``call``.
    """

    def __init__(
        self,
        loop: EventLoop,
        address: RedisAddress | str,
        *,
        name: str = "chattycat",
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[BaseException], None] | None = None,
        connect_timeout_s: float = 2.0,
        reply_timeout_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        super().__init__(loop, address, name=name, on_up=on_up, on_down=on_down,
                         connect_timeout_s=connect_timeout_s, reply_timeout_s=reply_timeout_s,
                         backoff_s=backoff_s)

    def call(self, args: Sequence[Arg], done: Callable[[Any], None]) -> None:
        """Send one command; ``done(reply)`` when its reply (or failure) is in."""
        command = encode_command(*args)  # a bad argument raises here, in the caller
        if self._state is not ConnectionState.UP:
            self._loop.call_soon(done, self._not_up())
            return
        self._send((command,), (done,))

    def call_many(self, commands: Sequence[Sequence[Arg]], done: Callable[[list[Any]], None]
                  ) -> None:
        """Send a pipeline; ``done(replies)`` once all are in (all errors if the link fails).

        On a lost connection every element is the same ``RedisConnectionError``,
        even if some replies had arrived: none of them can be trusted to mean
        the rest were carried out.
        """
        encoded = [encode_command(*args) for args in commands]
        if self._state is not ConnectionState.UP or not encoded:
            error = self._not_up() if encoded else None
            self._loop.call_soon(done, [error] * len(encoded))
            return
        self._send(encoded, _Gather(len(encoded), done).sinks())

    def _not_up(self) -> RedisConnectionError:
        if self._state is ConnectionState.CLOSED:
            return RedisConnectionError("the Redis client was closed")
        return RedisConnectionError(f"not connected to Redis at {self.address}")


class _Gather:
    """Collects a pipeline's replies, then calls ``done`` once with all of them."""

    def __init__(self, count: int, done: Callable[[list[Any]], None]) -> None:
        self._replies: list[Any] = [None] * count
        self._left = count
        self._done = done

    def sinks(self) -> list[Sink]:
        return [self._sink(index) for index in range(len(self._replies))]

    def _sink(self, index: int) -> Sink:
        def collect(reply: Reply) -> None:
            if isinstance(reply, RedisConnectionError):
                self._replies = [reply] * len(self._replies)
            else:
                self._replies[index] = reply
            self._left -= 1
            if self._left == 0:
                self._done(self._replies)
        return collect


class RedisSubscriber(RedisConnection):
    """A connection in Pub/Sub mode: ``on_message(channel, data)`` per published message.

    It subscribes to its channels again on every reconnect and calls
    ``on_up()`` once Redis has confirmed them. Pub/Sub is at-most-once: what
    was published while the connection was down is gone, so ``on_up`` is the
    moment to catch up from durable data (a stream). A PING every
    ``ping_interval_s`` (0: never) lets the reply timeout notice a hung Redis
    or a dead peer even when no message is flowing.
    """

    def __init__(
        self,
        loop: EventLoop,
        address: RedisAddress | str,
        channels: Sequence[str | bytes],
        on_message: Callable[[bytes, bytes], None],
        *,
        name: str = "chattycat-sub",
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[BaseException], None] | None = None,
        connect_timeout_s: float = 2.0,
        reply_timeout_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.05, 2.0),
        ping_interval_s: float = 5.0,
        quiet: bool = False,
    ) -> None:
        super().__init__(loop, address, name=name, on_up=on_up, on_down=on_down,
                         connect_timeout_s=connect_timeout_s, reply_timeout_s=reply_timeout_s,
                         backoff_s=backoff_s, quiet=quiet)
        self.on_message = on_message
        self._channels = dict.fromkeys(_channel_bytes(channels))
        self._ping_interval_s = ping_interval_s
        self._ping_timer: TimerHandle | None = None

    @property
    def channels(self) -> tuple[bytes, ...]:
        """The channels subscribed to (or to be, on the next connect)."""
        return tuple(self._channels)

    def subscribe(self, channels: Sequence[str | bytes]) -> None:
        """Add channels (now if up, else on the next connect)."""
        new = [channel for channel in _channel_bytes(channels) if channel not in self._channels]
        self._channels.update(dict.fromkeys(new))
        if new and self._state is ConnectionState.UP:
            self._send((encode_command("SUBSCRIBE", *new),), [_ignore] * len(new))

    def unsubscribe(self, channels: Sequence[str | bytes]) -> None:
        """Drop channels; messages already on their way may still arrive."""
        gone = [channel for channel in _channel_bytes(channels) if channel in self._channels]
        for channel in gone:
            del self._channels[channel]
        if gone and self._state is ConnectionState.UP:
            self._send((encode_command("UNSUBSCRIBE", *gone),), [_ignore] * len(gone))

    def close(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        super().close()

    def _handshake(self) -> list[tuple[list[Arg], int]]:
        commands = super()._handshake()
        if self._channels:
            # One confirmation per channel, so on_up waits for the last one.
            commands.append((["SUBSCRIBE", *self._channels], len(self._channels)))
        return commands

    def _became_up(self) -> None:
        if self._ping_interval_s > 0 and self._ping_timer is None:
            self._ping_timer = self._loop.call_later(self._ping_interval_s, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self._state is not ConnectionState.UP:
            return  # the next _became_up starts pinging again
        self._send((encode_command("PING"),), (_ignore,))
        self._ping_timer = self._loop.call_later(self._ping_interval_s, self._ping)

    def _dispatch(self, reply: Reply) -> None:
        # Pushed messages interleave with the replies to our own commands.
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            run_callback(self._loop, lambda message: self.on_message(*message), reply[1:])
        else:
            self._resolve(reply)


def _channel_bytes(channels: Iterable[str | bytes]) -> list[bytes]:
    return [channel.encode() if isinstance(channel, str) else channel for channel in channels]


def _ignore(reply: Reply) -> None:
    pass
