"""The sans-IO chat server: sessions, names, colors, rooms, seq, history.

:class:`ChatState` is the whole server's behaviour with the I/O taken out.
Give it a connection id, a parsed request and the current time; it answers
with a list of effects (:class:`Send` a frame to some connections,
:class:`Close` one). It never touches a socket and never reads a clock, so
every rule of PROTOCOL.md is tested here without a network.

Which request may come in which connection state is the table ``_HANDLERS``
(active connections) plus the single rule that a connection awaiting
``hello`` accepts nothing else.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, auto
from hmac import compare_digest
from typing import Any

from chattycat._version import __version__
from chattycat.errors import ErrorCode, ProtocolError, RemoteProtocolError, StoreError
from chattycat.protocol.flood import TokenBucket
from chattycat.protocol.messages import (
    PROTOCOL_VERSION,
    Error,
    Frame,
    Hello,
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
    RoomInfo,
    Rooms,
    Say,
    Welcome,
    Whisper,
    WhisperTo,
    Who,
    decode_payload,
    name_key,
    parse_request,
    to_payload,
)
from chattycat.server.colors import pick_color
from chattycat.server.fit import HISTORY_ENVELOPE_BYTES, fit_history, fit_room_list, fit_roster
from chattycat.server.sessions import SessionBook, new_secret, secret_digest
from chattycat.server.store import HistoryStore

__all__ = ["ChatState", "Close", "ConnId", "ConnState", "Effect", "RoomsConfig", "Send"]

ConnId = int
# A quit reason is repeated to every room in a parted frame; keep it short.
MAX_REASON_CHARS = 200
# Whisper ids remembered per user, so a retried whisper is not delivered twice.
WHISPER_WINDOW = 100


class ConnState(Enum):
    """Life of a connection: it must say ``hello`` before anything else."""

    AWAITING_HELLO = auto()
    ACTIVE = auto()
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``frame`` to each of ``conns`` (one frame object, encoded once)."""

    conns: tuple[ConnId, ...]
    frame: Frame


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``conn`` after flushing what was sent to it before."""

    conn: ConnId


Effect = Send | Close


@dataclass(frozen=True, slots=True)
class RoomsConfig:
    """The server settings the state machine needs."""

    default_room: str = "lobby"
    max_frame: int = 65536
    flood_rate_per_s: float = 5.0
    flood_burst: int = 10
    heartbeat_s: float = 30.0
    handshake_timeout_s: float = 10.0
    # How long a disconnected user's session token stays good for a resume.
    session_ttl_s: float = 24 * 3600.0
    join_history: int = 50
    resume_history: int = 1000
    idempotence_window: int = 1000
    server_name: str = f"chattycat/{__version__}"


@dataclass(eq=False, slots=True)
class User:
    """A signed-in user; on a takeover it moves to the new connection."""

    name: str
    color: str
    session: str
    conn: ConnId
    rooms: dict[str, None] = field(default_factory=dict)  # an ordered set

    @property
    def key(self) -> str:
        return name_key(self.name)


@dataclass(eq=False, slots=True)
class Connection:
    """What the server knows of one connection."""

    id: ConnId
    state: ConnState
    bucket: TokenBucket
    last_heard: float
    opened_at: float
    ping_sent_at: float | None = None
    user: User | None = None


@dataclass(eq=False, slots=True)
class Room:
    """A room with members; rooms without members are not kept (their history is)."""

    name: str
    last_seq: int
    members: dict[str, User] = field(default_factory=dict)
    _conns: tuple[ConnId, ...] | None = None

    def conns(self) -> tuple[ConnId, ...]:
        """Connections of all members, cached until membership changes."""
        if self._conns is None:
            self._conns = tuple(user.conn for user in self.members.values())
        return self._conns

    def changed(self) -> None:
        self._conns = None


def _error(code: ErrorCode, message: str) -> ProtocolError:
    return ProtocolError(code, message)


def _frame_type(payload: bytes) -> str | None:
    """The ``type`` of a payload that failed to parse; None when it has none."""
    try:
        kind: str = decode_payload(payload)["type"]
    except RemoteProtocolError:
        return None
    return kind


def _quote(value: str) -> str:
    """Peer-supplied text for an error message, cut so the reply stays small."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _request_id(request: Request) -> str | None:
    return request.id if isinstance(request, Say | WhisperTo) else None


