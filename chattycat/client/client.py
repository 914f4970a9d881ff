"""The client session: connect, hello, pending says, heartbeat, reconnect and resume.

:class:`Client` runs on an :class:`~chattycat.net.loop.EventLoop` and reports what
happens as :data:`ClientEvent` objects to one ``on_event`` callback. The user
interfaces (``chattycat.ui.scripted``, ``chattycat.ui.term.app``) and bots are built
on it; it never prints.

Delivery guarantees (PROTOCOL section 7):

- Every ``say`` gets an id ``<random prefix>-<counter>`` and stays *pending*
  until the server's ``message`` with that id comes back (its acknowledgement,
  possibly inside a resume ``history``). After a reconnect everything pending
  is sent again with its original id; the server's idempotence window turns a
  duplicate into a re-sent acknowledgement, so each line reaches the room once.
- Messages are shown once and in order: the client remembers the highest
  ``seq`` it delivered per room and drops anything at or below it. The resume
  ``hello`` asks for everything after that ``seq``.
- Requests leave through a token bucket a little slower than the server's
  flood control (:mod:`chattycat.client.outbox`); a ``rate_limited`` refusal of a
  queued request is retried after a pause.

Each fact has one owner: :class:`~chattycat.client.session.ClientSession`
(name, rooms, members, seqs) and :class:`~chattycat.client.outbox.Outbox`
(queued, sent and pending requests). After every change the client emits
their news as events, :class:`SessionChanged` and :class:`PendingChanged`,
right after the event that caused it; front ends render those.

Rooms asked for at start are entered with the first ``hello`` itself, as a
``resume`` from seq 0 (PROTOCOL section 7), so the user never passes through
the server's default room; of the history that brings, the newest
:data:`~chattycat.client.session.ENTRY_HISTORY_MESSAGES` are shown, as a join
would show them.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Sequence
from itertools import count

from chattycat.client.attempts import Address, Attempts
from chattycat.client.connection import ServerLink
from chattycat.client.events import (
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    PendingChanged,
    Reconnecting,
    RoomState,
    SessionChanged,
    Synced,
)
from chattycat.client.liveness import Verdict, Watchdog
from chattycat.client.outbox import Outbox, acknowledged_ids
from chattycat.client.session import ClientSession
from chattycat.errors import ErrorCode, RemoteProtocolError
from chattycat.net.connector import Connector, connect
from chattycat.net.contexts import SSLContext
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.transport import Transport
from chattycat.protocol.messages import (
    DEFAULT_HISTORY_LIMIT,
    MAX_TEXT_CHARS,
    Error,
    Frame,
    Hello,
    HistoryQuery,
    Join,
    Member,
    Nick,
    Part,
    Ping,
    Pong,
    Quit,
    Register,
    Registered,
    Request,
    Rooms,
    Say,
    Welcome,
    WhisperTo,
    Who,
    encode,
    parse_event,
)
from chattycat.protocol.names import NAME_RULE, ROOM_RULE, is_valid_name, is_valid_room
from chattycat.protocol.requests import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS

__all__ = [
    "Client",
    "ClientEvent",
    "ClientState",
    "Closed",
    "Connected",
    "ConnectionLost",
    "Failed",
    "PendingChanged",
    "Reconnecting",
    "RoomState",
    "SessionChanged",
    "Synced",
]

log = logging.getLogger("chattycat.client.client")

# Rejections of a hello that no retry can fix.
_FATAL_HELLO_CODES = frozenset(
    # auth_failed: retrying with the same password cannot help, and each
    # failure makes the server answer the next one more slowly.
    {ErrorCode.BAD_NAME, ErrorCode.NAME_TAKEN, ErrorCode.UNSUPPORTED_PROTOCOL,
     ErrorCode.AUTH_FAILED}
)


class Client:
    """A chat session that survives lost connections; see the module docstring."""

    def __init__(
        self,
        loop: EventLoop,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 9999,
        rooms: Sequence[str] = (),
        ssl_context: SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout_s: float = 10.0,
        on_event: Callable[[ClientEvent], None] | None = None,
        password: str | None = None,
        server_password: str | None = None,
        addresses: Sequence[tuple[str, int]] = (),
    ) -> None:
        """``addresses``, if given, replaces ``host`` and ``port``: servers of one
        service (cluster nodes) tried in turn; see :mod:`chattycat.client.attempts`.
        """
        if not is_valid_name(name):
            raise ValueError(f"bad name {name!r}: {NAME_RULE}")
        for room in rooms:
            _check_room(room)
        self.loop = loop
        self._attempts = Attempts([Address(h, p) for h, p in addresses]
                                  or [Address(host, port)])
        self.color: str | None = None
        self.state = ClientState.IDLE
        self.retry_in_s: float | None = None
        self.on_event = on_event
        self._ssl_context = ssl_context
        # Sent in every hello (PROTOCOL 10); never logged or shown.
        self._password = password
        self._server_password = server_password
        self._registering: str | None = None  # until the server answers `registered`
        self._server_hostname = server_hostname
        self._connect_timeout_s = connect_timeout_s
        self._session = ClientSession(name, rooms)
        self._session_token: str | None = None  # the server's, for resuming
        self._ever_welcomed = False
        self._link: ServerLink | None = None
        self._connector: Connector | None = None
        self._online_link: ServerLink | None = None
        # This connection's timers by purpose ("hello", "watchdog"); rescheduling
        # replaces the entry, so fired handles are not kept.
        self._timers: dict[str, TimerHandle] = {}
        self._retry_timer: TimerHandle | None = None
        self._ids = count(1)
        self._id_prefix = secrets.token_hex(4)
        self._outbox = Outbox(loop.time())
        self._published_pending = 0
        self._sync_tokens: set[str] = set()  # sync() pings not answered yet
        self._pump_timer: TimerHandle | None = None
        self._watchdog = Watchdog()
        self._resuming = False
        self._closing: Transport | None = None  # flushing our quit

    # -- read-only state -------------------------------------------------------

    @property
    def host(self) -> str:
        """The server address being tried, or connected to."""
        return self._attempts.current.host

    @property
    def port(self) -> int:
        """The server port being tried, or connected to."""
        return self._attempts.current.port

    @property
    def name(self) -> str:
        """The user's name (it follows welcome and renames)."""
        return self._session.me

    @property
    def rooms(self) -> list[str]:
        """The rooms joined (or to be joined on reconnect), in join order."""
        return self._session.rooms

    def members(self, room: str) -> list[Member]:
        """Known members of a joined room, sorted by name case-insensitively."""
        return self._session.members(room)

    def last_seq(self, room: str) -> int:
        """The highest seq delivered for ``room`` (0: none)."""
        return self._session.last_seq(room)

    def oldest_seq(self, room: str) -> int | None:
        """The lowest seq delivered for ``room``, for paging back with ``history``."""
        return self._session.oldest_seq(room)

    def pending(self) -> int:
        """Says and whispers not yet acknowledged by the server."""
        return self._outbox.pending_count()

    def snapshot(self) -> SessionChanged:
        """What the session knows now (as the latest SessionChanged event said)."""
        return self._session.snapshot()

    def drained(self) -> bool:
        """After quit(): whether the quit frame has left (run the loop until it has)."""
        return self._closing is None or self._closing.get_write_buffer_size() == 0

    # -- actions ---------------------------------------------------------------

    def start(self) -> None:
        """Connect; progress and failure arrive as events."""
        if self.state is not ClientState.IDLE:
            raise RuntimeError(f"start() on a {self.state.name} client")
        self._connect()

    def say(self, room: str, text: str, *, action: bool = False) -> str:
        """Send ``text`` to ``room`` (queued while offline); returns the message id."""
        _check_room(room)
        _check_text(text)
        message_id = self._next_id()
        self._submit_pending(Say(room, text, message_id, action, ref=message_id))
        return message_id

    def whisper(self, to: str, text: str) -> str:
        """Send ``text`` privately to ``to`` (queued while offline); returns the id."""
        if not is_valid_name(to):
            raise ValueError(f"bad name {to!r}: {NAME_RULE}")
        _check_text(text)
        message_id = self._next_id()
        self._submit_pending(WhisperTo(to, text, message_id, ref=message_id))
        return message_id

    def join(self, room: str) -> None:
        """Join ``room``; offline, it is joined on reconnect."""
        _check_room(room)
        self._check_open()
        self._session.join(room)
        if self.state is ClientState.ONLINE:
            self._submit(Join(room, ref=self._next_id()))
        self._publish()

    def part(self, room: str) -> None:
        """Leave ``room`` (ValueError if not in it); offline, it is left out of the next resume.

        A part right after a join that is still on its way is sent after it:
        the server carries them out in order.
        """
        _check_room(room)
        self._check_open()
        online = self.state is ClientState.ONLINE
        self._session.part(room, online=online)
        if online:
            self._submit(Part(room, ref=self._next_id()))
        self._publish()

    def who(self, room: str) -> None:
        """Ask for the roster of ``room`` (answered with a Roster event)."""
        _check_room(room)
        self._submit(Who(room, ref=self._next_id()))

    def list_rooms(self) -> None:
        """Ask for the rooms that have members (answered with a RoomList event)."""
        self._submit(Rooms(ref=self._next_id()))

    def history(
        self, room: str, *, before: int | None = None, limit: int = DEFAULT_HISTORY_LIMIT
    ) -> None:
        """Ask for stored messages of ``room``; the History reply is delivered as is."""
        _check_room(room)
        ref = self._next_id()
        self._session.expect_history(ref)
        self._submit(HistoryQuery(room, before=before, limit=limit, ref=ref))

    def sync(self) -> str:
        """Ask the server to confirm it has handled everything sent so far.

        A :class:`Synced` event with the returned token follows once it has
        (PROTOCOL section 6: the server answers a ``ping`` in order), unless
        the connection is lost first.
        """
        token = f"sync-{self._next_id()}"
        self._submit(Ping(token))
        self._sync_tokens.add(token)
        return token

    def nick(self, name: str) -> None:
        """Change the user name (``name`` updates when the Renamed event arrives)."""
        if not is_valid_name(name):
            raise ValueError(f"bad name {name!r}: {NAME_RULE}")
        self._submit(Nick(name, ref=self._next_id()))

    def register(self, password: str) -> None:
        """Register the current name with ``password`` (8-1024 characters; PROTOCOL 10).

        A ``Registered`` event follows, or an ``Error`` (``name_taken``: the
        name already is an account; ``bad_request``: this server does not
        let users register). Later connections sign in with this password.
        """
        if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
            raise ValueError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} "
                             "characters")
        self._registering = password
        self._submit(Register(password, ref=self._next_id()))

    def quit(self, reason: str | None = None) -> None:
        """Say goodbye (when online), close, and emit Closed."""
        link = self._online_link
        if self.state is ClientState.ONLINE and link is not None and link.transport is not None:
            link.transport.write(encode(Quit(reason)))
        self._shut_down(Closed(), flush=True)

    def close(self) -> None:
        """Stop at once (no quit frame) and emit Closed."""
        self._shut_down(Closed(), flush=False)

    # -- connecting ------------------------------------------------------------

    def _connect(self) -> None:
        self.state = ClientState.CONNECTING
        self.retry_in_s = None
        link = ServerLink(self._on_connection_made, self._on_payload, self._on_link_lost)
        self._link = link
        self._connector = connect(
            self.loop, link, self.host, self.port, timeout_s=self._connect_timeout_s,
            ssl_context=self._ssl_context, server_hostname=self._server_hostname,
        )

    def _on_connection_made(self, link: ServerLink) -> None:
        assert link.transport is not None
        self._connector = None
        self._watchdog.heard(self.loop.time())
        fresh = self._session_token is None
        resume = self._session.resume_points(fresh=fresh)
        self._resuming = bool(resume) and not fresh
        hello = Hello(self.name, session=self._session_token, resume=resume or None,
                      password=self._password, server_password=self._server_password)
        link.transport.write(encode(hello))
        # A server that accepts but never answers must not hang us forever.
        self._timers["hello"] = self.loop.call_later(
            self._connect_timeout_s, self._hello_timed_out, link)

    def _hello_timed_out(self, link: ServerLink) -> None:
        if link is self._link and self._online_link is not link:
            self._on_link_lost(link, "no welcome from the server")

    def _on_link_lost(self, link: ServerLink, reason: str) -> None:
        if link is not self._link or self.state is ClientState.CLOSED:
            return
        self._drop_link()
        several = len(self._attempts.addresses) > 1
        reason_shown = f"{self._attempts.current}: {reason}" if several else reason
        step = self._attempts.failed(reason, random.uniform(0.5, 1.0))
        if not self._ever_welcomed and step.round_failed:
            failures = self._attempts.describe_failures()
            self._shut_down(Failed(f"cannot connect to {failures}", None), flush=False)
            return
        self._requeue_after_loss()
        # No pause before another address (a dead node costs one reconnect);
        # a pause once every address has failed.
        self.state = ClientState.WAITING_TO_RETRY
        self.retry_in_s = step.delay_s
        self._retry_timer = self.loop.call_later(step.delay_s, self._retry)
        self._emit(ConnectionLost(reason_shown, step.delay_s))

    def _retry(self) -> None:
        self._retry_timer = None
        if self.state is not ClientState.WAITING_TO_RETRY:
            return
        self._connect()
        self._emit(Reconnecting(self._attempts.attempt))

    def _drop_link(self) -> None:
        """Forget the current connection (aborting it) and its timers."""
        link, self._link, self._online_link = self._link, None, None
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        if link is not None:
            link.stale = True
            if link.transport is not None:
                link.transport.abort()
        self._cancel_timers()
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None

    def _requeue_after_loss(self) -> None:
        self._outbox.requeue_after_loss()
        self._session.connection_lost()
        self._publish()

    def _shut_down(self, event: Closed | Failed, *, flush: bool) -> None:
        if self.state is ClientState.CLOSED:
            return
        link = self._online_link or self._link
        transport = link.transport if link is not None else None
        if flush and transport is not None:
            if link is not None:
                link.stale = True
            self._link = self._online_link = None
            self._closing = transport
            transport.close()
        self._drop_link()
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        self.state = ClientState.CLOSED
        self.retry_in_s = None
        self._emit(event)

    # -- incoming frames -------------------------------------------------------

    def _on_payload(self, link: ServerLink, payload: bytes) -> None:
        self._watchdog.heard(self.loop.time())
        try:
            frame = parse_event(payload)
        except RemoteProtocolError as exc:
            log.warning("ignoring a bad frame from the server: %s", exc)
            return
        if frame is None:
            return  # a type from a newer protocol version
        if self._online_link is not link:
            self._before_welcome(link, frame)
        elif isinstance(frame, Error):
            self._on_error(frame)
        elif isinstance(frame, Ping):
            self._write(Pong(frame.token))
        elif isinstance(frame, Pong) and frame.token in self._sync_tokens:
            self._sync_tokens.discard(str(frame.token))
            self._emit(Synced(str(frame.token)))
        else:
            self._receive(frame)

    def _receive(self, frame: Frame) -> None:
        """A frame for the session: acknowledgements to the outbox, then what to show."""
        for message_id in acknowledged_ids(frame, self.name):
            self._outbox.acknowledge(message_id)
        if isinstance(frame, Registered) and self._registering is not None:
            # Reconnections from now on prove the name with it.
            self._password, self._registering = self._registering, None
        shown = self._session.receive(frame)
        if shown is not None:
            self._emit(shown)
        self._publish()

    def _before_welcome(self, link: ServerLink, frame: Frame) -> None:
        if isinstance(frame, Welcome):
            self._on_welcome(link, frame)
        elif isinstance(frame, Error):
            code = frame.code
            if code in _FATAL_HELLO_CODES:
                reason = f"{self.host}:{self.port} refused the name {self.name}: {frame.message}"
                self._shut_down(Failed(reason, code), flush=False)
            else:
                self._on_link_lost(link, f"error {code}: {frame.message}")
        elif isinstance(frame, Ping):
            self._write(Pong(frame.token))

    def _on_welcome(self, link: ServerLink, welcome: Welcome) -> None:
        resumed = self._resuming
        self._cancel_timers()
        self._online_link = link
        self.state = ClientState.ONLINE
        self._attempts.welcomed()  # only a welcome proves the server is back
        self._ever_welcomed = True
        self.color = welcome.color
        # A server that did not know our session may have restarted without
        # its history (--db :memory:) and be numbering rooms from 1 again.
        forgot = self._session_token is not None and welcome.session != self._session_token
        self._session.welcomed(welcome.name, new_session=forgot)
        self._session_token = welcome.session
        link.decoder.max_frame = welcome.max_frame
        self._watchdog.heartbeat_s = float(welcome.heartbeat)
        self._outbox.restart(self.loop.time())
        if welcome.heartbeat > 0:
            self._schedule_watchdog()
        self._emit(Connected(welcome, resumed))
        self._publish()
        if self.state is not ClientState.ONLINE:
            return  # the event handler quit
        # Joins go straight out, ahead of the queue: lines typed before the
        # connection was up are meant for these rooms.
        for room in self._session.rooms_to_join():
            self._outbox.charge(self.loop.time())
            self._write(Join(room))
        self._pump()

    def _on_error(self, error: Error) -> None:
        key = error.id if error.id is not None else error.ref
        entry = self._outbox.take_sent(key) if isinstance(key, str) else None
        if entry is not None and error.code == ErrorCode.RATE_LIMITED:
            # Not carried out: send it again, in its original place, after a pause.
            self._schedule_pump(self._outbox.retry_later(entry, self.loop.time()))
            return
        if isinstance(key, str):
            self._outbox.refused(key)
            self._session.refused(key, entry[1] if entry is not None else None)
        if error.code == ErrorCode.REPLACED:
            self._shut_down(Failed("signed in elsewhere with this session", error.code),
                            flush=False)
            return
        self._emit(error)
        self._publish()

    # -- helpers ---------------------------------------------------------------

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _emit(self, event: ClientEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _publish(self) -> None:
        """Emit the session's and the outbox's news, if any, after the event that made it."""
        snapshot = self._session.take_snapshot()
        if snapshot is not None:
            self._emit(snapshot)
        pending = self._outbox.pending_count()
        if pending != self._published_pending:
            self._published_pending = pending
            self._emit(PendingChanged(pending))

    def _next_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def _check_open(self) -> None:
        if self.state is ClientState.CLOSED:
            raise RuntimeError("the client is closed")

    # -- outgoing --------------------------------------------------------------

    def _submit_pending(self, request: Say | WhisperTo) -> None:
        self._check_open()
        self._outbox.put(request)
        self._pump()
        self._publish()

    def _submit(self, request: Request) -> None:
        self._check_open()
        self._outbox.put(request)
        self._pump()

    def _write(self, request: Request) -> None:
        link = self._online_link or self._link
        if link is not None and link.transport is not None:
            link.transport.write(encode(request))

    def _pump(self) -> None:
        """Send queued requests as fast as the client-side token bucket allows."""
        if self.state is not ClientState.ONLINE or self._pump_timer is not None:
            return
        now = self.loop.time()
        while True:
            due = self._outbox.next_request(now)
            if due is None:
                return
            if isinstance(due, float):
                self._schedule_pump(due)
                return
            self._write(due)

    def _schedule_pump(self, delay_s: float) -> None:
        if self._pump_timer is not None:
            self._pump_timer.cancel()
        self._pump_timer = self.loop.call_later(delay_s, self._pump_due)

    def _pump_due(self) -> None:
        self._pump_timer = None
        self._pump()

    # -- heartbeat -------------------------------------------------------------

    def _schedule_watchdog(self) -> None:
        self._timers["watchdog"] = self.loop.call_later(self._watchdog.check_every_s, self._watch)

    def _watch(self) -> None:
        link = self._online_link
        if link is None or self.state is not ClientState.ONLINE:
            return
        now = self.loop.time()
        verdict = self._watchdog.check(now)
        if verdict is Verdict.LOST:
            silent_s = self._watchdog.silent_s(now)
            self._on_link_lost(link, f"no data from the server for {silent_s:.0f} s")
            return
        if verdict is Verdict.PING:
            self._write(Ping("client-hb"))
        self._schedule_watchdog()


def _check_room(room: str) -> None:
    if not is_valid_room(room):
        raise ValueError(f"bad room name {room!r}: {ROOM_RULE}")


def _check_text(text: str) -> None:
    if not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise ValueError(f"a message is 1-{MAX_TEXT_CHARS} characters, not {len(text)}")

