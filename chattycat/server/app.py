"""The chat server: listener + transports + room state machine + history store.

This module is wiring only; :class:`~chattycat.server.state.ChatState`
decides everything. Bytes from a transport go through the frame decoder into
the machine; its effects come back and are carried out here:

- frames (``Send``, ``Close``) are written at the end of the loop pass, so
  each connection gets one ``sendmsg`` for everything the pass produced;
- at the end of every pass the machine's store work (one batch of writes,
  then the reads that follow it) goes to the :class:`HistoryStore`, and its
  answers go back in (``committed``/``commit_failed``, ``loaded``). The
  machine releases a ``message`` frame, its sender's acknowledgement, only
  after its batch is committed: an acknowledged message is always stored.

Time comes from a :class:`Clock`, so a test can run the server on a fake one.
"""

from __future__ import annotations

import itertools
import logging
import time
import typing
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chattycat.errors import ErrorCode, FrameTooLarge, ProtocolError, StoreError
from chattycat.net.contexts import SSLContext
from chattycat.net.framed import FramedProtocol
from chattycat.net.listener import Listener, listen
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.transport import Protocol as TransportProtocol
from chattycat.net.transport import Transport
from chattycat.protocol.framing import FrameDecoder
from chattycat.protocol.messages import Error, Frame, History, RoomList, Roster, encode
from chattycat.server.effects import Close, ConnId, Effect, Now, Read, Send, WriteBatch
from chattycat.server.model import RoomsConfig
from chattycat.server.state import ChatState
from chattycat.server.store import HistoryStore, ReadResult

__all__ = ["ChatServer", "Clock", "FramedPeer", "Peer", "ServerConfig", "SystemClock"]

log = logging.getLogger("chattycat.server.app")

# After close(), how long a connection may take to drain before it is aborted.
CLOSE_GRACE_S = 2.0
# How long a graceful stop waits for every connection to drain.
SHUTDOWN_GRACE_S = 3.0
RETENTION_INTERVAL_S = 3600.0
SERVER_FULL_TEXT = "the server is full; try again later"
# Replies a client asked for, which may be large; see ChatServer._allow_replies.
_REPLIES_ASKED_FOR = frozenset({History, Roster, RoomList})
# What the kernel may hold for one client beyond what the server holds
# (--max-outbuf): enough to keep a LAN or a continent busy, small enough that
# thousands of stalled clients cannot park gigabytes in kernel memory.
KERNEL_SEND_BUFFER_BYTES = 256 * 1024
# Replies a client asked for may exceed --max-outbuf by this many times at most.
MAX_REPLY_ALLOWANCE_FACTOR = 4


class Clock(typing.Protocol):
    """Where the server reads the time: both clocks at once."""

    def now(self) -> Now:
        """The current instant."""
        ...


class SystemClock:
    """The loop's monotonic clock for deadlines, the system clock for timestamps."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop

    def now(self) -> Now:
        """The current instant."""
        return Now(self._loop.time(), time.time())


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``chattycat serve`` can set."""

    host: str | Sequence[str] | None = None
    port: int = 9999
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    max_outbuf_bytes: int = 1024 * 1024
    max_connections: int | None = None
    backlog: int = 1024
    ssl_context: SSLContext | None = None
    retain_days: float | None = None


class Peer(typing.Protocol):
    """One client connection, through any front door, as the server sees it.

    The TCP door below is one; a WebSocket or IRC door provides the same few
    things: an id, its transport, how a frame is put on its wire, and the
    reply allowance the server keeps for it. The door calls the server's
    ``opened``, ``received``, ``rejected``, ``drained``, ``slow_consumer``
    and ``closed`` as its transport reports events.
    """

    id: ConnId
    transport: Transport | None
    reply_allowance: int

    def encode_frame(self, frame: Frame) -> bytes:
        """``frame`` as this door's wire carries it."""
        ...


