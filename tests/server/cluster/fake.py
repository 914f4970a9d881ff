"""A few ClusterState machines wired through an in-memory stand-in for Redis.

:class:`FakeRedis` plays the *meaning* of the cluster's ops (what the Lua
scripts decide: numbering, idempotence, name claims, whisper windows, the
event stream), not Redis itself, so that the machine's own rules can be
checked without sockets. Each :class:`Node` is one machine plus what the
wiring does around it; nothing moves unless a test says so:

- :meth:`Node.send` carries the machine's ops out (Redis runs them at once,
  in order, as a pipeline would) and queues their answers;
- :meth:`Node.answer` hands queued answers back, in order (one connection);
- :meth:`Node.deliver` gives the machine a room's stored messages from its
  cursor on (any number of them: a late or partial read of the stream);
- :meth:`Node.events` gives it the cluster's events it has not seen (a
  :class:`Settle`'s answer reads them first, up to where the stream stood
  when it ran, as the wiring does).

:meth:`Cluster.settle` does all of that until nothing moves.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chattycat.protocol.messages import Frame, Hello, History, Message, Request, Welcome
from chattycat.server.cluster.ops import (
    FOLLOW,
    Claim,
    Claimed,
    ClaimMode,
    Enter,
    Fetch,
    Leave,
    Op,
    Publish,
    Remote,
    RemoteIn,
    RemoteJoin,
    RemoteMove,
    RemoteNick,
    RemoteOut,
    RemotePart,
    RemoteUser,
    RemoteWhisper,
    Rename,
    SendWhisper,
    Settle,
    SignOut,
)
from chattycat.server.cluster.state import ClusterState
from chattycat.server.effects import Close, ConnId, Effect, LoadHistory, Now, Page, Send
from chattycat.server.model import RoomsConfig

Answer = Callable[[ClusterState, Now], list[Effect]]

QUIET = RoomsConfig(flood_rate_per_s=0, heartbeat_s=0, handshake_timeout_s=1e9)


@dataclass
class _User:
    name: str
    color: str
    node: str
    digest: str
    rooms: set[str] = field(default_factory=set)


@dataclass
class FakeRedis:
    """What the scripts keep, as Python values; each op's effect as they decide it."""

    grace_s: float = 120.0
    window: int = 1000
    rooms: dict[str, list[Message]] = field(default_factory=dict)
    ids: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    users: dict[str, _User] = field(default_factory=dict)
    sessions: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # d, c, ts
    wids: dict[str, dict[str, tuple[str, float]]] = field(default_factory=dict)
    events: list[Remote] = field(default_factory=list)
    alive: set[str] = field(default_factory=set)
    down: bool = False  # every op fails (Redis out of reach)
    ran: list[tuple[str, Op]] = field(default_factory=list)

    def stored(self, room: str) -> list[Message]:
        return self.rooms.setdefault(room, [])

    def add(self, room: str, sender: str, text: str, ts: float = 0.0) -> Message:
        """Append a message as another node's publish would (no member here saw it yet)."""
        stream = self.stored(room)
        message = Message(room, len(stream) + 1, sender, "#123456", text, ts)
        stream.append(message)
        return message

    def snapshot(self) -> list[RemoteUser]:
        return [RemoteUser(key, u.name, u.color, u.node, tuple(sorted(u.rooms)))
                for key, u in self.users.items()]

    # -- ops --------------------------------------------------------------------

    def run(self, node: str, op: Op) -> Answer:
        self.ran.append((node, op))
        if self.down:
            return _failed(op)
        if isinstance(op, Publish):
            return self._publish(op)
        if isinstance(op, Fetch):
            return self._fetch(op)
        if isinstance(op, Claim):
            claimed = self._claim(node, op)
            return lambda m, now: m.claimed(op.token, claimed, now)
        if isinstance(op, Rename):
            outcome = self._rename(node, op)
            return lambda m, now: m.renamed(op.token, outcome, now)
        if isinstance(op, SendWhisper):
            return self._whisper(node, op)
        if isinstance(op, Settle):
            return lambda m, now: m.settled(op.read, now)
        self._membership(node, op)
        return lambda m, now: []

    def _publish(self, op: Publish) -> Answer:
        m = op.message
        ids = self.ids.setdefault((op.session, m.room), {})
        if m.id is not None and m.id in ids:
            original = self.stored(m.room)[ids[m.id] - 1]
            return lambda machine, now: machine.published(op.token, original, True, now)
        stream = self.stored(m.room)
        message = dataclasses.replace(m, seq=len(stream) + 1)
        stream.append(message)
        if m.id is not None:
            ids[m.id] = message.seq
            while len(ids) > self.window:
                del ids[next(iter(ids))]
        return lambda machine, now: machine.published(op.token, message, False, now)

    def _fetch(self, op: Fetch) -> Answer:
        read = op.read
        assert isinstance(read, LoadHistory)
        stream = self.stored(read.room)
        top = len(stream)
        messages, truncated = _page(stream, read, top)

        def answer(machine: ClusterState, now: Now) -> list[Effect]:
            # As the wiring does: a FOLLOW read learns where following begins.
            bound = machine.follow(read.room, top) if read.up_to == FOLLOW else read.up_to
            shown = [m for m in messages if m.seq <= bound]
            return machine.loaded(read.read, shown, truncated, now)

        return answer

    def _claim(self, node: str, op: Claim) -> Claimed:
        held = self.users.get(op.key)
        if held is not None:
            if held.node in self.alive:
                if (op.hello_digest and op.hello_digest == held.digest) \
                        or op.mode == ClaimMode.PROVEN:
                    origin = held.node
                    if op.hello_digest != held.digest:
                        held.digest = op.new_digest
                    held.node = node
                    self.sessions[op.key] = (held.digest, held.color, op.ts)
                    self.events.append(RemoteMove(node, op.key, held.name, held.color,
                                                  tuple(sorted(held.rooms))))
                    return Claimed("takeover", held.color, held.digest, origin,
                                   tuple(sorted(held.rooms)))
                return Claimed("auth" if op.mode == ClaimMode.ACCOUNT else "taken")
            self._sign_out(op.key, "disconnected", op.ts)
        outcome, color, digest = "fresh", op.color, op.new_digest
        parked = self.sessions.get(op.key)
        if parked is not None:
            if op.hello_digest and op.hello_digest == parked[0]:
                outcome, digest = "resume", op.hello_digest
                if parked[1] not in op.avoid:
                    color = parked[1]
            elif op.mode == ClaimMode.ACCOUNT:
                return Claimed("auth")
            elif op.mode != ClaimMode.PROVEN and op.ts - parked[2] < self.grace_s:
                return Claimed("reserved")
        elif op.mode == ClaimMode.ACCOUNT:
            return Claimed("auth")
        self.users[op.key] = _User(op.name, color, node, digest)
        self.sessions[op.key] = (digest, color, op.ts)
        self.events.append(RemoteIn(node, op.key, op.name, color))
        return Claimed(outcome, color, digest, "")

    def _rename(self, node: str, op: Rename) -> str:
        user = self._owned(op.old_key, node)
        if user is None:
            return "gone"
        if op.key != op.old_key:
            other = self.users.get(op.key)
            if other is not None:
                if other.node in self.alive:
                    return "taken"
                self._sign_out(op.key, "disconnected", op.ts)
            parked = self.sessions.get(op.key)
            if parked is not None and not op.owner and parked[0] != op.digest \
                    and op.ts - parked[2] < self.grace_s:
                return "reserved"
            del self.users[op.old_key]
            self.sessions.pop(op.old_key, None)
        user.name = op.name
        self.users[op.key] = user
        self.sessions[op.key] = (user.digest, user.color, op.ts)
        self.events.append(RemoteNick(node, op.old_key, op.name, user.color))
        return "ok"

    def _whisper(self, node: str, op: SendWhisper) -> Answer:
        w = op.whisper
        window = self.wids.setdefault(op.session, {})
        if w.id is not None and w.id in window:
            to, ts = window[w.id]
            sent = dataclasses.replace(w, to=to, ts=ts)
            return lambda m, now: m.whispered(op.token, "again", to, sent, now)
        target = self.users.get(op.to_key)
        if target is None or target.node not in self.alive:
            return lambda m, now: m.whispered(op.token, "gone", "", None, now)
        if target.node != node:
            self.events.append(RemoteWhisper(node, op.to_key, target.node, w))
        if w.id is not None:
            window[w.id] = (target.name, w.ts)
        held_by = target.node
        return lambda m, now: m.whispered(op.token, "new", held_by, None, now)

    def _membership(self, node: str, op: Op) -> None:
        if isinstance(op, Enter) and (user := self._owned(op.key, node)):
            user.rooms.add(op.room)
            self.events.append(RemoteJoin(node, op.key, op.room, op.ts))
        elif isinstance(op, Leave) and (user := self._owned(op.key, node)):
            user.rooms.discard(op.room)
            self.events.append(RemotePart(node, op.key, op.room, op.reason))
        elif isinstance(op, SignOut) and (user := self._owned(op.key, node)) \
                and op.digest in ("", user.digest):
            self._sign_out(op.key, op.reason, op.ts)

    def _owned(self, key: str, node: str) -> _User | None:
        user = self.users.get(key)
        return user if user is not None and user.node == node else None

    def _sign_out(self, key: str, reason: str, ts: float) -> None:
        user = self.users.pop(key)
        self.sessions[key] = (user.digest, user.color, ts)
        self.events.append(RemoteOut(user.node, key, reason))


