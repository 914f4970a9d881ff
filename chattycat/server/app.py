"""The chat server: listener + transports + room state machine + history store.

This module is wiring only. Bytes from a transport go through the frame
decoder into :class:`~chattycat.server.state.ChatState`; the effects it returns are
held until the end of the loop pass, when the history store commits every
message of the pass in one transaction (group commit) and only then are the
frames written out. A ``message`` frame is its sender's acknowledgement, so
an acknowledged message is always already in the history file.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chattycat.errors import ErrorCode, FrameTooLarge, StoreError
from chattycat.net.listener import Listener, listen
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.transport import Protocol, Transport
from chattycat.protocol.framing import FrameDecoder
from chattycat.protocol.messages import Error, Message, encode
from chattycat.server.state import ChatState, Close, ConnId, Effect, RoomsConfig, Send
from chattycat.server.store import HistoryStore

__all__ = ["ChatServer", "ServerConfig"]

log = logging.getLogger("chattycat.server.app")

# After close(), how long a connection may take to drain before it is aborted.
CLOSE_GRACE_S = 2.0
# How long a graceful stop waits for every connection to drain.
SHUTDOWN_GRACE_S = 3.0
RETENTION_INTERVAL_S = 3600.0
SERVER_FULL_TEXT = "the server is full; try again later"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``chattycat serve`` can set."""

    host: str | Sequence[str] | None = None
    port: int = 9999
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    max_outbuf_bytes: int = 1024 * 1024
    max_connections: int | None = None
    backlog: int = 1024
    ssl_context: ssl.SSLContext | None = None
    retain_days: float | None = None


