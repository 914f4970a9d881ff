"""The sans-IO chat server: sessions, names, colors, rooms, seq, history.

:class:`ChatState` is the whole server's behaviour with the I/O taken out
(h11's rule: everything that decides a state transition lives here, and
nothing here does I/O). Its inputs are a connection's requests, the time,
and what the store answers; its outputs are effects (:mod:`.effects`):
frames to send, connections to close, writes and reads for the store.

- It owns every counter: each room's seq is numbered here, once.
- Writes leave in batches (:meth:`ChatState.take_store_work`); a ``message``
  frame, the sender's acknowledgement and everyone else's copy, leaves only
  after the wiring reports the batch :meth:`~ChatState.committed`. A batch
  that :meth:`~ChatState.commit_failed` leaves no trace: its senders get
  ``internal`` and may resend with the same id.
- Reads are requests too, answered through :meth:`~ChatState.loaded`, in the
  same pass or a later one; the machine does not care which.

Which request may come in which connection state is the table ``_HANDLERS``
(active connections) plus the single rule that a connection awaiting
``hello`` accepts nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chattycat.errors import ErrorCode, ProtocolError, RemoteProtocolError
from chattycat.protocol.flood import TokenBucket
from chattycat.protocol.messages import (
    Error,
    Hello,
    HistoryQuery,
    Join,
    Message,
    Nick,
    Notice,
    Part,
    Ping,
    Pong,
    Quit,
    Register,
    Request,
    Rooms,
    Say,
    WhisperTo,
    Who,
    decode_payload,
    name_key,
    parse_request,
)
from chattycat.server.accounts import Accounts
from chattycat.server.directory import Directory
from chattycat.server.effects import (
    Close,
    ConnId,
    Effect,
    LoadHistory,
    Now,
    Page,
    Read,
    Send,
    StoredState,
    StoreWork,
)
from chattycat.server.history import HistoryReplies
from chattycat.server.ledger import Ledger
from chattycat.server.messaging import Messaging, Then
from chattycat.server.model import Connection, ConnState, RoomsConfig, User
from chattycat.server.output import OutputQueue
from chattycat.server.sessions import SessionBook
from chattycat.server.signin import SignIn

__all__ = ["ChatState", "Close", "ConnId", "ConnState", "Effect", "Now", "RoomsConfig", "Send"]

# A quit reason is repeated to every room in a parted frame; keep it short.
MAX_REASON_CHARS = 200


def _error(code: ErrorCode, message: str) -> ProtocolError:
    return ProtocolError(code, message)


def _frame_type(payload: bytes) -> str | None:
    """The ``type`` of a payload that failed to parse; None when it has none."""
    try:
        kind: str = decode_payload(payload)["type"]
    except RemoteProtocolError:
        return None
    return kind


def _request_id(request: Request) -> str | None:
    return request.id if isinstance(request, Say | WhisperTo) else None


class ChatState(SignIn):
    """Every rule of the protocol, as a machine from inputs to effects.

    Signing in (hello, accounts, register, password work) is in :mod:`.signin`.
    """

    _handlers: dict[type[Request], _Handler]

    def __init__(self, config: RoomsConfig | None = None) -> None:
        self.config = config or RoomsConfig()
        self._conns: dict[ConnId, Connection] = {}
        self._out = OutputQueue()
        self.welcomed: list[ConnId] = []
        self._ledger = self._make_ledger()
        self._directory = self._make_directory()
        self._history = HistoryReplies(self._ledger, self._out, self.config.max_frame,
                                       self._is_active, self._history_bound)
        self._sessions = SessionBook(self.config.session_ttl_s, self._ledger.write,
                                     self.config.max_sessions, self.config.name_grace_s)
        self._accounts = Accounts(self.config.accounts, self.config.server_password)
        self._messaging = Messaging(self.config, self._ledger, self._out, self._directory,
                                    self._await)
        # Reads whose answer a request waits for: read -> (connection, request, then).
        self._awaited: dict[int, tuple[ConnId, Request, Then]] = {}
        self._ping_counter = 0

    # The parts a clustered machine (chattycat.server.cluster) replaces.

    def _make_ledger(self) -> Ledger:
        return Ledger()

    def _make_directory(self) -> Directory:
        return Directory(self._out, self.config.max_frame)

    def _history_bound(self, room: str) -> int:
        """The newest seq a history read of ``room`` may return (see LoadHistory.up_to)."""
        return self._ledger.last_seq(room)

    # -- inputs: start ----------------------------------------------------------

    def restore(self, stored: StoredState, now: Now) -> None:
        """Take back the counters and sessions the store holds (call once, at start)."""
        self._ledger.restore(stored.last_seqs)
        self._sessions.restore(stored.sessions, now.wall)
        self._accounts.restore(stored.accounts)

    # -- inputs: connections ------------------------------------------------------

    def connect(self, conn: ConnId, now: Now, address: str = "") -> list[Effect]:
        """A new connection from ``address`` (a key: IPv6 per /64); it has
        ``handshake_timeout_s`` to say ``hello``."""
        config = self.config
        bucket = TokenBucket(config.flood_rate_per_s, config.flood_burst, now.mono)
        pings = TokenBucket(config.ping_rate_per_s, config.ping_burst, now.mono)
        self._conns[conn] = Connection(conn, ConnState.AWAITING_HELLO, bucket, now.mono,
                                       now.mono, pings, address=address)
        return []

    def receive(self, conn_id: ConnId, request: Request, now: Now) -> list[Effect]:
        """Carry out one request from ``conn_id``."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.state is ConnState.CLOSED:
            return []
        self._heard(conn, now)
        if conn.waiting is not None:
            self._park(conn, request, now)
        else:
            self._handle(conn, request, now)
        return self._flush()

    def receive_payload(self, conn_id: ConnId, payload: bytes, now: Now) -> list[Effect]:
        """Parse one frame's payload from ``conn_id`` and carry it out (or answer its error)."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.state is ConnState.CLOSED:
            return []
        self._heard(conn, now)
        if conn.waiting is not None:
            self._park(conn, payload, now)
        else:
            self._handle_payload(conn, payload, now)
        return self._flush()

    def reject(self, conn_id: ConnId, exc: ProtocolError, now: Now) -> list[Effect]:
        """A frame from ``conn_id`` that could not be read at all: answer with its error."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.state is ConnState.CLOSED:
            return []
        self._heard(conn, now)
        self._reply_error(conn, exc, None)
        if exc.fatal:
            self._end(conn, "disconnected", now=now)
        return self._flush()

    def disconnected(self, conn_id: ConnId, now: Now) -> list[Effect]:
        """The connection is gone (closed by the peer, an error, or by us)."""
        conn = self._conns.pop(conn_id, None)
        if conn is not None and conn.state is not ConnState.CLOSED:
            self._end(conn, "disconnected", now=now, close=False)
        self._out.gone(conn_id)
        return self._flush()

    def drop_slow_consumer(self, conn_id: ConnId, now: Now) -> list[Effect]:
        """The connection's unsent output passed ``--max-outbuf``: tell it and close it."""
        conn = self._conns.get(conn_id)
        if conn is not None and conn.state is not ConnState.CLOSED:
            error = _error(ErrorCode.SLOW_CONSUMER, "too much output is waiting for you")
            self._reply_error(conn, error, None)
            self._end(conn, "disconnected", now=now)
        return self._flush()

    def tick(self, now: Now) -> list[Effect]:
        """Handshake timeouts, heartbeats and session expiry; call about once a second."""
        for conn in list(self._conns.values()):
            if conn.state is ConnState.AWAITING_HELLO:
                if now.mono - conn.opened_at >= self.config.handshake_timeout_s:
                    self._end(conn, "disconnected", now=now)
            elif conn.state is ConnState.ACTIVE and self.config.heartbeat_s > 0:
                self._check_liveness(conn, now)
        for _key, digest in self._sessions.expire(now.wall):
            self._messaging.session_over(digest)
        for held in self._accounts.due(now.mono):
            self._release_held(held)
        return self._flush()

    def shutdown(self) -> list[Effect]:
        """Graceful stop: ``notice`` code ``shutdown`` to everyone, then close all."""
        notice = Notice("shutdown", "the server is shutting down")
        everyone = tuple(c.id for c in self._conns.values() if c.state is not ConnState.CLOSED)
        self._out.send(everyone, notice)
        for conn_id in everyone:
            self._out.close(conn_id)
            self._conns[conn_id].state = ConnState.CLOSED
        return self._flush()

    # -- inputs: the store ----------------------------------------------------------

    def take_store_work(self) -> StoreWork:
        """The writes to commit as one batch, and the reads to run after it.

        The wiring calls this at the end of each loop pass (group commit) and
        hands both to the store in this order. While a batch is in flight,
        no new one is handed out: writes gather for the next.
        """
        return self._ledger.take()

    def has_store_work(self) -> bool:
        """Whether :meth:`take_store_work` would hand out anything now."""
        return self._ledger.has_work()

    def store_busy(self) -> bool:
        """Whether the store has work to take or owes an answer."""
        return (self._ledger.has_work() or self._ledger.in_flight() is not None
                or self._history.pending() or bool(self._awaited))

    def committed(self, batch_id: int, now: Now) -> list[Effect]:
        """The store made batch ``batch_id`` durable: its messages may go out."""
        if self._ledger.committed(batch_id) is not None:
            self._out.committed(batch_id)
        return self._flush()

    def commit_failed(self, batch_id: int, now: Now) -> list[Effect]:
        """The store could not commit batch ``batch_id``: nothing uncommitted was stored."""
        lost = self._ledger.failed(batch_id)
        if lost is None:
            return self._flush()
        self._messaging.undo(lost)
        return self._flush()

    def loaded(self, read: int, messages: Sequence[Message], truncated: bool,
               now: Now) -> list[Effect]:
        """The store answered ``read``."""
        if not self._history.answered(read, messages, truncated):
            awaited = self._awaited.pop(read, None)
            if awaited is not None:
                self._resume(awaited, messages, truncated, now)
        return self._flush()

    def load_failed(self, read: int, now: Now) -> list[Effect]:
        """The store could not answer ``read``: the asker gets ``internal``."""
        if self._history.failed(read):
            return self._flush()
        awaited = self._awaited.pop(read, None)
        if awaited is not None:
            conn_id, request, _then = awaited
            conn = self._conns.get(conn_id)
            if conn is not None and conn.state is ConnState.ACTIVE:
                conn.waiting = None
                error = _error(ErrorCode.INTERNAL, "the history store is unavailable")
                self._reply_error(conn, error.with_ref(request.ref), _request_id(request))
                self._drain_parked(conn)
        return self._flush()

    # -- queries ------------------------------------------------------------

    def state_of(self, conn_id: ConnId) -> ConnState:
        """The state of a connection (CLOSED once it is forgotten)."""
        conn = self._conns.get(conn_id)
        return ConnState.CLOSED if conn is None else conn.state

    def user_names(self) -> list[str]:
        """Names of the users signed in now."""
        return [user.name for user in self._directory.users()]

    def members(self, room: str) -> list[str]:
        """Names of a room's members (empty for a room nobody is in)."""
        return self._directory.members(room)

    def last_seq(self, room: str) -> int:
        """The highest seq given out in ``room`` (committed or still in flight)."""
        return self._ledger.last_seq(room)

    # -- dispatch -----------------------------------------------------------

    def _handle(self, conn: Connection, request: Request, now: Now) -> None:
        try:
            self._dispatch(conn, request, now)
        except ProtocolError as exc:
            self._reply_error(conn, exc.with_ref(request.ref), _request_id(request))

    def _handle_payload(self, conn: Connection, payload: bytes, now: Now) -> None:
        try:
            request = parse_request(payload)
        except RemoteProtocolError as exc:
            kind = _frame_type(payload)
            if conn.state is ConnState.AWAITING_HELLO and kind is not None and kind != "hello":
                # The state rule comes first: before hello, any other type is refused as
                # such, however malformed its members are.
                exc = RemoteProtocolError(ErrorCode.HELLO_REQUIRED, "say hello first", ref=exc.ref)
            elif kind in ("ping", "pong") and not conn.ping_bucket.allow(now.mono):
                return  # over its own bucket: dropped, never answered without limit
            elif (
                conn.state is ConnState.ACTIVE
                and kind not in ("ping", "pong")
                # Refusing a bad request costs as much as serving one: it counts too.
                and not conn.bucket.allow(now.mono)
            ):
                exc = RemoteProtocolError(ErrorCode.RATE_LIMITED, "slow down: too many requests",
                                          ref=exc.ref)
            self._reply_error(conn, exc, None)
            return
        self._handle(conn, request, now)

    def _dispatch(self, conn: Connection, request: Request, now: Now) -> None:
        if isinstance(request, Ping | Pong):
            # Exempt from flood control (PROTOCOL 8), not from a bound: a ping
            # over its own bucket is dropped, so answering costs at most that.
            if not conn.ping_bucket.allow(now.mono):
                return
        elif conn.state is ConnState.ACTIVE and not conn.bucket.allow(now.mono):
            raise _error(ErrorCode.RATE_LIMITED, "slow down: too many requests")
        # Before welcome the bound is max_failed_hellos (see _reply_error), and
        # new connections per address are rate-limited by the wiring: a hello
        # is never free, yet a client's first request is never refused.
        if conn.state is ConnState.AWAITING_HELLO:
            if not isinstance(request, Hello):
                raise _error(ErrorCode.HELLO_REQUIRED, "say hello first")
            self._hello(conn, request, now)
            return
        user = conn.user
        assert user is not None  # an ACTIVE connection always has its user
        handler = self._handlers[type(request)]
        handler(self, conn, user, request, now)

    def _park(self, conn: Connection, item: Request | bytes, now: Now) -> None:
        """Hold a request while the connection waits for the store, up to a bound."""
        if len(conn.parked) < self.config.max_parked_requests:
            conn.parked.append((item, now))
            return
        # Not carried out, like any request over the flood limit.
        ref = item.ref if isinstance(item, Request) else None
        error = RemoteProtocolError(ErrorCode.RATE_LIMITED, "slow down: too many requests",
                                    ref=ref)
        self._reply_error(conn, error, None)

    def _heard(self, conn: Connection, now: Now) -> None:
        conn.last_heard = now.mono
        conn.ping_sent_at = None

    def _check_liveness(self, conn: Connection, now: Now) -> None:
        heartbeat = self.config.heartbeat_s
        if conn.ping_sent_at is None:
            if now.mono - conn.last_heard >= heartbeat:
                self._ping_counter += 1
                self._out.send((conn.id,), Ping(f"hb-{self._ping_counter}"))
                conn.ping_sent_at = now.mono
        elif now.mono - conn.ping_sent_at >= heartbeat:
            self._end(conn, "disconnected", now=now)

    # -- waiting for the store -------------------------------------------------

    def _await(self, conn: Connection, request: Request, read: Read, then: Then) -> None:
        """Ask the store for ``read``; ``then`` carries the request on with the answer."""
        self._wait(conn, request, read.read, then)
        self._ledger.read(read)

    def _wait(self, conn: Connection, request: Request, token: int, then: Then) -> None:
        """``conn`` waits for the answer to ``token`` (its later requests are parked);
        ``then`` carries ``request`` on with it (see :meth:`loaded`)."""
        conn.waiting = token
        self._awaited[token] = (conn.id, request, then)

    def _resume(self, awaited: tuple[ConnId, Request, Then], messages: Sequence[Message],
                truncated: bool, now: Now) -> None:
        conn_id, request, then = awaited
        conn = self._conns.get(conn_id)
        if conn is None or conn.state is not ConnState.ACTIVE or conn.user is None:
            return  # gone (or taken over) while waiting; the client will retry
        conn.waiting = None
        try:
            then(conn, conn.user, messages, truncated)
        except ProtocolError as exc:
            self._reply_error(conn, exc.with_ref(request.ref), _request_id(request))
        self._drain_parked(conn)

    def _drain_parked(self, conn: Connection) -> None:
        while conn.parked and conn.waiting is None and conn.state is not ConnState.CLOSED:
            item, arrived = conn.parked.popleft()
            if isinstance(item, bytes):
                self._handle_payload(conn, item, arrived)
            else:
                self._handle(conn, item, arrived)

    # -- leaving ------------------------------------------------------------

    def _end(self, conn: Connection, reason: str, *, now: Now, close: bool = True) -> None:
        """Take a connection out of the chat: its rooms see it leave, its session is parked."""
        user = conn.user
        if user is not None:
            self._directory.remove(user, reason)
            for digest in self._sessions.park(user.key, user.session, user.color, now.wall):
                self._messaging.session_over(digest)  # evicted: the longest idle
        conn.state, conn.user = ConnState.CLOSED, None
        conn.parked.clear()
        if close:
            self._out.close(conn.id)

    # -- replies --------------------------------------------------------------

    def _is_active(self, conn_id: ConnId) -> bool:
        conn = self._conns.get(conn_id)
        return conn is not None and conn.state is ConnState.ACTIVE

    def _send_room_state(
        self, conn: Connection, room: str, resume: Mapping[str, int] | None, ref: Any
    ) -> None:
        self._directory.send_roster(conn.id, room, ref)
        if resume and room in resume:
            self._history.send(conn.id, room, Page.RESUME, resume[room],
                               self.config.resume_history, ref)
        else:
            self._history.send(conn.id, room, Page.LATEST, 0, self.config.join_history, ref)

    # -- request handlers (the table _HANDLERS maps request types to these) ---

    def _on_hello(self, conn: Connection, user: User, req: Hello, now: Now) -> None:
        raise _error(ErrorCode.BAD_STATE, "you already said hello")

    def _on_join(self, conn: Connection, user: User, req: Join, now: Now) -> None:
        if req.room not in user.rooms:
            if len(user.rooms) >= self.config.max_rooms_per_user:
                raise _error(ErrorCode.BAD_REQUEST,
                             f"you are in {len(user.rooms)} rooms, this server's limit")
            self._directory.enter(user, req.room, round(now.wall, 3))
        self._send_room_state(conn, req.room, None, req.ref)

    def _on_part(self, conn: Connection, user: User, req: Part, now: Now) -> None:
        self._require_member(user, req.room)
        self._directory.leave(user, req.room, "part", include_self=True)

    def _on_who(self, conn: Connection, user: User, req: Who, now: Now) -> None:
        if self._directory.has_members(req.room):
            self._directory.send_roster(conn.id, req.room, req.ref)
            return
        if not self._ledger.knows(req.room):
            raise _error(ErrorCode.NO_SUCH_ROOM, f"there is no room {req.room}")
        # Nobody is in it, but it was written to: whether any of that history
        # is left (retention may have pruned it all) is the store's to say.
        last = self._ledger.last_seq(req.room)
        read = LoadHistory(self._ledger.next_read(), req.room, Page.LATEST, 0, 1, last)

        def answer(c: Connection, u: User, stored: Sequence[Message], _t: bool) -> None:
            if not stored and not self._directory.has_members(req.room):
                raise _error(ErrorCode.NO_SUCH_ROOM, f"there is no room {req.room}")
            self._directory.send_roster(c.id, req.room, req.ref)

        self._await(conn, req, read, answer)

    def _on_rooms(self, conn: Connection, user: User, req: Rooms, now: Now) -> None:
        self._directory.send_room_list(conn.id, req.ref)

    def _on_say(self, conn: Connection, user: User, req: Say, now: Now) -> None:
        self._require_member(user, req.room)
        self._messaging.say(conn, user, req, now)

    def _on_whisper(self, conn: Connection, user: User, req: WhisperTo, now: Now) -> None:
        self._messaging.whisper(conn, user, req, now)

    def _on_history(self, conn: Connection, user: User, req: HistoryQuery, now: Now) -> None:
        self._require_member(user, req.room)
        if req.after is not None:
            self._history.send(conn.id, req.room, Page.AFTER, req.after, req.limit, req.ref)
        elif req.before is not None:
            self._history.send(conn.id, req.room, Page.BEFORE, req.before, req.limit, req.ref)
        else:
            self._history.send(conn.id, req.room, Page.LATEST, 0, req.limit, req.ref)

    def _on_nick(self, conn: Connection, user: User, req: Nick, now: Now) -> None:
        new_key, old_key = name_key(req.name), user.key
        if new_key != old_key:
            self._check_nick(user, req.name, new_key, now)
        self._directory.rename(user, req.name)
        displaced = self._sessions.renamed(old_key, new_key, user.session, user.color, now.wall)
        self._messaging.session_over(displaced)

    def _on_ping(self, conn: Connection, user: User, req: Ping, now: Now) -> None:
        self._out.send((conn.id,), Pong(req.token, ref=req.ref))

    def _on_pong(self, conn: Connection, user: User, req: Pong, now: Now) -> None:
        pass  # hearing anything at all is what keeps the connection alive

    def _on_quit(self, conn: Connection, user: User, req: Quit, now: Now) -> None:
        # The reason goes to every room in a parted frame, which must stay small.
        self._end(conn, (req.reason or "quit")[:MAX_REASON_CHARS], now=now)

    # -- helpers ------------------------------------------------------------

    def _require_member(self, user: User, room: str) -> None:
        if room not in user.rooms:
            raise _error(ErrorCode.NOT_IN_ROOM, f"you are not in {room}")

    def _reply_error(self, conn: Connection, exc: ProtocolError, request_id: str | None) -> None:
        if exc.ref is None and request_id is not None:
            exc.ref = request_id  # PROTOCOL 8: rate_limited carries the request's ref/id
        self._out.send((conn.id,), Error.from_exception(exc, request_id))
        if conn.state is ConnState.AWAITING_HELLO:
            # Before hello nothing is flood-controlled by a user's bucket alone:
            # a few failures are a typo or a taken name, more are not a client.
            conn.failed_hellos += 1
            if conn.failed_hellos > self.config.max_failed_hellos:
                conn.state = ConnState.CLOSED
                conn.parked.clear()
                self._out.close(conn.id)

    def _flush(self) -> list[Effect]:
        return self._out.take()


_Handler = Callable[[ChatState, Connection, User, Any, Now], None]
_HANDLERS: dict[type[Request], _Handler] = {
    Hello: ChatState._on_hello,
    Join: ChatState._on_join,
    Part: ChatState._on_part,
    Who: ChatState._on_who,
    Rooms: ChatState._on_rooms,
    Say: ChatState._on_say,
    WhisperTo: ChatState._on_whisper,
    HistoryQuery: ChatState._on_history,
    Nick: ChatState._on_nick,
    Ping: ChatState._on_ping,
    Pong: ChatState._on_pong,
    Quit: ChatState._on_quit,
    Register: ChatState._on_register,
}
# The table, as a class attribute: a machine that extends this one (a cluster
# node) replaces some handlers with its own table.
ChatState._handlers = _HANDLERS