class ChatState:
    """Every rule of the protocol, as a function from requests to effects."""

    def __init__(self, store: HistoryStore, config: RoomsConfig | None = None) -> None:
        self.store = store
        self.config = config or RoomsConfig()
        self._conns: dict[ConnId, Connection] = {}
        self._users: dict[str, User] = {}
        self._rooms: dict[str, Room] = {}
        self._sessions = SessionBook(store, self.config.session_ttl_s)
        self._windows: dict[tuple[str, str], OrderedDict[str, int]] = {}
        self._whispers: dict[str, OrderedDict[str, Whisper]] = {}
        self._ping_counter = 0
        self._out: list[Effect] = []

    # -- inputs -------------------------------------------------------------

    def connect(self, conn: ConnId, now: float) -> list[Effect]:
        """A new connection; it has ``handshake_timeout_s`` to say ``hello``."""
        bucket = TokenBucket(self.config.flood_rate_per_s, self.config.flood_burst, now)
        self._conns[conn] = Connection(conn, ConnState.AWAITING_HELLO, bucket, now, now)
        return []

    def receive(self, conn_id: ConnId, request: Request, now: float) -> list[Effect]:
        """Carry out one request from ``conn_id``."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.state is ConnState.CLOSED:
            return []
        self._heard(conn, now)
        try:
            self._dispatch(conn, request, now)
        except ProtocolError as exc:
            self._reply_error(conn, exc.with_ref(request.ref), _request_id(request))
        return self._flush()

    def receive_payload(self, conn_id: ConnId, payload: bytes, now: float) -> list[Effect]:
        """Parse one frame's payload from ``conn_id`` and carry it out (or answer its error)."""
        try:
            request = parse_request(payload)
        except RemoteProtocolError as exc:
            state = self.state_of(conn_id)
            kind = _frame_type(payload)
            if state is ConnState.AWAITING_HELLO and kind is not None and kind != "hello":
                # The state rule comes first: before hello, any other type is refused as
                # such, however malformed its members are.
                exc = RemoteProtocolError(ErrorCode.HELLO_REQUIRED, "say hello first", ref=exc.ref)
            elif (
                state is ConnState.ACTIVE
                and kind not in ("ping", "pong")
                # Refusing a bad request costs as much as serving one: it counts too.
                and not self._conns[conn_id].bucket.allow(now)
            ):
                exc = RemoteProtocolError(ErrorCode.RATE_LIMITED, "slow down: too many requests",
                                          ref=exc.ref)
            return self.reject(conn_id, exc, now)
        return self.receive(conn_id, request, now)

    def reject(self, conn_id: ConnId, exc: ProtocolError, now: float) -> list[Effect]:
        """A frame from ``conn_id`` that could not be parsed: answer with its error."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.state is ConnState.CLOSED:
            return []
        self._heard(conn, now)
        self._reply_error(conn, exc, None)
        if exc.fatal:
            self._end(conn, "disconnected", now=now)
        return self._flush()

    def disconnected(self, conn_id: ConnId, now: float) -> list[Effect]:
        """The connection is gone (closed by the peer, an error, or by us)."""
        conn = self._conns.pop(conn_id, None)
        if conn is not None and conn.state is not ConnState.CLOSED:
            self._end(conn, "disconnected", now=now, close=False)
        return self._flush()

    def drop_slow_consumer(self, conn_id: ConnId, now: float) -> list[Effect]:
        """The connection's unsent output passed ``--max-outbuf``: tell it and close it."""
        conn = self._conns.get(conn_id)
        if conn is not None and conn.state is not ConnState.CLOSED:
            error = _error(ErrorCode.SLOW_CONSUMER, "too much output is waiting for you")
            self._reply_error(conn, error, None)
            self._end(conn, "disconnected", now=now)
        return self._flush()

    def tick(self, now: float) -> list[Effect]:
        """Handshake timeouts, heartbeats and session expiry; call about once a second."""
        for conn in list(self._conns.values()):
            if conn.state is ConnState.AWAITING_HELLO:
                if now - conn.opened_at >= self.config.handshake_timeout_s:
                    self._end(conn, "disconnected", now=now)
            elif conn.state is ConnState.ACTIVE and self.config.heartbeat_s > 0:
                self._check_liveness(conn, now)
        for key, digest in self._sessions.expire(now):
            self._forget_windows(key)
            self._whispers.pop(digest, None)
        return self._flush()

    def shutdown(self) -> list[Effect]:
        """Graceful stop: ``notice`` code ``shutdown`` to everyone, then close all."""
        notice = Notice("shutdown", "the server is shutting down")
        everyone = tuple(c.id for c in self._conns.values() if c.state is not ConnState.CLOSED)
        if everyone:
            self._send(everyone, notice)
        for conn_id in everyone:
            self._out.append(Close(conn_id))
            self._conns[conn_id].state = ConnState.CLOSED
        return self._flush()

    def restore_sessions(self, now: float) -> None:
        """Take back the sessions a previous run left in the store (call once, at start)."""
        self._sessions.restore(now)

    def resync(self) -> None:
        """The store lost its uncommitted messages: number on from what it holds."""
        for room in self._rooms.values():
            room.last_seq = self.store.last_seq(room.name)
        for (_key, room_name), window in self._windows.items():
            last = self.store.last_seq(room_name)
            for message_id in [i for i, seq in window.items() if seq > last]:
                del window[message_id]

    def message_lost(self, message: Message) -> list[Effect]:
        """A message was not stored after all: tell its sender instead of acknowledging it."""
        user = self._users.get(name_key(message.sender))
        if user is not None:
            error = _error(ErrorCode.INTERNAL, "the message could not be stored; send it again")
            self._reply_error(self._conns[user.conn], error, message.id)
        return self._flush()

    # -- queries ------------------------------------------------------------

    def state_of(self, conn_id: ConnId) -> ConnState:
        """The state of a connection (CLOSED once it is forgotten)."""
        conn = self._conns.get(conn_id)
        return ConnState.CLOSED if conn is None else conn.state

    def user_names(self) -> list[str]:
        """Names of the users signed in now."""
        return [user.name for user in self._users.values()]

    def members(self, room: str) -> list[str]:
        """Names of a room's members (empty for a room nobody is in)."""
        found = self._rooms.get(room)
        return [] if found is None else [user.name for user in found.members.values()]

    # -- dispatch -----------------------------------------------------------

    def _dispatch(self, conn: Connection, request: Request, now: float) -> None:
        if conn.state is ConnState.AWAITING_HELLO:
            if not isinstance(request, Hello):
                raise _error(ErrorCode.HELLO_REQUIRED, "say hello first")
            self._hello(conn, request, now)
            return
        user = conn.user
        assert user is not None  # an ACTIVE connection always has its user
        if not isinstance(request, Ping | Pong) and not conn.bucket.allow(now):
            raise _error(ErrorCode.RATE_LIMITED, "slow down: too many requests")
        handler = _HANDLERS[type(request)]
        handler(self, conn, user, request, now)

    def _heard(self, conn: Connection, now: float) -> None:
        conn.last_heard = now
        conn.ping_sent_at = None

    def _check_liveness(self, conn: Connection, now: float) -> None:
        heartbeat = self.config.heartbeat_s
        if conn.ping_sent_at is None:
            if now - conn.last_heard >= heartbeat:
                self._ping_counter += 1
                self._send((conn.id,), Ping(f"hb-{self._ping_counter}"))
                conn.ping_sent_at = now
        elif now - conn.ping_sent_at >= heartbeat:
            self._end(conn, "disconnected", now=now)

    # -- session ------------------------------------------------------------

    def _hello(self, conn: Connection, hello: Hello, now: float) -> None:
        if hello.protocol != PROTOCOL_VERSION:
            raise _error(ErrorCode.UNSUPPORTED_PROTOCOL, "this server speaks protocol 1")
        key = name_key(hello.name)
        holder = self._users.get(key)
        if holder is not None:
            if self._session_matches(hello, holder.session):
                self._take_over(conn, holder, hello, now)
                return
            raise _error(ErrorCode.NAME_TAKEN, f"the name {hello.name} is taken")
        parked, over = self._sessions.claim(key, hello.session)
        self._whispers.pop(over, None)  # a session nobody can resume any more
        rooms = list(hello.resume or ()) or [self.config.default_room]
        neighbours = self._colors_in(rooms)
        if parked is not None and hello.session is not None:
            session = hello.session
        else:
            session = new_secret()
        if parked is not None and parked.color not in neighbours:
            color = parked.color  # a returning user keeps its color when nobody near has it
        else:
            color = pick_color(neighbours, (u.color for u in self._users.values()))
        user = User(hello.name, color, session, conn.id)
        self._users[key] = user
        self._sessions.opened(key, session, color, now)
        self._activate(conn, user, hello)
        for room in rooms:
            self._enter(user, room, now)
            self._send_room_state(conn, room, hello.resume, ref=hello.ref)

    def _take_over(self, conn: Connection, user: User, hello: Hello, now: float) -> None:
        old = self._conns[user.conn]
        self._reply_error(old, _error(ErrorCode.REPLACED, "you signed in elsewhere"), None)
        self._out.append(Close(old.id))
        old.state, old.user = ConnState.CLOSED, None
        user.conn = conn.id
        for room in user.rooms:
            self._rooms[room].changed()
        self._activate(conn, user, hello)
        wanted = list(hello.resume or ()) or list(user.rooms)
        for room in [r for r in user.rooms if r not in wanted]:
            self._leave(user, room, "part", include_self=True)
        for room in wanted:
            if room not in user.rooms:
                self._enter(user, room, now)
            self._send_room_state(conn, room, hello.resume, ref=hello.ref)

    def _activate(self, conn: Connection, user: User, hello: Hello) -> None:
        conn.state, conn.user = ConnState.ACTIVE, user
        heartbeat = self.config.heartbeat_s
        welcome = Welcome(
            user.name, user.color, user.session, self.config.server_name, self.config.max_frame,
            int(heartbeat) if heartbeat == int(heartbeat) else heartbeat, ref=hello.ref,
        )
        self._send((conn.id,), welcome)

    @staticmethod
    def _session_matches(hello: Hello, session: str) -> bool:
        return hello.session is not None and compare_digest(hello.session, session)

    def _colors_in(self, rooms: Iterable[str]) -> list[str]:
        return [
            user.color for room in rooms if room in self._rooms
            for user in self._rooms[room].members.values()
        ]

    def _end(self, conn: Connection, reason: str, *, now: float, close: bool = True) -> None:
        """Take a connection out of the chat: its rooms see it leave, its session is parked."""
        user = conn.user
        if user is not None:
            for room in list(user.rooms):
                self._leave(user, room, reason, include_self=False)
            del self._users[user.key]
            self._sessions.park(user.key, user.session, user.color, now)
        conn.state, conn.user = ConnState.CLOSED, None
        if close:
            self._out.append(Close(conn.id))

    # -- rooms --------------------------------------------------------------

    def _enter(self, user: User, room_name: str, now: float) -> None:
        room = self._rooms.get(room_name)
        if room is None:
            room = Room(room_name, self.store.last_seq(room_name))
            self._rooms[room_name] = room
        room.members[user.key] = user
        room.changed()
        user.rooms[room_name] = None
        self._send(room.conns(), Joined(room_name, user.name, user.color, round(now, 3)))

    def _leave(self, user: User, room_name: str, reason: str, *, include_self: bool) -> None:
        room = self._rooms[room_name]
        if include_self:
            self._send(room.conns(), Parted(room_name, user.name, reason))
        del room.members[user.key]
        del user.rooms[room_name]
        room.changed()
        if not include_self and room.members:
            self._send(room.conns(), Parted(room_name, user.name, reason))
        if not room.members:
            del self._rooms[room_name]

    def _send_room_state(
        self, conn: Connection, room: str, resume: Mapping[str, int] | None, ref: Any
    ) -> None:
        self._send_roster(conn, room, ref)
        if resume and room in resume:
            messages, truncated = self.store.after(room, resume[room], self.config.resume_history)
        else:
            messages, truncated = self.store.latest(room, self.config.join_history), False
        self._send_history(conn, room, messages, ref, truncated)

    def _send_roster(self, conn: Connection, room: str, ref: Any) -> None:
        found = self._rooms.get(room)
        users = [] if found is None else found.members.values()
        members = [Member(u.name, u.color) for u in sorted(users, key=_by_name)]
        for frame in fit_roster(room, members, self.config.max_frame, ref=ref):
            self._send((conn.id,), frame)

    def _send_history(
        self, conn: Connection, room: str, messages: list[Message], ref: Any, truncated: bool
    ) -> None:
        frames = fit_history(room, messages, self.config.max_frame, ref=ref, truncated=truncated)
        for frame in frames:
            self._send((conn.id,), frame)

    # -- request handlers (the table _HANDLERS maps request types to these) ---

    def _on_hello(self, conn: Connection, user: User, req: Hello, now: float) -> None:
        raise _error(ErrorCode.BAD_STATE, "you already said hello")

    def _on_join(self, conn: Connection, user: User, req: Join, now: float) -> None:
        if req.room not in user.rooms:
            self._enter(user, req.room, now)
        self._send_room_state(conn, req.room, None, req.ref)

    def _on_part(self, conn: Connection, user: User, req: Part, now: float) -> None:
        self._require_member(user, req.room)
        self._leave(user, req.room, "part", include_self=True)

    def _on_who(self, conn: Connection, user: User, req: Who, now: float) -> None:
        if req.room not in self._rooms and not self.store.has_room(req.room):
            raise _error(ErrorCode.NO_SUCH_ROOM, f"there is no room {req.room}")
        self._send_roster(conn, req.room, req.ref)

    def _on_rooms(self, conn: Connection, user: User, req: Rooms, now: float) -> None:
        rooms = [RoomInfo(name, len(self._rooms[name].members)) for name in sorted(self._rooms)]
        for frame in fit_room_list(rooms, self.config.max_frame, ref=req.ref):
            self._send((conn.id,), frame)

    def _on_say(self, conn: Connection, user: User, req: Say, now: float) -> None:
        self._require_member(user, req.room)
        window = self._window(user.key, req.room)
        if req.id is not None and req.id in window:
            seq = window[req.id]
            original = self.store.page_after(req.room, seq - 1, 1)
            if original and original[0].seq == seq:
                self._send((conn.id,), original[0])
                return
        room = self._rooms[req.room]
        message = Message(req.room, room.last_seq + 1, user.name, user.color, req.text,
                          round(now, 3), req.id, req.action)
        self._check_fits(message)
        try:
            self.store.add(message)
        except StoreError:
            self.resync()
            raise _error(ErrorCode.INTERNAL, "the message could not be stored") from None
        room.last_seq += 1
        if req.id is not None:
            window[req.id] = message.seq
            if len(window) > self.config.idempotence_window:
                window.popitem(last=False)
        self._send(room.conns(), message)

    def _on_whisper(self, conn: Connection, user: User, req: WhisperTo, now: float) -> None:
        # Keyed by session, which outlives reconnects and renames, unlike a name.
        sent = self._whispers.setdefault(secret_digest(user.session), OrderedDict())
        if req.id is not None and req.id in sent:
            # A client retrying after a reconnect: whispers are not stored, but a
            # short in-memory window keeps the retry from reaching the target twice.
            self._send((conn.id,), sent[req.id])
            return
        target = self._users.get(name_key(req.to))
        if target is None:
            raise _error(ErrorCode.NO_SUCH_USER, f"{_quote(req.to)} is not online")
        whisper = Whisper(user.name, target.name, user.color, req.text, round(now, 3), req.id,
                          req.action)
        self._check_fits(whisper)
        if req.id is not None:
            sent[req.id] = whisper
            if len(sent) > WHISPER_WINDOW:
                sent.popitem(last=False)
        self._send(tuple(dict.fromkeys((target.conn, conn.id))), whisper)

    def _on_history(self, conn: Connection, user: User, req: HistoryQuery, now: float) -> None:
        self._require_member(user, req.room)
        if req.after is not None:
            messages = self.store.page_after(req.room, req.after, req.limit)
        elif req.before is not None:
            messages = self.store.before(req.room, req.before, req.limit)
        else:
            messages = self.store.latest(req.room, req.limit)
        self._send_history(conn, req.room, messages, req.ref, False)

    def _on_nick(self, conn: Connection, user: User, req: Nick, now: float) -> None:
        new_key = name_key(req.name)
        if new_key != user.key and new_key in self._users:
            raise _error(ErrorCode.NAME_TAKEN, f"the name {req.name} is taken")
        old = user.name
        if new_key != user.key:
            self._move_windows(user.key, new_key)
        del self._users[user.key]
        for room in user.rooms:
            members = self._rooms[room].members
            del members[user.key]
            members[new_key] = user
        old_key = user.key
        user.name = req.name
        self._users[new_key] = user
        displaced = self._sessions.renamed(old_key, new_key, user.session, user.color, now)
        self._whispers.pop(displaced, None)
        audience = [conn.id] + [c for r in user.rooms for c in self._rooms[r].conns()]
        self._send(tuple(dict.fromkeys(audience)), Renamed(old, user.name, user.color))

    def _on_ping(self, conn: Connection, user: User, req: Ping, now: float) -> None:
        self._send((conn.id,), Pong(req.token, ref=req.ref))

    def _on_pong(self, conn: Connection, user: User, req: Pong, now: float) -> None:
        pass  # hearing anything at all is what keeps the connection alive

    def _on_quit(self, conn: Connection, user: User, req: Quit, now: float) -> None:
        # The reason goes to every room in a parted frame, which must stay small.
        self._end(conn, (req.reason or "quit")[:MAX_REASON_CHARS], now=now)

    # -- helpers ------------------------------------------------------------

    def _require_member(self, user: User, room: str) -> None:
        if room not in user.rooms:
            raise _error(ErrorCode.NOT_IN_ROOM, f"you are not in {room}")

    def _check_fits(self, frame: Message | Whisper) -> None:
        # A stored message is later sent inside a history frame, whose envelope
        # (room, ref, flags) must fit around it too.
        budget = self.config.max_frame - HISTORY_ENVELOPE_BYTES
        # Cheap bound first: JSON escapes a character to at most 6 bytes.
        if len(frame.text) * 6 + 512 <= budget:
            return
        if len(to_payload(frame)) > budget:
            raise _error(ErrorCode.BAD_REQUEST, "text too long for this server's max_frame")

    def _window(self, key: str, room: str) -> OrderedDict[str, int]:
        """The ids of the last messages ``key`` sent to ``room``, loaded once from the store."""
        window = self._windows.get((key, room))
        if window is None:
            recent = self.store.recent_ids(key, room, self.config.idempotence_window)
            window = OrderedDict((m.id, m.seq) for m in recent if m.id is not None)
            self._windows[(key, room)] = window
        return window

    def _move_windows(self, old_key: str, new_key: str) -> None:
        """Carry the idempotence windows over a rename.

        A client resending after a reconnect uses the ids it chose before a
        /nick; the windows follow the user so those are still recognised
        (PROTOCOL 5 only promises this per name). The old name's windows are
        dropped: they reload from the store if that name comes back.
        """
        for pair in [pair for pair in self._windows if pair[0] == old_key]:
            moved = self._windows.pop(pair)
            window = self._window(new_key, pair[1])
            window.update(moved)
            while len(window) > self.config.idempotence_window:
                window.popitem(last=False)

    def _forget_windows(self, key: str) -> None:
        for pair in [pair for pair in self._windows if pair[0] == key]:
            del self._windows[pair]

    def _reply_error(self, conn: Connection, exc: ProtocolError, request_id: str | None) -> None:
        if exc.ref is None and request_id is not None:
            exc.ref = request_id  # PROTOCOL 8: rate_limited carries the request's ref/id
        self._send((conn.id,), Error.from_exception(exc, request_id))

    def _send(self, conns: tuple[ConnId, ...], frame: Frame) -> None:
        if conns:
            self._out.append(Send(conns, frame))

    def _flush(self) -> list[Effect]:
        out, self._out = self._out, []
        return out


def _by_name(user: User) -> tuple[str, str]:
    return (user.key, user.name)


_Handler = Callable[[ChatState, Connection, User, Any, float], None]
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
}
