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

import functools
import itertools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from chattycat.errors import ErrorCode, ProtocolError, StoreError
from chattycat.net.contexts import SSLContext
from chattycat.net.listener import Listener, listen
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.transport import Protocol as TransportProtocol
from chattycat.net.transport import Transport
from chattycat.protocol.messages import (
    Error,
    Frame,
    History,
    Request,
    RoomList,
    Roster,
    encode,
)
from chattycat.server.admission import AddressLimits, LogThrottle, address_key
from chattycat.server.cluster.state import ClusterState
from chattycat.server.config import Clock, ServerConfig, SystemClock
from chattycat.server.effects import (
    Close,
    ConnId,
    Effect,
    HashPassword,
    PasswordJob,
    Read,
    Send,
    WriteBatch,
)
from chattycat.server.passwords import PasswordWorker
from chattycat.server.redis_store import RedisStore
from chattycat.server.state import ChatState
from chattycat.server.store import HistoryStore, ReadResult
from chattycat.server.tcp import FramedPeer, Peer

__all__ = ["ChatServer", "Clock", "FramedPeer", "Peer", "ServerConfig", "SystemClock"]

# (Clock, ServerConfig and the TCP door live in config.py and tcp.py; they are
# named here too, because this is where a library user looks for them.)

log = logging.getLogger("chattycat.server.app")

# After close(), how long a connection may take to drain before it is aborted.
CLOSE_GRACE_S = 2.0
# How long a graceful stop waits for every connection to drain.
SHUTDOWN_GRACE_S = 3.0
RETENTION_INTERVAL_S = 3600.0
SERVER_FULL_TEXT = "the server is full; try again later"


class _Run:
    """Frames for one audience, in order: the frames, their TCP encodings, and
    those encodings' total size (so no recipient has to count it again)."""

    __slots__ = ("_joined", "data", "fanout", "frames", "size")

    def __init__(self, frame: Frame, data: bytes, fanout: int) -> None:
        self.frames = [frame]
        self.data = [data]
        self.size = len(data)
        self.fanout = fanout
        self._joined: list[bytes] | None = None

    def add(self, frame: Frame, data: bytes) -> None:
        self.frames.append(frame)
        self.data.append(data)
        self.size += len(data)

    def chunks(self) -> list[bytes]:
        """The encodings to hand each recipient: joined into one, once, for an
        audience of several.

        The kernel and ``sendmsg`` pay per buffer, for every recipient: a room's
        eighty frames of a pass, joined once (one copy of a few KiB), go to each
        of its members as one buffer instead of eighty (measured:
        docs/performance.md). A run for one connection (a history page, say)
        is not copied for nothing.
        """
        if self.fanout < 2 or len(self.data) < 2:
            return self.data
        joined = self._joined
        if joined is None:
            joined = self._joined = [b"".join(self.data)]
        return joined


# Replies a client asked for, which may be large; see ChatServer._allow_replies.
_REPLIES_ASKED_FOR = frozenset({History, Roster, RoomList})
# What the kernel may hold for one client beyond what the server holds
# (--max-outbuf): enough to keep a LAN or a continent busy, small enough that
# thousands of stalled clients cannot park gigabytes in kernel memory.
KERNEL_SEND_BUFFER_BYTES = 256 * 1024
# Replies a client asked for may exceed --max-outbuf by this many times at most.
MAX_REPLY_ALLOWANCE_FACTOR = 4
# Output that has not moved for this long is dropped when heartbeats are off
# (with them, two heartbeats: see ServerConfig.stall_timeout_s).
# Repeated refusals (server full, per-address limits) log one line per interval.
REFUSAL_LOG_INTERVAL_S = 10.0


