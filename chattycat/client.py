"""The client session: connect, hello, pending says, heartbeat, reconnect and resume.

:class:`Client` runs on an :class:`~chattycat.loop.EventLoop` and reports what
happens as :data:`ClientEvent` objects to one ``on_event`` callback. The user
interfaces (``chattycat.plain``, ``chattycat.interactive``) and bots are built
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
  default flood control, so a backlog sent after a reconnect is not refused;
  a ``rate_limited`` refusal of a queued request is retried after a pause.
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import random
import secrets
import ssl
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from itertools import count
from typing import Any

from chattycat.connector import Connector, connect
from chattycat.errors import ErrorCode, RemoteProtocolError
from chattycat.framing import FrameDecoder
from chattycat.loop import EventLoop, TimerHandle
from chattycat.messages import (
    MAX_TEXT_CHARS,
    Error,
    Frame,
    Hello,
    History,
    HistoryQuery,
    Join,
    Joined,
    Member,
    Message,
    Nick,
    Notice,
    Part,
    Parted,
    Ping,
    Pong,
    Quit,
    Renamed,
    Request,
    RoomList,
    Rooms,
    Roster,
    Say,
    Welcome,
    Whisper,
    WhisperTo,
    Who,
    encode,
    is_valid_name,
    is_valid_room,
    name_key,
    parse_event,
)
from chattycat.ratelimit import TokenBucket
from chattycat.transport import Protocol, Transport

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

log = logging.getLogger("chattycat.client")

# Before welcome we do not know the server's max_frame; accept anything sane.
PRE_WELCOME_MAX_FRAME_BYTES = 16 * 1024 * 1024
RETRY_FIRST_S = 1.0
RETRY_CAP_S = 30.0
# Below the server's default flood control (5/s, burst 10), so a backlog sent
# after a reconnect is paced rather than refused.
SEND_RATE_PER_S = 4.0
SEND_BURST = 8
RATE_LIMITED_RETRY_S = 1.0
# Refs of sent requests remembered to match errors; older ones are forgotten.
MAX_TRACKED_REFS = 1000
# Rejections of a hello that no retry can fix.
_FATAL_HELLO_CODES = frozenset(
    {ErrorCode.BAD_NAME, ErrorCode.NAME_TAKEN, ErrorCode.UNSUPPORTED_PROTOCOL}
)


class ClientState(Enum):
    """Where the client is in its life; see ``Client.state``."""

    IDLE = auto()  # created, start() not called yet
    CONNECTING = auto()  # TCP/TLS connect or hello under way
    ONLINE = auto()  # welcome received
    WAITING_TO_RETRY = auto()  # connection lost; a retry is scheduled
    CLOSED = auto()  # quit(), close() or gave up: final


@dataclass(frozen=True, slots=True)
class Connected:
    """A ``welcome`` arrived; ``resumed`` when the hello resumed earlier rooms."""

    welcome: Welcome
    resumed: bool


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The connection (or a retry) failed; the next attempt starts in ``retry_in_s``."""

    reason: str
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Retry number ``attempt`` (1, 2, ...) has started."""

    attempt: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The client gave up (start-up connect failure, hello rejected); it is closed."""

    reason: str
    code: str | None


@dataclass(frozen=True, slots=True)
class Closed:
    """The client is closed after ``quit()`` or ``close()``."""


ClientEvent = (
    Connected | ConnectionLost | Reconnecting | Failed | Closed
    | Message | Whisper | Joined | Parted | Roster | History | RoomList | Renamed | Notice | Error
)


