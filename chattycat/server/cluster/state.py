"""The room state machine of one node of a cluster that shares its chat through Redis.

:class:`ClusterState` is :class:`~chattycat.server.state.ChatState` with the
facts that belong to the whole cluster taken out of its hands. It keeps its
own connections, flood control and fan-out; what must be decided once for
all nodes leaves as an op (:mod:`.ops`), in decision order, and comes back
as an answer:

- a name is claimed atomically in Redis before ``welcome`` (:mod:`.signin`);
- a ``say`` is numbered by its room's Redis stream, idempotence included;
  the room's messages, this node's and every other's, come back through
  :meth:`ClusterState.room_messages` in seq order and are sent then to the
  members connected here (:mod:`.feed` keeps the order and the cursors);
- other nodes' users are kept in the directory as remote members
  (:mod:`.replica`), changed by :meth:`ClusterState.remote` events. A
  request that reads them (``hello``, ``join``, ``who``, ``rooms``, a
  whisper to a name not known here) first waits for a :class:`~.ops.Settle`,
  so that it sees everything any node did before it was asked.

A history read of a room this node does not follow yet asks for the newest
messages *and* the room's seq (``up_to=FOLLOW``), and the wiring tells the
machine where it starts (:meth:`ClusterState.follow`), so that history and
live messages meet without a gap or a repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from chattycat.errors import ErrorCode, ProtocolError
from chattycat.protocol.messages import (
    Error,
    Frame,
    Join,
    Message,
    Nick,
    Request,
    Rooms,
    Say,
    Whisper,
    WhisperTo,
    Who,
    name_key,
)
from chattycat.server.cluster.feed import RoomFeed
from chattycat.server.cluster.ledger import ClusterLedger
from chattycat.server.cluster.ops import (
    FOLLOW,
    Op,
    Publish,
    Remote,
    RemoteAccount,
    RemoteIn,
    RemoteJoin,
    RemoteMove,
    RemoteNick,
    RemoteOut,
    RemotePart,
    RemoteUser,
    RemoteWhisper,
    SendWhisper,
    Settle,
    SignOut,
)
from chattycat.server.cluster.replica import ClusterDirectory, remote_user
from chattycat.server.cluster.signin import ClusterSignIn
from chattycat.server.directory import Directory
from chattycat.server.effects import ConnId, Effect, LoadHistory, Now, Page, Send
from chattycat.server.ledger import Ledger
from chattycat.server.model import REMOTE, Connection, RoomsConfig, User
from chattycat.server.sessions import SessionBook
from chattycat.server.state import ChatState

__all__ = ["ClusterState"]

UNAVAILABLE_TEXT = "the history store is unavailable; send it again"
# Bounds a `who` read of a room with no members: up to whatever is stored.
_ANY_SEQ = 2**62


def _error(code: ErrorCode, message: str) -> ProtocolError:
    return ProtocolError(code, message)


class ClusterState(ClusterSignIn, ChatState):
    """One node's machine: its connections here, the cluster's facts in Redis."""

    def __init__(self, config: RoomsConfig | None, node: str) -> None:
        self.node = node
        self._ops: list[Op] = []
        self._greetings = {}
        self._claims = {}
        self._renames = {}
        # Names this node won in Redis, with how many of its own in/move/nick
        # events for them it has not read yet: another node's event about such a
        # name read before the last of those is older than the win. Counted, not
        # just marked: a client flapping between nodes can make a node win the
        # same name twice before it reads the first win's event.
        self._won = {}
        self._whispers: dict[int, tuple[ConnId, WhisperTo, Whisper]] = {}
        super().__init__(config)
        self._feed = RoomFeed(self._out, self._directory.conns, self._is_known)
        # Sessions are the cluster's (cc:session:* in Redis); the machine's own
        # book is kept only because signing out still parks into it.
        self._sessions = SessionBook(self.config.session_ttl_s, _discard, 1)

    def _make_ledger(self) -> Ledger:
        return ClusterLedger(self._ops)

    def _make_directory(self) -> Directory:
        return ClusterDirectory(self._out, self.config.max_frame, self._ops.append,
                                self._local_rooms_changed)

    def _history_bound(self, room: str) -> int:
        cursor = self._feed.cursor(room)
        return FOLLOW if cursor is None else cursor

    def _send_room_state(self, conn: Connection, room: str,
                         resume: Mapping[str, int] | None, ref: Any) -> None:
        if resume and room in resume:
            # Taken over from a node further along in this room than this one.
            self._feed.seen_through(room, conn.id, resume[room])
        super()._send_room_state(conn, room, resume, ref)

    def _local_rooms_changed(self, room: str) -> None:
        self._feed.unfollow_if_idle(room)

    @property
    def _members(self) -> ClusterDirectory:
        directory = self._directory
        assert isinstance(directory, ClusterDirectory)
        return directory

    # -- work for Redis -------------------------------------------------------------

    def restore_cluster(self, users: Iterable[RemoteUser]) -> None:
        """The users signed in on other nodes when this one starts (no frames: nobody is here)."""
        for found in users:
            if found.node == self.node:
                continue  # this node's own from a previous life: signed out at start
            user = remote_user(found.name, found.color, found.node)
            self._directory.add(user)
            for room in found.rooms:
                self._directory.enter(user, room, 0.0)

    def take_cluster_work(self) -> list[Op]:
        """The ops decided since the last call, in order (reads included)."""
        ops, self._ops[:] = list(self._ops), []
        return ops

    def has_store_work(self) -> bool:
        return bool(self._ops) or self._ledger.has_work()

    def store_busy(self) -> bool:
        return (super().store_busy() or bool(self._ops) or self._feed.waiting()
                or bool(self._greetings) or bool(self._claims) or bool(self._renames)
                or bool(self._whispers))

    # -- inputs: room streams ----------------------------------------------------------

    def cursor(self, room: str) -> int | None:
        """The last seq of ``room`` delivered here; None if this node does not follow it."""
        return self._feed.cursor(room)

    def cursors(self) -> dict[str, int]:
        """The rooms this node follows and the last seq delivered in each."""
        return self._feed.cursors()

    def follow(self, room: str, top: int) -> int:
        """A ``FOLLOW`` read found ``room`` at seq ``top``; the seq its answer may show."""
        return self._feed.follow(room, top)

    def room_messages(self, room: str, messages: Iterable[Message], now: Now) -> list[Effect]:
        """Stored messages of ``room`` in seq order, from the stream: deliver the new ones."""
        self._feed.deliver(room, messages)
        return self._flush()

    def published(self, token: int, message: Message, duplicate: bool,
                  now: Now) -> list[Effect]:
        """Redis numbered a ``say`` (or found its id in the sender's window: ``duplicate``,
        and ``message`` is the original, for the sender alone)."""
        if duplicate:
            self._feed.repeated(token, message)
        else:
            self._feed.numbered(token, message.seq)
        return self._flush()

    def publish_failed(self, token: int, now: Now) -> list[Effect]:
        """A ``say`` did not reach Redis: its sender is told to send it again."""
        say = self._feed.say_of(token)
        if say is not None:
            self._feed.answered(token, self._unavailable(say.ref, say.id))
        return self._flush()

    def cluster_lost(self, now: Now) -> list[Effect]:
        """Redis is out of reach: what waits for messages not yet read may go now."""
        self._feed.release_numbered()
        return self._flush()

    # -- inputs: whispers and other nodes ------------------------------------------------

    def whispered(self, token: int, outcome: str, node: str, sent: Whisper | None,
                  now: Now) -> list[Effect]:
        """Redis answered a :class:`SendWhisper`: new (held by ``node``), again or gone."""
        waiting = self._whispers.pop(token, None)
        if waiting is None:
            return self._flush()
        conn_id, req, whisper = waiting
        conns: tuple[ConnId, ...] = (conn_id,) if self._is_known(conn_id) else ()
        frame: Frame = whisper
        if outcome == "again" and sent is not None:
            frame = Whisper(whisper.sender, sent.to, whisper.color, req.text, sent.ts, req.id,
                            req.action)
        elif outcome == "gone":
            error = _error(ErrorCode.NO_SUCH_USER, f"{whisper.to!r} is not online")
            frame = self._as_reply(error, req.ref, req.id)
        else:
            # The target here gets it even if its sender is gone: Redis counted it sent.
            target = self._directory.user(whisper.to)
            if node == self.node and target is not None and target.conn != REMOTE:
                conns = tuple(dict.fromkeys((target.conn, *conns)))
        self._out.fill(token, [Send(conns, frame)] if conns else [])
        return self._flush()

    def whisper_failed(self, token: int, now: Now) -> list[Effect]:
        """A whisper did not reach Redis."""
        waiting = self._whispers.pop(token, None)
        if waiting is not None:
            conn_id, req, _whisper = waiting
            effects: list[Effect] = []
            if self._is_known(conn_id):
                effects.append(Send((conn_id,), self._unavailable(req.ref, req.id)))
            self._out.fill(token, effects)
        return self._flush()

    def settled(self, read: int, now: Now) -> list[Effect]:
        """This node has read the events :class:`Settle` ``read`` waited for.

        Also when it cannot (Redis is out of reach): its replica is then the
        best answer there is, and better than none.
        """
        if self._greeting_settled(read, now):
            return self._flush()
        return self.loaded(read, [], False, now)

    def remote(self, event: Remote, now: Now) -> list[Effect]:
        """Another node's user did something (events from this node are skipped)."""
        if event.node == self.node:
            if isinstance(event, RemoteNick):
                self._read_own_win(name_key(event.name))
            elif isinstance(event, RemoteIn | RemoteMove):
                self._read_own_win(event.key)
            return self._flush()
        if isinstance(event, RemoteIn | RemoteMove) and event.key in self._won:
            return self._flush()  # from before this node won the name
        if isinstance(event, RemoteWhisper):
            target = self._directory.user(event.to_key)
            if event.to_node == self.node and target is not None and target.conn != REMOTE:
                self._out.send((target.conn,), event.whisper)
        elif isinstance(event, RemoteAccount):
            self._accounts.add(event.account)
        elif isinstance(event, RemoteIn | RemoteMove):
            self._remote_arrived(event, now)
        else:
            self._remote_changed(event)
        return self._flush()

    def _read_own_win(self, key: str) -> None:
        left = self._won.get(key, 0) - 1
        if left > 0:
            self._won[key] = left
        else:
            self._won.pop(key, None)

    def resync(self, users: Iterable[RemoteUser], now: Now) -> list[Effect]:
        """Make this node's view match the cluster's list of signed-in users.

        After the node fell behind the event stream, or was given up for dead
        (its users signed out by the others): users held elsewhere are added,
        moved or dropped to match, and a user of this node that the cluster no
        longer lists as this node's loses its connection (its client signs in
        again, here or elsewhere, and resumes).
        """
        self._won.clear()  # the snapshot is newer than any of those wins' events
        listed = {user.key: user for user in users}
        for user in list(self._directory.users()):
            found = listed.get(user.key)
            if user.conn != REMOTE:
                if found is None:
                    self._drop_stale(user)
                elif found.node != self.node:
                    self._handed_over(user, found.node)
            elif found is None or found.node == self.node:
                self._directory.remove(user, "disconnected")
        for found in listed.values():
            held = self._directory.user(found.key)
            if found.node == self.node:
                if held is None or held.conn == REMOTE:  # nobody here has it: a leftover
                    self._ops.append(SignOut(found.key, "", "", "disconnected",
                                             round(now.wall, 3)))
                continue
            if held is None:
                held = remote_user(found.name, found.color, found.node)
                self._directory.add(held)
            held.node = found.node
            for room in [r for r in held.rooms if r not in found.rooms]:
                self._directory.leave(held, room, "part", include_self=False)
            for room in found.rooms:
                if room not in held.rooms:
                    self._directory.enter(held, room, round(now.wall, 3))
        return self._flush()

    def _end(self, conn: Connection, reason: str, *, now: Now, close: bool = True) -> None:
        # The SignOut op parks the session at this time: the name's grace starts now.
        self._members.signed_out_at = round(now.wall, 3)
        super()._end(conn, reason, now=now, close=close)

    # -- requests whose facts are the cluster's --------------------------------------

    def _on_say(self, conn: Connection, user: User, req: Say, now: Now) -> None:
        self._require_member(user, req.room)
        message = Message(req.room, 1, user.name, user.color, req.text, round(now.wall, 3),
                          req.id, req.action)
        self._messaging.check_fits(message)
        token = self._ledger.next_read()
        self._feed.hold(token, conn.id, req)
        self._ops.append(Publish(token, message, user.session_key))

    def _on_whisper(self, conn: Connection, user: User, req: WhisperTo, now: Now) -> None:
        if self._directory.user(req.to) is None:
            # Perhaps signed in on another node a moment ago: look again once settled.
            self._settled(conn, req, lambda c, u: self._whisper(c, u, req, now))
            return
        self._whisper(conn, user, req, now)

    def _whisper(self, conn: Connection, user: User, req: WhisperTo, now: Now) -> None:
        target = self._directory.user(req.to)
        if target is None:
            raise _error(ErrorCode.NO_SUCH_USER, f"{req.to[:40]!r} is not online")
        whisper = Whisper(user.name, target.name, user.color, req.text, round(now.wall, 3),
                          req.id, req.action)
        self._messaging.check_fits(whisper)
        token = self._ledger.next_read()
        self._out.slot(token)
        self._whispers[token] = (conn.id, req, whisper)
        self._ops.append(SendWhisper(token, whisper, target.key, user.session_key))

    def _on_who(self, conn: Connection, user: User, req: Who, now: Now) -> None:
        self._settled(conn, req, lambda c, u: self._roster(c, req))

    def _roster(self, conn: Connection, req: Who) -> None:
        if self._directory.has_members(req.room):
            self._directory.send_roster(conn.id, req.room, req.ref)
            return
        read = LoadHistory(self._ledger.next_read(), req.room, Page.LATEST, 0, 1, _ANY_SEQ)

        def answer(c: Connection, u: User, stored: Iterable[Message], _t: bool) -> None:
            if not list(stored) and not self._directory.has_members(req.room):
                raise _error(ErrorCode.NO_SUCH_ROOM, f"there is no room {req.room}")
            self._directory.send_roster(c.id, req.room, req.ref)

        self._await(conn, req, read, answer)

    def _on_join(self, conn: Connection, user: User, req: Join, now: Now) -> None:
        # Its roster must show whoever joined on another node before.
        self._settled(conn, req, lambda c, u: ChatState._on_join(self, c, u, req, now))

    def _on_rooms(self, conn: Connection, user: User, req: Rooms, now: Now) -> None:
        self._settled(conn, req, lambda c, u: self._directory.send_room_list(c.id, req.ref))

    def _settled(self, conn: Connection, req: Request,
                 then: Callable[[Connection, User], None]) -> None:
        """Carry ``req`` on once this node has read every event Redis holds now."""
        token = self._ledger.next_read()

        def go_on(c: Connection, u: User, _stored: Sequence[Message], _t: bool) -> None:
            then(c, u)

        self._wait(conn, req, token, go_on)
        self._ops.append(Settle(token))

    # -- other nodes' users -----------------------------------------------------------

    def _remote_arrived(self, event: RemoteIn | RemoteMove, now: Now) -> None:
        user = self._directory.user(event.key)
        if user is not None and user.conn != REMOTE:
            if isinstance(event, RemoteMove):
                self._handed_over(user, event.node)
            else:
                self._drop_stale(user)  # this node was given up for dead meanwhile
                user = None
        if user is None:
            user = remote_user(event.name, event.color, event.node)
            self._directory.add(user)
        user.node = event.node
        if isinstance(event, RemoteMove):
            self._match_rooms(user, event.rooms, now)
        else:  # the rooms its claim joined (their own join events change nothing)
            for room in event.rooms:
                if room not in user.rooms:
                    self._directory.enter(user, room, round(now.wall, 3))

    def _remote_changed(self, event: RemoteJoin | RemotePart | RemoteOut | RemoteNick) -> None:
        key = event.old_key if isinstance(event, RemoteNick) else event.key
        user = self._directory.user(key)
        if user is None or user.conn != REMOTE or user.node != event.node:
            return  # not that node's user (any more): a late event
        if isinstance(event, RemoteJoin):
            if event.room not in user.rooms:
                self._directory.enter(user, event.room, event.ts)
        elif isinstance(event, RemotePart):
            if event.room in user.rooms:
                self._directory.leave(user, event.room, event.reason, include_self=False)
        elif isinstance(event, RemoteOut):
            self._directory.remove(user, event.reason)
        else:
            user.color = event.color
            if self._directory.user(event.name) in (None, user):
                self._directory.rename(user, event.name)

    # -- helpers --------------------------------------------------------------------

    def _is_known(self, conn_id: ConnId) -> bool:
        # Closed by this server (quit, replaced) but not gone yet: what was decided
        # before the close still reaches it, ahead of the close, as on one server.
        return conn_id in self._conns

    def _unavailable(self, ref: str | int | None, request_id: str | None) -> Frame:
        return self._as_reply(_error(ErrorCode.INTERNAL, UNAVAILABLE_TEXT), ref, request_id)

    @staticmethod
    def _as_reply(exc: ProtocolError, ref: str | int | None, request_id: str | None) -> Frame:
        exc.ref = ref if ref is not None else request_id
        return Error.from_exception(exc, request_id)


def _discard(_write: object) -> None:
    pass


def _handlers() -> dict[type[Request], Any]:
    own: dict[type[Request], Any] = {
        Say: ClusterState._on_say,
        WhisperTo: ClusterState._on_whisper,
        Nick: ClusterState._on_nick,
        Who: ClusterState._on_who,
        Rooms: ClusterState._on_rooms,
        Join: ClusterState._on_join,
    }
    return {**ChatState._handlers, **own}


ClusterState._handlers = _handlers()