class ChatServer:
    """A running chat server on an event loop."""

    def __init__(self, loop: EventLoop, store: HistoryStore, config: ServerConfig,
                 clock: Clock | None = None) -> None:
        self.loop = loop
        self.store = store
        self.config = config
        self.clock: Clock = clock or SystemClock(loop)
        # A node of a cluster: the same server, with the cluster's facts in Redis.
        self.cluster = store if isinstance(store, RedisStore) else None
        self._node_state: ClusterState | None = None
        if self.cluster is not None:
            self._node_state = ClusterState(config.rooms, self.cluster.node)
        self.state: ChatState = self._node_state or ChatState(config.rooms)
        # Key derivations take ~50 ms each: never on the loop (server/passwords.py).
        self.passwords = PasswordWorker(loop.call_soon_threadsafe)
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
        self.addresses = AddressLimits(
            config.max_per_ip, config.max_unwelcomed_per_ip,
            config.ip_open_rate_per_s, max(1, int(2 * config.ip_open_rate_per_s)),
        )
        self._refusals = LogThrottle(REFUSAL_LOG_INTERVAL_S)
        # Connections with output pending: (bytes sent when last seen moving, since when).
        self._output_seen: dict[ConnId, tuple[int, float]] = {}
        self._half_outbuf = config.max_outbuf_bytes // 2

    # -- life cycle ---------------------------------------------------------

    def start(self) -> list[tuple[str, int]]:
        """Load the store's state, listen and start the timers; returns the addresses."""
        self.state.restore(self.store.load_state(), self.clock.now())
        if self.cluster is not None and self._node_state is not None:
            self.cluster.attach(self, self._node_state)
        self._listener = listen(
            self.loop, lambda: FramedPeer(self), self.config.host, self.config.port,
            backlog=self.config.backlog, ssl_context=self.config.ssl_context,
            # One --handshake-timeout covers the TLS handshake and the hello.
            ssl_handshake_timeout_s=self.config.rooms.handshake_timeout_s,
            reuse_port=self.config.reuse_port,  # workers of one machine share the port
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
            reuse_port=self.config.reuse_port,
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
            self.passwords.close()
            if self.on_stopped is not None:
                callback, self.on_stopped = self.on_stopped, None
                callback()

    # -- connections --------------------------------------------------------

    def opened(self, conn: Peer) -> None:
        """A front door accepted ``conn`` (its transport is set)."""
        assert conn.transport is not None
        limit = self.config.max_connections
        if self._stopping or (limit is not None and len(self._connections) >= limit):
            self._refuse(conn, SERVER_FULL_TEXT, f"{len(self._connections)} connections open")
            return
        key = address_key(conn.transport.get_extra_info("peername"))
        admission = self.addresses.opened(conn.id, key, self.clock.now().mono)
        if not admission.admitted:
            self._refuse(conn, f"{SERVER_FULL_TEXT} ({admission.reason})", admission.reason)
            return
        transport = conn.transport
        transport.set_kernel_send_buffer(KERNEL_SEND_BUFFER_BYTES)
        self._set_limits(transport, 0)
        self._connections[conn.id] = conn
        log.debug("connection %d from %s", conn.id, transport.get_extra_info("peername"))
        self.apply(self.state.connect(conn.id, self.clock.now(), key))

    def _refuse(self, conn: Peer, text: str, why: str) -> None:
        assert conn.transport is not None
        log_now, held_back = self._refusals.should_log(self.clock.now().mono)
        if log_now:
            more = f" ({held_back} more refused since the last such line)" if held_back else ""
            log.warning("refusing a connection: %s%s", why, more)
        # Say why before closing, so the user sees more than a reset.
        conn.transport.write(conn.encode_frame(Error(str(ErrorCode.INTERNAL), text)))
        conn.close(CLOSE_GRACE_S)

    def closed(self, conn: Peer) -> None:
        """``conn`` is gone."""
        self.addresses.closed(conn.id)
        self._output_seen.pop(conn.id, None)
        if self._connections.pop(conn.id, None) is not None:
            self.apply(self.state.disconnected(conn.id, self.clock.now()))
        self._maybe_stopped()

    def received(self, conn: Peer, payload: bytes) -> None:
        """One frame's payload from ``conn``."""
        self.apply(self.state.receive_payload(conn.id, payload, self.clock.now()))

    def received_request(self, conn: Peer, request: Request) -> None:
        """One request from ``conn``, already parsed by its door (IRC lines, say)."""
        self.apply(self.state.receive(conn.id, request, self.clock.now()))

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
        if not allowance:  # the usual case: the same two int objects for every connection
            transport.set_write_buffer_limits(high=self._half_outbuf, hard=limit)
            return
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
        if self.state.welcomed:  # now past hello: no longer counted as unwelcomed
            for conn_id in self.state.take_welcomed():
                self.addresses.welcomed(conn_id)
        if not self._end_of_pass_scheduled:
            self._end_of_pass_scheduled = True
            self.loop.call_before_poll(self._end_of_pass)

    def _end_of_pass(self) -> None:
        self._end_of_pass_scheduled = False
        self._run_store_work()
        for job in self.state.take_password_work():
            self.passwords.submit(job, functools.partial(self._password_done, job))
        self._deliver()
        self._maybe_stopped()

    def _run_store_work(self) -> None:
        # A store that answers at once (SQLite, memory) calls back inside
        # submit/fetch; its answers may release more work: keep going.
        if self.cluster is not None:
            self.cluster.flush()  # in decision order, one pipeline per pass
            return
        state = self.state
        while state.has_store_work():
            work = state.take_store_work()
            if work.batch is not None:
                self.store.submit(work.batch, self._batch_done)
            for read in work.reads:
                self.store.fetch(read, self._read_done)

    def _password_done(self, job: PasswordJob, result: bool | str) -> None:
        now = self.clock.now()
        if isinstance(job, HashPassword):
            self.apply(self.state.password_hashed(job.job, str(result), now))
        else:
            self.apply(self.state.password_checked(job.job, result is True, now))

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
        """Write this pass's frames: each encoded once, each recipient handed them in one call.

        Consecutive ``Send``s to the same audience (a room's cached member
        tuple) form a *run*; a recipient is visited once per run, not once per
        frame, and each connection gets one ``write_frames`` per pass with the
        same bytes objects as everyone else. A ``Close`` first writes out what
        was queued before it, so per-connection order is kept.
        """
        pending = self._pending
        replies: dict[ConnId, int] = {}
        # Per connection, the runs (lists of frames, lists of their bytes) it receives.
        queued: dict[ConnId, list[_Run]] = {}
        audience: tuple[ConnId, ...] | None = None
        run: _Run | None = None
        while pending:
            effect = pending.popleft()
            if type(effect) is Send:
                frame = effect.frame
                data = encode(frame)  # once for every TCP client
                if effect.conns is not audience or run is None:
                    audience = effect.conns
                    run = _Run(frame, data, len(audience))
                    for conn_id in audience:
                        runs = queued.get(conn_id)
                        if runs is None:
                            queued[conn_id] = [run]
                        else:
                            runs.append(run)
                else:
                    run.add(frame, data)
                if type(frame) in _REPLIES_ASKED_FOR:
                    for conn_id in audience:
                        replies[conn_id] = replies.get(conn_id, 0) + len(data)
            elif isinstance(effect, Close):
                self._write_queued(queued)
                queued, audience = {}, None
                self._close(effect.conn)
        self._write_queued(queued)
        if replies:
            self._allow_replies(replies)

    def _write_queued(self, queued: dict[ConnId, list[_Run]]) -> None:
        connections = self._connections
        other: dict[tuple[Any, int], list[bytes]] = {}  # other doors' encodings, once each
        for conn_id, runs in queued.items():
            conn = connections.get(conn_id)
            if conn is None or (transport := conn.transport) is None:
                continue
            door = conn.encode_frame
            if door is encode:
                if len(runs) == 1:  # the same list for the whole audience, never copied
                    transport.write_frames(runs[0].chunks(), runs[0].size)
                else:
                    transport.write_frames([data for run in runs for data in run.chunks()],
                                           sum(run.size for run in runs))
                continue
            for run in runs:  # a door may encode per connection, and close while encoding
                key = (door, id(run))
                encoded = other.get(key)
                if encoded is not None:
                    transport.write_frames(encoded)
                    continue
                other[key] = encoded = []
                for frame in run.frames:
                    encoded.append(data := door(frame))
                    transport.write(data)

    def _close(self, conn_id: ConnId) -> None:
        conn = self._connections.get(conn_id)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.close(CLOSE_GRACE_S)

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
        now = self.clock.now()
        self.apply(self.state.tick(now))
        self._drop_stalled(now.mono)

    def _drop_stalled(self, now: float) -> None:
        """Abort connections whose pending output has not moved for the stall timeout.

        A client that never reads but keeps pinging passes every liveness
        check, while what it was sent sits in our buffer and the kernel's
        for as long as it likes. Progress, not chatter, is what counts.
        """
        timeout = self.config.stall_timeout()
        seen = self._output_seen
        for conn in list(self._connections.values()):
            transport = conn.transport
            if transport is None or transport.get_write_buffer_size() == 0:
                seen.pop(conn.id, None)
                continue
            sent = transport.get_bytes_sent()
            last = seen.get(conn.id)
            if last is None or last[0] != sent:
                seen[conn.id] = (sent, now)
            elif now - last[1] >= timeout:
                log.info("connection %d: output stalled for %.0f s: dropping", conn.id,
                         now - last[1])
                seen.pop(conn.id, None)
                transport.abort()

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