class FramedPeer(FramedProtocol[FrameDecoder]):
    """A peer of the TCP door: length-prefixed JSON frames (PROTOCOL section 1)."""

    # The TCP wire is PROTOCOL's own framing: the server's one shared encoding.
    encode_frame = staticmethod(encode)

    def __init__(self, server: ChatServer) -> None:
        super().__init__(FrameDecoder(server.config.rooms.max_frame))
        self.server = server
        self.id: ConnId = next(server.ids)
        self.reply_allowance = 0

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.server.opened(self)

    def payload_received(self, payload: bytes) -> None:
        self.server.received(self, payload)

    def frame_too_large(self, length: int) -> None:
        log.info("connection %d sent a frame of %d bytes: closing", self.id, length)
        self.server.rejected(self, FrameTooLarge(length, self.decoder.max_frame))

    def pause_writing(self) -> None:
        # Output to this client is piling up: stop reading its requests, each of
        # which would only add more output, until the backlog drains.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.server.drained(self)
            self.transport.resume_reading()

    def write_buffer_overflow(self) -> bool | None:
        # The server closes it after a last slow_consumer error (best effort).
        self.server.slow_consumer(self)
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        if exc is not None:
            log.debug("connection %d lost: %s", self.id, exc)
        self.server.closed(self)