class _Connection(Protocol):
    """One client connection: decodes frames and hands them to the server."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.id: ConnId = next(server.ids)
        self.decoder = FrameDecoder(server.config.rooms.max_frame)
        self.transport: Transport | None = None

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self.server.opened(self)

    def data_received(self, data: bytes) -> None:
        self.decoder.feed(data)
        state, now = self.server.state, time.time()
        try:
            for payload in self.decoder:
                self.server.apply(state.receive_payload(self.id, payload, now))
        except FrameTooLarge as exc:
            log.info("connection %d sent a frame of %d bytes: closing", self.id, exc.length)
            self.server.apply(state.reject(self.id, exc, now))

    def eof_received(self) -> bool | None:
        return False

    def pause_writing(self) -> None:
        # Output to this client is piling up: stop reading its requests, each of
        # which would only add more output, until the backlog drains.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc: BaseException | None) -> None:
        if exc is not None:
            log.debug("connection %d lost: %s", self.id, exc)
        self.server.closed(self)


class ChatServer:
    """A running chat server on an event loop."""

    def __init__(self, loop: EventLoop, store: HistoryStore, config: ServerConfig) -> None:
        self.loop = loop
        self.store = store
        self.config = config
        self.state = ChatState(store, config.rooms)
        self.ids = itertools.count(1)
        self._connections: dict[ConnId, _Connection] = {}
        self._pending: deque[Effect] = deque()
        self._deliver_scheduled = False
        self._listener: Listener | None = None
        # One live timer per purpose ("tick", "prune", "abort"); rescheduling
        # replaces the entry, so fired handles are not kept.
        self._timers: dict[str, TimerHandle] = {}
        self._stopping = False
        self.on_stopped: Callable[[], None] | None = None

    # -- life cycle ---------------------------------------------------------

    def start(self) -> list[tuple[str, int]]:
        """Listen and start the timers; returns the addresses listened on."""
        self._listener = listen(
            self.loop, lambda: _Connection(self), self.config.host, self.config.port,
            backlog=self.config.backlog, ssl_context=self.config.ssl_context,
            # One --handshake-timeout covers the TLS handshake and the hello.
            ssl_handshake_timeout_s=self.config.rooms.handshake_timeout_s,
        )
        self.state.restore_sessions(time.time())
        self._schedule_tick()
        if self.config.retain_days is not None:
            self._prune()
        return self._listener.addresses()

    def stop(self) -> None:
        """Graceful stop: ``notice`` shutdown, flush (bounded), commit, then ``on_stopped``."""
        if self._stopping:
            return
        self._stopping = True
        log.info("shutting down: %d connections", len(self._connections))
        if self._listener is not None:
            self._listener.close()
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
        if self._stopping and not self._connections and not self._pending:
            self._cancel_timers()
            self._commit()
            if self.on_stopped is not None:
                callback, self.on_stopped = self.on_stopped, None
                callback()

    # -- connections --------------------------------------------------------

    def opened(self, conn: _Connection) -> None:
        assert conn.transport is not None
        limit = self.config.max_connections
        if self._stopping or (limit is not None and len(self._connections) >= limit):
            log.warning("refusing a connection: %d connections open", len(self._connections))
            # Say why before closing, so the user sees more than a reset.
            conn.transport.write(encode(Error(str(ErrorCode.INTERNAL), SERVER_FULL_TEXT)))
            conn.transport.close(timeout_s=CLOSE_GRACE_S)
            return
        transport = conn.transport
        # Pause reading from a client whose output we cannot deliver: what it
        # asks for would only pile up more output.
        transport.set_write_buffer_limits(high=self.config.max_outbuf_bytes // 2)
        self._connections[conn.id] = conn
        log.debug("connection %d from %s", conn.id, transport.get_extra_info("peername"))
        self.apply(self.state.connect(conn.id, time.time()))

    def closed(self, conn: _Connection) -> None:
        if self._connections.pop(conn.id, None) is not None:
            self.apply(self.state.disconnected(conn.id, time.time()))
        self._maybe_stopped()

    # -- effects: held until the end of the pass, then committed and sent ----

    def apply(self, effects: list[Effect]) -> None:
        """Queue effects; they are carried out after this pass's group commit.

        Called even with no effects: the request may still have written to
        the store (a session), and that write is committed at the end of the pass.
        """
        self._pending.extend(effects)
        if not self._deliver_scheduled:
            self._deliver_scheduled = True
            self.loop.call_before_poll(self._deliver)

    def _deliver(self) -> None:
        self._deliver_scheduled = False
        self._commit()
        slow: list[ConnId] = []
        while self._pending:
            effect = self._pending.popleft()
            if isinstance(effect, Send):
                self._send(effect, slow)
            elif isinstance(effect, Close):
                self._close(effect.conn)
            for conn_id in slow:
                self._pending.extend(self.state.drop_slow_consumer(conn_id, time.time()))
            slow.clear()
        self._maybe_stopped()

    def _commit(self) -> None:
        try:
            self.store.commit()
        except StoreError as exc:
            log.error("history store: %s", exc)
            self.state.resync()

    def _send(self, effect: Send, slow: list[ConnId]) -> None:
        frame = effect.frame
        if isinstance(frame, Message) and frame.seq > self.store.last_seq(frame.room):
            # Rolled back with a failed transaction: it must not be acknowledged.
            # Its sender gets an error instead and can send it again.
            self._pending.extend(self.state.message_lost(frame))
            return
        data = encode(frame)
        limit = self.config.max_outbuf_bytes
        for conn_id in effect.conns:
            conn = self._connections.get(conn_id)
            if conn is None or conn.transport is None:
                continue
            conn.transport.write(data)  # a no-op on a closing transport
            if conn.transport.get_write_buffer_size() > limit:
                log.info("connection %d is a slow consumer: closing", conn_id)
                slow.append(conn_id)

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
        self._timers["tick"] = self.loop.call_later(self._tick_interval_s(), self._tick)

    def _tick(self) -> None:
        self.apply(self.state.tick(time.time()))
        self._schedule_tick()

    def _prune(self) -> None:
        assert self.config.retain_days is not None
        cutoff = time.time() - self.config.retain_days * 86400
        try:
            removed = self.store.prune(cutoff)
        except StoreError as exc:
            # Tried again at the next interval. The failed transaction also took
            # this pass's unacknowledged messages with it: number on without them.
            log.error("retention: %s", exc)
            self.state.resync()
            removed = 0
        if removed:
            log.info("retention: removed %d messages older than %g days", removed,
                     self.config.retain_days)
        self._timers["prune"] = self.loop.call_later(RETENTION_INTERVAL_S, self._prune)
