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
"""

from __future__ import annotations

import logging
import random
import secrets
import ssl
from collections.abc import Callable, Sequence
from itertools import count

from chattycat.client.connection import ServerLink
from chattycat.client.events import (
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    Reconnecting,
)
from chattycat.client.liveness import Verdict, Watchdog, retry_delay_s
from chattycat.client.outbox import Outbox
from chattycat.client.session import ClientSession
from chattycat.errors import ErrorCode, RemoteProtocolError
from chattycat.net.connector import Connector, connect
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
    Joined,
    Member,
    Nick,
    Part,
    Ping,
    Pong,
    Quit,
    Renamed,
    Request,
    Rooms,
    Say,
    Welcome,
    WhisperTo,
    Who,
    encode,
    is_valid_name,
    is_valid_room,
    name_key,
    parse_event,
)

__all__ = [
    "Client",
    "ClientEvent",
    "ClientState",
    "Closed",
    "Connected",
    "ConnectionLost",
    "Failed",
    "Reconnecting",
]

log = logging.getLogger("chattycat.client.client")

# Rejections of a hello that no retry can fix.
_FATAL_HELLO_CODES = frozenset(
    {ErrorCode.BAD_NAME, ErrorCode.NAME_TAKEN, ErrorCode.UNSUPPORTED_PROTOCOL}
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
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout_s: float = 10.0,
        on_event: Callable[[ClientEvent], None] | None = None,
    ) -> None:
        if not is_valid_name(name):
            raise ValueError(f"bad name {name!r}: 1-32 characters from A-Z a-z 0-9 _ -")
        for room in rooms:
            _check_room(room)
        self.loop = loop
        self.name = name
        self.host, self.port = host, port
        self.color: str | None = None
        self.state = ClientState.IDLE
        self.retry_in_s: float | None = None
        self.on_event = on_event
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._connect_timeout_s = connect_timeout_s
        self._session = ClientSession(rooms)
        # Asked for particular rooms: the server's default room, which a fresh
        # hello joins, is left again unless it is one of them.
        self._leave_default_room = bool(rooms)
        self._initial_rooms = frozenset(rooms)
        self._session_token: str | None = None  # the server's, for resuming
        self._ever_welcomed = False
        self._link: ServerLink | None = None
        self._connector: Connector | None = None
        self._online_link: ServerLink | None = None
        self._attempt = 0
        # This connection's timers by purpose ("hello", "watchdog"); rescheduling
        # replaces the entry, so fired handles are not kept.
        self._timers: dict[str, TimerHandle] = {}
        self._retry_timer: TimerHandle | None = None
        # Ids and the order of outgoing requests come from one counter. Says
        # and whispers also stay pending in the session until acknowledged.
        self._counter = count(1)
        self._id_prefix = secrets.token_hex(4)
        self._outbox = Outbox(loop.time(), self._session.is_pending)
        self._pump_timer: TimerHandle | None = None
        self._watchdog = Watchdog()
        self._resuming = False
        self._closing: Transport | None = None  # flushing our quit

    # -- read-only state -------------------------------------------------------

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
        return self._session.pending_count()

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
            raise ValueError(f"bad name {to!r}")
        _check_text(text)
        message_id = self._next_id()
        self._submit_pending(WhisperTo(to, text, message_id, ref=message_id))
        return message_id

    def join(self, room: str) -> None:
        """Join ``room``; offline, it is joined on reconnect."""
        _check_room(room)
        self._session.join(room)
        if self.state is ClientState.ONLINE:
            self._submit(Join(room, ref=self._next_id()))

    def part(self, room: str) -> None:
        """Leave ``room``; offline, it is left out of the next resume."""
        _check_room(room)
        online = self.state is ClientState.ONLINE
        self._session.part(room, online=online)
        if online:
            self._submit(Part(room, ref=self._next_id()))

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

    def nick(self, name: str) -> None:
        """Change the user name (``name`` updates when the Renamed event arrives)."""
        if not is_valid_name(name):
            raise ValueError(f"bad name {name!r}")
        self._submit(Nick(name, ref=self._next_id()))

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
        resume = self._session.resume_points() if self._session_token is not None else {}
        self._resuming = bool(resume)
        hello = Hello(self.name, session=self._session_token, resume=resume or None)
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
        if not self._ever_welcomed:
            where = f"{self.host}:{self.port}"
            self._shut_down(Failed(f"cannot connect to {where}: {reason}", None), flush=False)
            return
        self._requeue_after_loss()
        delay = retry_delay_s(self._attempt, random.uniform(0.5, 1.0))
        self._attempt += 1
        self.state = ClientState.WAITING_TO_RETRY
        self.retry_in_s = delay
        self._retry_timer = self.loop.call_later(delay, self._retry)
        self._emit(ConnectionLost(reason, delay))

    def _retry(self) -> None:
        self._retry_timer = None
        if self.state is not ClientState.WAITING_TO_RETRY:
            return
        self._connect()
        self._emit(Reconnecting(self._attempt))

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
        self._outbox.requeue(self._session.pending())
        self._session.connection_lost()

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
        else:
            if isinstance(frame, Renamed) and name_key(frame.old) == name_key(self.name):
                self.name = frame.new
            shown = self._session.receive(frame, self.name)
            if shown is not None:
                self._emit(shown)
            if isinstance(frame, Joined) and self._leave_default_room and self._is_me(frame.name):
                self._leave_default_room = False
                if frame.room not in self._initial_rooms:
                    self.part(frame.room)

    def _is_me(self, name: str) -> bool:
        return name_key(name) == name_key(self.name)

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
        self._attempt = 0  # only a welcome proves the server is back
        self._ever_welcomed = True
        self.name, self.color = welcome.name, welcome.color
        if self._session_token is not None and welcome.session != self._session_token:
            # The server did not know our session: it may have restarted without
            # its history (--db :memory:) and be numbering rooms from 1 again.
            self._session.server_forgot_us()
        self._session_token = welcome.session
        link.decoder.max_frame = welcome.max_frame
        self._watchdog.heartbeat_s = float(welcome.heartbeat)
        self._outbox.restart(self.loop.time())
        if welcome.heartbeat > 0:
            self._schedule_watchdog()
        self._emit(Connected(welcome, resumed))
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
            self._session.refused(key, entry[1] if entry is not None else None)
        if error.code == ErrorCode.REPLACED:
            self._shut_down(Failed("signed in elsewhere with this session", error.code),
                            flush=False)
            return
        self._emit(error)

    # -- helpers ---------------------------------------------------------------

    def _cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _emit(self, event: ClientEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _next_id(self) -> str:
        return f"{self._id_prefix}-{next(self._counter)}"

    # -- outgoing --------------------------------------------------------------

    def _submit_pending(self, request: Say | WhisperTo) -> None:
        if self.state is ClientState.CLOSED:
            raise RuntimeError("the client is closed")
        order = next(self._counter)
        self._session.add_pending(order, request)
        self._outbox.put(order, request)
        self._pump()

    def _submit(self, request: Request) -> None:
        if self.state is ClientState.CLOSED:
            raise RuntimeError("the client is closed")
        self._outbox.put(next(self._counter), request)
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
        raise ValueError(f"bad room name {room!r}: 1-32 characters from a-z 0-9 _ -")


def _check_text(text: str) -> None:
    if not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise ValueError(f"a message is 1-{MAX_TEXT_CHARS} characters, not {len(text)}")