class ChatServer:
    """A running chat server on an event loop."""

    def __init__(self, loop: EventLoop, store: HistoryStore, config: ServerConfig,
                 clock: Clock | None = None) -> None:
        self.loop = loop
        self.store = store
        self.config = config
        self.clock: Clock = clock or SystemClock(loop)
        self.state = ChatState(config.rooms)
        self.ids = itertools.count(1)
        self._connections: dict[ConnId, Peer] = {}
        self._pending: deque[Effect] = deque()
        self._end_of_pass_scheduled = False
        self._listener: Listener | None = None
        self._doors: list[Listener] = []  # other front doors (WebSocket, IRC)
        # One live timer per purpose ("tick", "prune", "abort"); rescheduling
        # replaces the entry, so fired handles are not kept.
        self._timers: dict[str, TimerHandle] = {}
        self._stopping = False
        self._store_failing = False
        self.on_stopped: Callable[[], None] | None = None

    # -- life cycle ---------------------------------------------------------

    def start(self) -> list[tuple[str, int]]:
        """Load the store's state, listen and start the timers; returns the addresses."""
        self.state.restore(self.store.load_state(), self.clock.now())
        self._listener = listen(
            self.loop, lambda: FramedPeer(self), self.config.host, self.config.port,
            backlog=self.config.backlog, ssl_context=self.config.ssl_context,
            # One --handshake-timeout covers the TLS handshake and the hello.
            ssl_handshake_timeout_s=self.config.rooms.handshake_timeout_s,
        )
        self._schedule_tick()
        if self.config.retain_days is not None:
            self._prune()
        return self._listener.addresses()

    def open_door(
        self, make_peer: Callable[[], TransportProtocol], host: str | Sequence[str] | None,
        port: int, *, ssl_context: SSLContext | None = None,
    ) -> list[tuple[str, int]]:
        """Listen for another front door on this loop; returns the addresses listened on.

        ``make_peer`` builds one transport protocol per connection, which is a
        :class:`Peer` and reports to this server (``opened``, ``received``,
        ...) exactly as the TCP door's :class:`FramedPeer` does. The door is
        closed with the server.
        """
        listener = listen(
            self.loop, make_peer, host, port, backlog=self.config.backlog,
            ssl_context=ssl_context,
            ssl_handshake_timeout_s=self.config.rooms.handshake_timeout_s,
        )
        self._doors.append(listener)
        return listener.addresses()

    def stop(self) -> None:
        """Graceful stop: ``notice`` shutdown, flush (bounded), store, then ``on_stopped``."""
        if self._stopping:
            return
        self._stopping = True
        log.info("shutting down: %d connections", len(self._connections))
        for listener in [self._listener, *self._doors]:
            if listener is not None:
                listener.close()
        self._cancel_timers()
        self.apply(self.state.shutdown())
        deadline = self.loop.time() + SHUTDOWN_GRACE_S
        self._timers["abort"] = self.loop.call_at(deadline, self._abort_all)
        self._maybe_stopped()

    def _abort_all(self) -> None:
        for conn in list(self._connections.values()):
            if conn.transport is not None:
                conn.transport.abort()
        self._maybe_stopped()

    def _maybe_stopped(self) -> None:
        if (self._stopping and not self._connections and not self._pending
                and not self.state.store_busy()):
            self._cancel_timers()
            if self.on_stopped is not None:
                callback, self.on_stopped = self.on_stopped, None
                callback()

    # -- connections --------------------------------------------------------

    def opened(self, conn: Peer) -> None:
        """A front door accepted ``conn`` (its transport is set)."""
        assert conn.transport is not None
        limit = self.config.max_connections
        if self._stopping or (limit is not None and len(self._connections) >= limit):
            log.warning("refusing a connection: %d connections open", len(self._connections))
            # Say why before closing, so the user sees more than a reset.
            conn.transport.write(encode(Error(str(ErrorCode.INTERNAL), SERVER_FULL_TEXT)))
            conn.transport.close(timeout_s=CLOSE_GRACE_S)
            return
        transport = conn.transport
        transport.set_kernel_send_buffer(KERNEL_SEND_BUFFER_BYTES)
        self._set_limits(transport, 0)
        self._connections[conn.id] = conn
        log.debug("connection %d from %s", conn.id, transport.get_extra_info("peername"))
        self.apply(self.state.connect(conn.id, self.clock.now()))

    def closed(self, conn: Peer) -> None:
        """``conn`` is gone."""
        if self._connections.pop(conn.id, None) is not None:
            self.apply(self.state.disconnected(conn.id, self.clock.now()))
        self._maybe_stopped()

    def received(self, conn: Peer, payload: bytes) -> None:
        """One frame's payload from ``conn``."""
        self.apply(self.state.receive_payload(conn.id, payload, self.clock.now()))

    def rejected(self, conn: Peer, exc: ProtocolError) -> None:
        """``conn`` sent something that is not a frame at all (too large, say)."""
        self.apply(self.state.reject(conn.id, exc, self.clock.now()))

    def drained(self, conn: Peer) -> None:
        """``conn``'s backlog is down to the low-water mark: the replies it asked for are out."""
        if conn.reply_allowance and conn.transport is not None:
            conn.reply_allowance = 0
            self._set_limits(conn.transport, 0)

    def _set_limits(self, transport: Transport, allowance: int) -> None:
        # Above half the limit, stop reading this client's requests (each would
        # only add output); above the limit, measured after sending, drop it.
        limit = self.config.max_outbuf_bytes
        transport.set_write_buffer_limits(high=limit // 2, hard=limit + allowance)

    def _allow_replies(self, sizes: dict[ConnId, int]) -> None:
        """Let each connection hold the replies it asked for this pass on top of the limit.

        A history page or a resume can be megabytes written in one pass; what
        the kernel does not take at once stays queued, and on a real network
        that is most of it. Such a reply is not a sign of a slow reader: the
        client asked for it, and asks for nothing more until the backlog is
        below the high-water mark (reading is paused). So output it asked for
        counts against ``--max-outbuf`` only beyond four times that much; other
        people's messages count in full.
        """
        most = MAX_REPLY_ALLOWANCE_FACTOR * self.config.max_outbuf_bytes
        for conn_id, size in sizes.items():
            conn = self._connections.get(conn_id)
            if conn is not None and conn.transport is not None:
                conn.reply_allowance = min(most, conn.reply_allowance + size)
                self._set_limits(conn.transport, conn.reply_allowance)

    def slow_consumer(self, conn: Peer) -> None:
        """``conn``'s unsent output passed ``--max-outbuf`` after a send: drop it."""
        log.info("connection %d is a slow consumer: closing", conn.id)
        self.apply(self.state.drop_slow_consumer(conn.id, self.clock.now()))

    # -- effects: carried out at the end of the pass ---------------------------

    def apply(self, effects: list[Effect]) -> None:
        """Queue effects for the end of this pass (called even with none: the
        input may have left store work, such as a session write)."""
        self._pending.extend(effects)
        if not self._end_of_pass_scheduled:
            self._end_of_pass_scheduled = True
            self.loop.call_before_poll(self._end_of_pass)

    def _end_of_pass(self) -> None:
        self._end_of_pass_scheduled = False
        self._run_store_work()
        self._deliver()
        self._maybe_stopped()

    def _run_store_work(self) -> None:
        # A store that answers at once (SQLite, memory) calls back inside
        # submit/fetch; its answers may release more work: keep going.
        state = self.state
        while state.has_store_work():
            work = state.take_store_work()
            if work.batch is not None:
                self.store.submit(work.batch, self._batch_done)
            for read in work.reads:
                self.store.fetch(read, self._read_done)

    def _batch_done(self, batch: WriteBatch, error: StoreError | None) -> None:
        now = self.clock.now()
        if error is None:
            if self._store_failing:
                self._store_failing = False
                log.warning("history store: writing again")
            self.apply(self.state.committed(batch.id, now))
            return
        if not self._store_failing:  # once per outage, not once per batch
            self._store_failing = True
            log.error("history store: %s", error)
        self.apply(self.state.commit_failed(batch.id, now))

    def _read_done(self, read: Read, result: ReadResult | StoreError) -> None:
        now = self.clock.now()
        if isinstance(result, StoreError):
            log.error("history store: %s", result)
            self.apply(self.state.load_failed(read.read, now))
        else:
            self.apply(self.state.loaded(read.read, result.messages, result.truncated, now))

    def _deliver(self) -> None:
        pending, connections = self._pending, self._connections
        replies: dict[ConnId, int] = {}
        while pending:
            effect = pending.popleft()
            if isinstance(effect, Send):
                frame = effect.frame
                data = encode(frame)  # once for every TCP client
                other: dict[Any, bytes] | None = None  # other doors' encodings, once each
                for conn_id in effect.conns:
                    conn = connections.get(conn_id)
                    if conn is None or conn.transport is None:
                        continue
                    door = conn.encode_frame
                    if door is not encode:
                        other = {} if other is None else other
                        if door not in other:
                            other[door] = door(frame)
                        conn.transport.write(other[door])
                    else:
                        conn.transport.write(data)  # a no-op on a closing transport
                if type(frame) in _REPLIES_ASKED_FOR:
                    for conn_id in effect.conns:
                        replies[conn_id] = replies.get(conn_id, 0) + len(data)
            elif isinstance(effect, Close):
                self._close(effect.conn)
        if replies:
            self._allow_replies(replies)

    def _close(self, conn_id: ConnId) -> None:
        conn = self._connections.get(conn_id)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.transport.close(timeout_s=CLOSE_GRACE_S)

    # -- timers -------------------------------------------------------------

    def _tick_interval_s(self) -> float:
        rooms = self.config.rooms
        spans = [s for s in (rooms.heartbeat_s, rooms.handshake_timeout_s) if s > 0]
        return min(1.0, max(0.05, min(spans, default=1.0) / 10))

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _schedule_tick(self) -> None:
        self._timers["tick"] = self.loop.call_later(self._tick_interval_s(), self._on_tick_timer)

    def _on_tick_timer(self) -> None:
        self.tick()
        self._schedule_tick()

    def tick(self) -> None:
        """Check deadlines (handshakes, heartbeats, sessions) against the clock now.

        A timer calls this several times a second; a test on a fake clock
        calls it after moving the clock.
        """
        self.apply(self.state.tick(self.clock.now()))

    def _prune(self) -> None:
        assert self.config.retain_days is not None
        cutoff = self.clock.now().wall - self.config.retain_days * 86400
        self.store.prune(cutoff, self._pruned)
        self._timers["prune"] = self.loop.call_later(RETENTION_INTERVAL_S, self._prune)

    def _pruned(self, result: int | StoreError) -> None:
        if isinstance(result, StoreError):
            log.error("retention: %s", result)  # tried again at the next interval
        elif result:
            log.info("retention: removed %d messages older than %g days", result,
                     self.config.retain_days)