def _page(stream: list[Message], read: LoadHistory, top: int) -> tuple[list[Message], bool]:
    up = top if read.up_to < 0 or read.up_to > top else read.up_to
    below = [m for m in stream if m.seq <= up]
    if read.page is Page.LATEST:
        return below[-read.limit:] if read.limit else [], False
    if read.page is Page.RESUME:
        newer = [m for m in below if m.seq > read.seq]
        return newer[-read.limit:], len(newer) > read.limit
    if read.page is Page.AFTER:
        return [m for m in below if m.seq > read.seq][:read.limit], False
    return [m for m in below if m.seq < read.seq][-read.limit:], False


def _failed(op: Op) -> Answer:
    if isinstance(op, Publish):
        return lambda m, now: m.publish_failed(op.token, now)
    if isinstance(op, Claim | Rename):
        return lambda m, now: m.claim_failed(op.token, now)
    if isinstance(op, SendWhisper):
        return lambda m, now: m.whisper_failed(op.token, now)
    if isinstance(op, Fetch):
        return lambda m, now: m.load_failed(op.read.read, now)
    if isinstance(op, Settle):  # the replica is the best answer there is
        return lambda m, now: m.settled(op.read, now)
    return lambda m, now: []


class Node:
    """One machine, its wiring played by hand, and what each connection received."""

    def __init__(self, redis: FakeRedis, name: str, config: RoomsConfig = QUIET) -> None:
        self.redis = redis
        self.name = name
        self.machine = ClusterState(config, name)
        self.machine.restore_cluster(redis.snapshot())
        redis.alive.add(name)
        self.inbox: dict[ConnId, list[Frame]] = defaultdict(list)
        self.closed: set[ConnId] = set()
        self.answers: deque[Answer] = deque()
        self.seen = len(redis.events)
        self.now = 1000.0

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                for conn in effect.conns:
                    assert conn not in self.closed, f"{effect.frame} sent to closed {conn}"
                    self.inbox[conn].append(effect.frame)
            elif isinstance(effect, Close):
                self.closed.add(effect.conn)

    def at(self) -> Now:
        return Now(self.now, self.now)

    def connect(self, conn: ConnId) -> None:
        self.apply(self.machine.connect(conn, self.at()))

    def receive(self, conn: ConnId, request: Request) -> None:
        self.apply(self.machine.receive(conn, request, self.at()))

    def greet(self, conn: ConnId, hello: Hello, *, unheard: bool = False) -> None:
        """``conn`` connects and says ``hello``; its settle is answered, so the
        next :meth:`send` carries its :class:`Claim` (``unheard``: see below)."""
        self.connect(conn)
        self.receive(conn, hello)
        self.settle_first(unheard=unheard)

    def settle_first(self, *, unheard: bool = False) -> None:
        """Run what the machine decided, a request's :class:`Settle` among it, and
        answer everything that is out, in order.

        ``unheard``: the settles go on as if they ran before the events this node
        has not read were written (they are read later), so that a test can keep
        those unread.
        """
        ops = self.send(unheard=unheard)
        assert any(isinstance(op, Settle) for op in ops), ops
        self.answer()

    def disconnected(self, conn: ConnId) -> None:
        self.apply(self.machine.disconnected(conn, self.at()))

    def input(self, step: Answer) -> None:
        self.apply(step(self.machine, self.at()))

    def send(self, *, unheard: bool = False) -> list[Op]:
        """Run the machine's ops in Redis now; their answers wait in :attr:`answers`.

        A settle's answer reads this node's events first, as far as the stream
        reached when it ran (``unheard``: none, see :meth:`settle_first`).
        """
        work = self.machine.take_store_work()
        if work.batch is not None:  # accounts: committed at once
            self.apply(self.machine.committed(work.batch.id, self.at()))
        ops = self.machine.take_cluster_work()
        for op in ops:
            answer = self.redis.run(self.name, op)
            if isinstance(op, Settle) and not self.redis.down and not unheard:
                answer = self._events_first(answer, len(self.redis.events))
            self.answers.append(answer)
        return ops

    def _events_first(self, answer: Answer, at: int) -> Answer:
        def first(machine: ClusterState, now: Now) -> list[Effect]:
            # Only as far as the stream reached when the settle ran: on one
            # connection, a read of anything later is answered after the ops
            # that wrote it (this node's own claim among them).
            self.events(at)
            return answer(machine, now)

        return first

    def answer(self, count: int | None = None) -> int:
        done = 0
        while self.answers and (count is None or done < count):
            self.input(self.answers.popleft())
            done += 1
        return done

    def deliver(self, room: str, count: int | None = None, *, again: int = 0) -> int:
        """Hand the machine ``count`` stored messages of ``room`` after its cursor
        (all if None), with the ``again`` before it repeated (a wake-up and a read)."""
        cursor = self.machine.cursor(room)
        stream = self.redis.stored(room)
        if cursor is None or cursor >= len(stream):
            return 0
        end = len(stream) if count is None else min(len(stream), cursor + count)
        batch = stream[max(0, cursor - again):end]
        self.input(lambda m, now: m.room_messages(room, batch, now))
        return end - cursor

    def events(self, upto: int | None = None) -> int:
        """Read the events not seen yet (up to the ``upto``-th)."""
        end = len(self.redis.events) if upto is None else max(self.seen, upto)
        fresh = self.redis.events[self.seen:end]
        self.seen = end
        for event in fresh:
            self.input(lambda m, now, e=event: m.remote(e, now))
        return len(fresh)

    def step(self) -> bool:
        moved = bool(self.send())
        moved = self.answer() > 0 or moved
        for room in list(self.machine.cursors()):
            moved = self.deliver(room) > 0 or moved
        return self.events() > 0 or moved

    def frames(self, conn: ConnId, kind: type[Any] | None = None) -> list[Any]:
        return [f for f in self.inbox[conn] if kind is None or isinstance(f, kind)]


class Cluster:
    """Nodes sharing one :class:`FakeRedis`."""

    def __init__(self, *names: str, config: RoomsConfig = QUIET, **redis: Any) -> None:
        self.redis = FakeRedis(grace_s=config.name_grace_s, **redis)
        self.nodes = {name: Node(self.redis, name, config) for name in names}

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def settle(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for node in self.nodes.values():
                moved = node.step() or moved
            if not moved:
                return
        raise AssertionError("the cluster did not settle")


def sign_in(cluster: Cluster, node: Node, conn: int, name: str, **hello: Any) -> Welcome:
    node.connect(conn)
    node.receive(conn, Hello(name, **hello))
    cluster.settle()
    welcome = node.frames(conn)[0]
    assert isinstance(welcome, Welcome), node.frames(conn)
    return welcome


def seqs(node: Node, conn: int) -> list[int]:
    """Every message seq ``conn`` saw, from history pages and live, in order."""
    out: list[int] = []
    for frame in node.frames(conn):
        if isinstance(frame, History):
            out.extend(m.seq for m in frame.messages)
        elif isinstance(frame, Message):
            out.append(frame.seq)
    return out