class _Link(Protocol):
    """One connection attempt; forwards to the client until it is stale."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: Transport | None = None
        self.decoder = FrameDecoder(PRE_WELCOME_MAX_FRAME_BYTES)
        self.stale = False

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        if self.stale:
            transport.abort()
            return
        self.client._on_connection_made(self)

    def data_received(self, data: bytes) -> None:
        if self.stale:
            return
        self.decoder.feed(data)
        try:
            for payload in self.decoder:
                if self.stale:
                    return
                self.client._on_payload(self, payload)
        except RemoteProtocolError as exc:  # an oversized frame: the stream is lost
            self.client._on_link_lost(self, f"bad data from the server ({exc.message})")

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.stale:
            self.client._on_link_lost(self, _describe(exc) if exc else "connection closed")

    def connection_failed(self, exc: BaseException) -> None:
        if not self.stale:
            self.client._on_link_lost(self, _describe(exc))


def _describe(exc: BaseException) -> str:
    """A short lower-case reason: 'connection refused', 'timed out', ..."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in errno.errorcode:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


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
        # The rooms the user wants to be in (an ordered set), updated at once by
        # join()/part() and by the server's joined/parted about us.
        self._wanted: dict[str, None] = dict.fromkeys(rooms)
        self._confirmed: set[str] = set()  # rooms the server said we joined
        self._members: dict[str, dict[str, Member]] = {}
        self._roster_open: set[str] = set()  # rosters whose "more" parts are arriving
        self._last_seq: dict[str, int] = {}
        self._oldest_seq: dict[str, int] = {}
        self._session: str | None = None
        self._ever_welcomed = False
        self._link: _Link | None = None
        self._connector: Connector | None = None
        self._online_link: _Link | None = None
        self._attempt = 0
        self._timers: list[TimerHandle] = []
        self._retry_timer: TimerHandle | None = None
        # Outgoing requests, ordered by creation: (order, request). Says and
        # whispers also stay in _pending (by id) until acknowledged.
        self._queue: list[tuple[int, Request]] = []
        self._pending: OrderedDict[str, tuple[int, Say | WhisperTo]] = OrderedDict()
        self._sent: OrderedDict[str, tuple[int, Request]] = OrderedDict()
        self._history_refs: set[str] = set()
        self._counter = count(1)
        self._id_prefix = secrets.token_hex(4)
        self._bucket = TokenBucket(SEND_RATE_PER_S, SEND_BURST, loop.time())
        self._paused_until = 0.0
        self._pump_timer: TimerHandle | None = None
        self._heartbeat_s = 0.0
        self._last_heard = 0.0
        self._ping_out = False
        self._resuming = False
        self._closing: Transport | None = None  # flushing our quit

    # -- read-only state -------------------------------------------------------

    @property
    def rooms(self) -> list[str]:
        """The rooms joined (or to be joined on reconnect), in join order."""
        return list(self._wanted)

    def members(self, room: str) -> list[Member]:
        """Known members of a joined room, sorted by name case-insensitively."""
        members = self._members.get(room, {})
        return [members[key] for key in sorted(members)]

    def last_seq(self, room: str) -> int:
        """The highest seq delivered for ``room`` (0: none)."""
        return self._last_seq.get(room, 0)

    def oldest_seq(self, room: str) -> int | None:
        """The lowest seq delivered for ``room``, for paging back with ``history``."""
        return self._oldest_seq.get(room)

    def pending(self) -> int:
        """Says and whispers not yet acknowledged by the server."""
        return len(self._pending)

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
        self._submit_pending(message_id, Say(room, text, message_id, action, ref=message_id))
        return message_id

    def whisper(self, to: str, text: str) -> str:
        """Send ``text`` privately to ``to`` (queued while offline); returns the id."""
        if not is_valid_name(to):
            raise ValueError(f"bad name {to!r}")
        _check_text(text)
        message_id = self._next_id()
        self._submit_pending(message_id, WhisperTo(to, text, message_id, ref=message_id))
        return message_id

    def join(self, room: str) -> None:
        """Join ``room``; offline, it is joined on reconnect."""
        _check_room(room)
        self._wanted[room] = None
        if self.state is ClientState.ONLINE:
            self._submit(Join(room, ref=self._next_id()))

    def part(self, room: str) -> None:
        """Leave ``room``; offline, it is left out of the next resume."""
        _check_room(room)
        self._wanted.pop(room, None)
        if self.state is ClientState.ONLINE:
            self._submit(Part(room, ref=self._next_id()))
        else:
            self._forget_room(room)

    def who(self, room: str) -> None:
        """Ask for the roster of ``room`` (answered with a Roster event)."""
        _check_room(room)
        self._submit(Who(room, ref=self._next_id()))

    def list_rooms(self) -> None:
        """Ask for the rooms that have members (answered with a RoomList event)."""
        self._submit(Rooms(ref=self._next_id()))

    def history(self, room: str, *, before: int | None = None, limit: int = 50) -> None:
        """Ask for stored messages of ``room``; the History reply is delivered as is."""
        _check_room(room)
        ref = self._next_id()
        self._history_refs.add(ref)
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
        link = _Link(self)
        self._link = link
        self._connector = connect(
            self.loop, link, self.host, self.port, timeout_s=self._connect_timeout_s,
            ssl_context=self._ssl_context, server_hostname=self._server_hostname,
        )

    def _on_connection_made(self, link: _Link) -> None:
        assert link.transport is not None
        self._connector = None
        self._last_heard = self.loop.time()
        resume = self._resume_rooms()
        self._resuming = bool(resume)
        hello = Hello(self.name, session=self._session, resume=resume or None)
        link.transport.write(encode(hello))
        # A server that accepts but never answers must not hang us forever.
        self._timers.append(self.loop.call_later(
            self._connect_timeout_s, self._hello_timed_out, link))

    def _resume_rooms(self) -> dict[str, int]:
        if self._session is None:
            return {}
        # Rooms joined while offline were never confirmed: they get a plain join
        # after welcome, or a resume from seq 0 would replay 1000 old messages.
        return {r: self._last_seq.get(r, 0) for r in self._wanted if r in self._confirmed}

    def _hello_timed_out(self, link: _Link) -> None:
        if link is self._link and self._online_link is not link:
            self._on_link_lost(link, "no welcome from the server")

    def _on_link_lost(self, link: _Link, reason: str) -> None:
        if link is not self._link or self.state is ClientState.CLOSED:
            return
        self._drop_link()
        if not self._ever_welcomed:
            where = f"{self.host}:{self.port}"
            self._shut_down(Failed(f"cannot connect to {where}: {reason}", None), flush=False)
            return
        self._requeue_after_loss()
        delay = min(RETRY_CAP_S, RETRY_FIRST_S * 2**self._attempt)
        delay = round(delay * random.uniform(0.5, 1.0), 2)  # jitter: no thundering herd
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
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None

    def _requeue_after_loss(self) -> None:
        # Join/part requests are superseded by the wanted-room set; pending
        # says and whispers go again in their original order, then the rest.
        superseded = Say | WhisperTo | Join | Part
        others = [(n, r) for n, r in self._queue if not isinstance(r, superseded)]
        self._queue = list(self._pending.values()) + others
        heapq.heapify(self._queue)
        self._sent.clear()
        self._members.clear()
        self._roster_open.clear()
        self._confirmed &= set(self._wanted)

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

    def _on_payload(self, link: _Link, payload: bytes) -> None:
        self._last_heard = self.loop.time()
        self._ping_out = False
        try:
            frame = parse_event(payload)
        except RemoteProtocolError as exc:
            log.warning("ignoring a bad frame from the server: %s", exc)
            return
        if frame is None:
            return  # a type from a newer protocol version
        if self._online_link is not link:
            self._before_welcome(link, frame)
            return
        handler = _HANDLERS.get(type(frame))
        if handler is not None:
            handler(self, frame)

    def _before_welcome(self, link: _Link, frame: Frame) -> None:
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

    def _on_welcome(self, link: _Link, welcome: Welcome) -> None:
        resumed = self._resuming
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._online_link = link
        self.state = ClientState.ONLINE
        self._attempt = 0  # only a welcome proves the server is back
        self._ever_welcomed = True
        self.name, self.color, self._session = welcome.name, welcome.color, welcome.session
        link.decoder.max_frame = welcome.max_frame
        self._heartbeat_s = float(welcome.heartbeat)
        self._bucket = TokenBucket(SEND_RATE_PER_S, SEND_BURST, self.loop.time())
        self._paused_until = 0.0
        if self._heartbeat_s > 0:
            self._schedule_watchdog()
        self._emit(Connected(welcome, resumed))
        if self.state is not ClientState.ONLINE:
            return  # the event handler quit
        # Joins go straight out, ahead of the queue: lines typed before the
        # connection was up are meant for these rooms.
        for room in [r for r in self._wanted if r not in self._confirmed]:
            self._bucket.allow(self.loop.time())
            self._write(Join(room))
        self._pump()

    def _on_message(self, message: Message) -> None:
        self._acknowledge(message)
        if self._is_new(message):
            self._emit(message)

    def _on_whisper(self, whisper: Whisper) -> None:
        if whisper.id is not None and name_key(whisper.sender) == name_key(self.name):
            self._pending.pop(whisper.id, None)
        self._emit(whisper)

    def _on_history(self, history: History) -> None:
        for message in history.messages:
            self._acknowledge(message)
        if isinstance(history.ref, str) and history.ref in self._history_refs:
            if not history.more:
                self._history_refs.discard(history.ref)
            for message in history.messages:
                self._note_oldest(message)
            self._emit(history)  # an explicit page back: shown as is
            return
        fresh = tuple(m for m in history.messages if self._is_new(m))
        if fresh or history.truncated:
            self._emit(History(history.room, fresh, history.more, history.truncated, history.ref))

    def _on_joined(self, joined: Joined) -> None:
        if name_key(joined.name) == name_key(self.name):
            self._wanted[joined.room] = None
            self._confirmed.add(joined.room)
            self._members.setdefault(joined.room, {})
        if joined.room in self._members:
            self._members[joined.room][name_key(joined.name)] = Member(joined.name, joined.color)
        self._emit(joined)

    def _on_parted(self, parted: Parted) -> None:
        if name_key(parted.name) == name_key(self.name):
            self._wanted.pop(parted.room, None)
            self._forget_room(parted.room)
        elif parted.room in self._members:
            self._members[parted.room].pop(name_key(parted.name), None)
        self._emit(parted)

    def _on_roster(self, roster: Roster) -> None:
        if roster.room in self._wanted:
            self._confirmed.add(roster.room)
            if roster.room not in self._roster_open:
                self._members[roster.room] = {}
            members = self._members.setdefault(roster.room, {})
            members.update((name_key(m.name), m) for m in roster.members)
            if roster.more:
                self._roster_open.add(roster.room)
            else:
                self._roster_open.discard(roster.room)
        self._emit(roster)

    def _on_renamed(self, renamed: Renamed) -> None:
        old_key = name_key(renamed.old)
        if old_key == name_key(self.name):
            self.name = renamed.new
        for members in self._members.values():
            if members.pop(old_key, None) is not None:
                members[name_key(renamed.new)] = Member(renamed.new, renamed.color)
        self._emit(renamed)

    def _on_error(self, error: Error) -> None:
        key = error.id if error.id is not None else error.ref
        entry = self._sent.pop(key, None) if isinstance(key, str) else None
        if entry is not None and error.code == ErrorCode.RATE_LIMITED:
            # Not carried out: send it again, in its original place, after a pause.
            heapq.heappush(self._queue, entry)
            self._paused_until = self.loop.time() + RATE_LIMITED_RETRY_S
            self._schedule_pump(RATE_LIMITED_RETRY_S)
            return
        if isinstance(key, str):
            self._pending.pop(key, None)
            self._history_refs.discard(key)
        if entry is not None and isinstance(entry[1], Join):
            self._wanted.pop(entry[1].room, None)
        if error.code == ErrorCode.REPLACED:
            self._shut_down(Failed("signed in elsewhere with this session", error.code),
                            flush=False)
            return
        self._emit(error)

    def _on_ping(self, ping: Ping) -> None:
        self._write(Pong(ping.token))

    def _on_passthrough(self, frame: RoomList | Notice | Pong) -> None:
        if not isinstance(frame, Pong):
            self._emit(frame)

    # -- bookkeeping -----------------------------------------------------------

    def _acknowledge(self, message: Message) -> None:
        if message.id is not None and message.id in self._pending:
            del self._pending[message.id]

    def _is_new(self, message: Message) -> bool:
        """Whether ``message`` was not delivered yet (and record it as delivered)."""
        if message.seq <= self._last_seq.get(message.room, 0):
            return False
        self._last_seq[message.room] = message.seq
        self._note_oldest(message)
        return True

    def _note_oldest(self, message: Message) -> None:
        oldest = self._oldest_seq.get(message.room)
        if oldest is None or message.seq < oldest:
            self._oldest_seq[message.room] = message.seq

    def _forget_room(self, room: str) -> None:
        self._confirmed.discard(room)
        self._members.pop(room, None)
        self._roster_open.discard(room)

    def _emit(self, event: ClientEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _next_id(self) -> str:
        return f"{self._id_prefix}-{next(self._counter)}"

    # -- outgoing --------------------------------------------------------------

    def _submit_pending(self, message_id: str, request: Say | WhisperTo) -> None:
        if self.state is ClientState.CLOSED:
            raise RuntimeError("the client is closed")
        order = next(self._counter)
        self._pending[message_id] = (order, request)
        heapq.heappush(self._queue, (order, request))
        self._pump()

    def _submit(self, request: Request) -> None:
        if self.state is ClientState.CLOSED:
            raise RuntimeError("the client is closed")
        heapq.heappush(self._queue, (next(self._counter), request))
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
        if now < self._paused_until:
            self._schedule_pump(self._paused_until - now)
            return
        while self._queue:
            order, request = self._queue[0]
            if isinstance(request, Say | WhisperTo) and request.id not in self._pending:
                heapq.heappop(self._queue)  # acknowledged meanwhile (e.g. by a resume)
                continue
            if not self._bucket.allow(now):
                self._schedule_pump(1.0 / SEND_RATE_PER_S)
                return
            heapq.heappop(self._queue)
            if isinstance(request.ref, str):
                self._sent[request.ref] = (order, request)
                while len(self._sent) > MAX_TRACKED_REFS:
                    self._sent.popitem(last=False)
            self._write(request)

    def _schedule_pump(self, delay_s: float) -> None:
        if self._pump_timer is not None:
            self._pump_timer.cancel()
        self._pump_timer = self.loop.call_later(delay_s, self._pump_due)

    def _pump_due(self) -> None:
        self._pump_timer = None
        self._pump()

    # -- heartbeat -------------------------------------------------------------

    def _schedule_watchdog(self) -> None:
        interval = max(0.05, min(1.0, self._heartbeat_s / 4))
        self._timers.append(self.loop.call_later(interval, self._watchdog))

    def _watchdog(self) -> None:
        link = self._online_link
        if link is None or self.state is not ClientState.ONLINE:
            return
        self._timers = [t for t in self._timers if not t.cancelled()]
        silent_s = self.loop.time() - self._last_heard
        if silent_s >= 2 * self._heartbeat_s:
            self._on_link_lost(link, f"no data from the server for {silent_s:.0f} s")
            return
        if silent_s >= self._heartbeat_s and not self._ping_out:
            # The server pings only when *we* are silent; ask ourselves too.
            self._ping_out = True
            self._write(Ping("client-hb"))
        self._schedule_watchdog()


def _check_room(room: str) -> None:
    if not is_valid_room(room):
        raise ValueError(f"bad room name {room!r}: 1-32 characters from a-z 0-9 _ -")


def _check_text(text: str) -> None:
    if not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise ValueError(f"a message is 1-{MAX_TEXT_CHARS} characters, not {len(text)}")


_HANDLERS: dict[type[Frame], Callable[[Client, Any], None]] = {
    Message: Client._on_message,
    Whisper: Client._on_whisper,
    History: Client._on_history,
    Joined: Client._on_joined,
    Parted: Client._on_parted,
    Roster: Client._on_roster,
    Renamed: Client._on_renamed,
    Error: Client._on_error,
    Ping: Client._on_ping,
    RoomList: Client._on_passthrough,
    Notice: Client._on_passthrough,
    Pong: Client._on_passthrough,
    Welcome: lambda client, frame: None,  # a second welcome cannot happen; ignore it
}
