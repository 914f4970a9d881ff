"""Random sessions against ChatState and a store that is slow and sometimes fails.

A :class:`~hypothesis.stateful.RuleBasedStateMachine` connects, signs in (with
clashing names in random case), joins, parts, says (with repeated ids), renames,
whispers, quits, drops connections, takes sessions over and lets time pass.
It also plays the store, without SQLite: it takes the machine's store work
whenever it likes, and answers it in order, late, and sometimes with a failed
commit. It keeps its own record of what was sent to whom, and checks that:

- no ``message`` frame, acknowledgement or copy, is ever released for a
  message that is not committed;
- each room's committed messages are numbered 1..n without gaps, and as seen
  in ``message`` frames too; a repeated seq is only ever the original frame
  resent to one connection;
- a failed batch leaves no trace in the store, its senders (still connected)
  get ``internal`` with the message's id, and a resend with that id is stored;
- a ``say`` repeating an id of its sender's session in that room is never stored again;
- each member sees a room's messages in seq order;
- nothing is sent to, or closed on, a connection that is already closed;
- every frame fits in ``max_frame``; user names are unique case-insensitively.
"""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chattycat.protocol.messages import (
    Error,
    Frame,
    Hello,
    Join,
    Message,
    Nick,
    Part,
    Quit,
    Renamed,
    Request,
    Say,
    Welcome,
    WhisperTo,
    name_key,
    to_payload,
)
from chattycat.server.effects import Now, Read, WriteBatch
from chattycat.server.memory_store import MemoryStore
from chattycat.server.state import ChatState, Close, ConnId, ConnState, Effect, RoomsConfig, Send

MAX_FRAME = 1024
NAMES = ["alice", "bob", "carol", "dave"]
ROOMS = ["lobby", "dev", "ops"]
IDS = ["a", "b"]

names = st.sampled_from(NAMES).flatmap(
    lambda name: st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )
)
rooms = st.sampled_from(ROOMS) | st.just("lobby")
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=120)
picks = st.integers(0, 1_000)  # an index into whatever list a rule picks from
steps_s = st.floats(0.0, 2.0)


class ChatSessions(RuleBasedStateMachine):
    """Drives ChatState with random requests and a slow store, and audits every effect."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.config = RoomsConfig(
            max_frame=MAX_FRAME, flood_rate_per_s=5.0, flood_burst=8, heartbeat_s=30.0,
            handshake_timeout_s=10.0, session_ttl_s=120.0,
        )
        self.state = ChatState(self.config)
        self.now = 1_000.0
        self.next_conn = 1
        self.open: set[ConnId] = set()  # connected, not closed by either side
        self.closed: set[ConnId] = set()  # closed by the server, not yet reported gone
        self.gone: set[ConnId] = set()  # closed by the server or lost
        self.conn_of: dict[str, ConnId] = {}  # name key -> connection, from welcome/renamed
        self.sessions: dict[str, tuple[str, str]] = {}  # name key -> (name, session)
        self.last_seq: dict[str, int] = {}  # room -> highest seq seen
        self.originals: dict[tuple[str, int], Message] = {}
        self.seen: dict[tuple[ConnId, str], int] = {}  # (conn, room) -> last live seq
        self.ids_sent: set[tuple[str, str, str]] = set()  # (room, session, id) stored
        # What the store was given and has not answered yet, in order.
        self.submitted: deque[WriteBatch | Read] = deque()
        # (conn, id) of messages lost to a failed batch whose sender must be told.
        self.owed_errors: set[tuple[ConnId, str]] = set()
        self.failures = 0

    def at(self) -> Now:
        return Now(self.now, self.now)

    # -- auditing -------------------------------------------------------------

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Close):
                assert effect.conn not in self.gone, f"Close of a closed connection: {effect}"
                self.gone.add(effect.conn)
                self.closed.add(effect.conn)
                self.open.discard(effect.conn)
                self.conn_of = {k: c for k, c in self.conn_of.items() if c != effect.conn}
                continue
            assert effect.conns, effect
            assert len(set(effect.conns)) == len(effect.conns), effect
            stale = set(effect.conns) & self.gone
            assert not stale, f"{effect.frame} sent to closed connections {stale}"
            assert len(to_payload(effect.frame)) <= MAX_FRAME, effect.frame
            self.observe(effect)

    def observe(self, effect: Send) -> None:
        frame = effect.frame
        if isinstance(frame, Welcome):
            (conn,) = effect.conns
            self.conn_of[name_key(frame.name)] = conn
            self.sessions[name_key(frame.name)] = (frame.name, frame.session)
        elif isinstance(frame, Renamed):
            # Released late, a rename may reach the room after its user has gone.
            conn = self.conn_of.pop(name_key(frame.old), None)
            if conn is not None:
                self.conn_of[name_key(frame.new)] = conn
            known = self.sessions.pop(name_key(frame.old), None)
            if known is not None:  # (its welcome may have gone with its connection)
                self.sessions[name_key(frame.new)] = (frame.new, known[1])
        elif isinstance(frame, Message):
            self.observe_message(effect.conns, frame)
        elif isinstance(frame, Error) and frame.code == "internal" and frame.id is not None:
            for conn in effect.conns:
                self.owed_errors.discard((conn, frame.id))

    def observe_message(self, conns: tuple[ConnId, ...], message: Message) -> None:
        stored = self.store.all_messages(message.room)
        assert message in stored, f"{message} released but not committed"
        last = self.last_seq.get(message.room, 0)
        if message.seq <= last:
            # only an idempotent resend may repeat a seq: the original, to one connection
            assert len(conns) == 1, (conns, message)
            # (the original may have reached no one still connected; the store has it)
            original = self.originals.get((message.room, message.seq))
            assert original is None or original == message
            return
        # A seq may be skipped here only when that copy reached no one still
        # connected; the store's own numbering is checked to be 1..n below.
        assert message.seq > last, f"{message.room}: {message.seq} after {last}"
        self.last_seq[message.room] = message.seq
        self.originals[(message.room, message.seq)] = message
        if message.id is not None:
            # Fewer than 1000 ids per session and room here: every earlier one is
            # remembered. (A session is known from its welcome; one whose welcome
            # went with its connection is told apart by name.)
            key = name_key(message.sender)
            session = self.sessions.get(key, (key, f"name:{key}"))[1]
            sent_by = (message.room, session, message.id)
            assert sent_by not in self.ids_sent, f"{message} stored again: {sent_by}"
            self.ids_sent.add(sent_by)
        for conn in conns:
            previous = self.seen.get((conn, message.room), 0)
            assert message.seq > previous, (conn, previous, message)
            self.seen[(conn, message.room)] = message.seq

    def request(self, conn: ConnId, request: Request) -> None:
        self.now += 0.1
        self.apply(self.state.receive(conn, request, self.at()))

    def has_active(self) -> bool:
        return any(self.state.state_of(c) is ConnState.ACTIVE for c in self.open)

    def pick_open(self, pick: int, wanted: ConnState = ConnState.ACTIVE) -> ConnId:
        """Mostly a connection in the ``wanted`` state, sometimes any open one."""
        fitting = [c for c in sorted(self.open) if self.state.state_of(c) is wanted]
        conns = fitting if fitting and pick % 8 != 7 else sorted(self.open)
        return conns[pick // 8 % len(conns)]

    # -- the store: given work at any time, answering in order, late or failing ------

    @rule()
    def end_of_pass(self) -> None:
        """The wiring hands the store the machine's work (a batch, then reads)."""
        work = self.state.take_store_work()
        if work.batch is not None:
            self.submitted.append(work.batch)
        self.submitted.extend(work.reads)

    @precondition(lambda self: self.submitted)
    @rule(fail=st.booleans() | st.just(False))
    def store_answers(self, fail: bool) -> None:
        """The store answers the oldest thing it was given; a batch may fail."""
        item = self.submitted.popleft()
        if isinstance(item, WriteBatch):
            if fail:
                self.fail(item)
            else:
                self.store.apply(item)
                self.apply(self.state.committed(item.id, self.at()))
        else:
            result = self.store.answer(item)
            self.apply(self.state.loaded(item.read, result.messages, result.truncated,
                                         self.at()))

    def fail(self, batch: WriteBatch) -> None:
        self.failures += 1
        before = {room: self.store.all_messages(room) for room in ROOMS}
        # Everything numbered and not committed is lost, this batch and the one gathering.
        lost = [p.message for p in self.state._ledger.pending.values()]
        for message in lost:
            sender = self.conn_of.get(name_key(message.sender))
            if message.id is not None and sender is not None:
                self.owed_errors.add((sender, message.id))
        self.apply(self.state.commit_failed(batch.id, self.at()))
        assert {room: self.store.all_messages(room) for room in ROOMS} == before
        for room in ROOMS:  # the numbering goes on from what is committed
            assert self.state.last_seq(room) == len(before[room])

    @precondition(lambda self: self.submitted or self.state.has_store_work())
    @rule()
    def store_catches_up(self) -> None:
        """Everything owed is answered, successfully: the quiet end of a busy spell."""
        while self.submitted or self.state.has_store_work():
            if not self.submitted:
                self.end_of_pass()
            self.store_answers(fail=False)
        open_conns = {c for c in self.open if self.state.state_of(c) is ConnState.ACTIVE}
        owed = {(c, i) for c, i in self.owed_errors if c in open_conns}
        assert not owed, f"senders not told their messages were lost: {owed}"
        self.owed_errors.clear()

    # -- rules ----------------------------------------------------------------

    @precondition(lambda self: len(self.open) < 6)
    @rule()
    def connect(self) -> None:
        conn, self.next_conn = self.next_conn, self.next_conn + 1
        assert self.state.connect(conn, self.at()) == []
        self.open.add(conn)

    @precondition(lambda self: self.open)
    @rule(pick=picks, name=names, with_session=st.booleans())
    def hello(self, pick: int, name: str, with_session: bool) -> None:
        conn = self.pick_open(pick, ConnState.AWAITING_HELLO)
        known = self.sessions.get(name_key(name))
        session = known[1] if known and with_session else None
        self.request(conn, Hello(name, session=session))

    @precondition(lambda self: self.sessions and self.open)
    @rule(pick=picks, resume=st.none() | st.dictionaries(rooms, st.integers(0, 30), max_size=3))
    def take_over(self, pick: int, resume: dict[str, int] | None) -> None:
        keys = sorted(self.sessions)
        name, session = self.sessions[keys[pick % len(keys)]]
        self.connect()
        conn = self.next_conn - 1
        self.request(conn, Hello(name, session=session, resume=resume))

    @precondition(lambda self: self.has_active())
    @rule(pick=picks, room=rooms)
    def join(self, pick: int, room: str) -> None:
        self.request(self.pick_open(pick), Join(room))

    @precondition(lambda self: self.has_active())
    @rule(pick=picks, room=rooms)
    def part(self, pick: int, room: str) -> None:
        self.request(self.pick_open(pick), Part(room))

    @precondition(lambda self: self.has_active())
    @rule(pick=picks, room=rooms, text=texts, id=st.none() | st.sampled_from(IDS))
    def say(self, pick: int, room: str, text: str, id: str | None) -> None:
        self.request(self.pick_open(pick), Say(room, text, id))

    @precondition(lambda self: self.has_active())
    @rule(pick=picks, room=rooms, text=texts, id=st.sampled_from(IDS))
    def say_and_retry(self, pick: int, room: str, text: str, id: str) -> None:
        """A client retrying a say it saw no acknowledgement for."""
        conn = self.pick_open(pick)
        self.request(conn, Say(room, text, id))
        self.request(conn, Say(room, text, id))

    @precondition(lambda self: self.has_active())
    @rule(pick=picks, name=names)
    def nick(self, pick: int, name: str) -> None:
        self.request(self.pick_open(pick), Nick(name))

    @precondition(lambda self: self.has_active())
    @rule(pick=picks, to=names, text=texts)
    def whisper(self, pick: int, to: str, text: str) -> None:
        self.request(self.pick_open(pick), WhisperTo(to, text))

    @precondition(lambda self: self.has_active())
    @rule(pick=picks, reason=st.none() | st.text(max_size=20))
    def quit(self, pick: int, reason: str | None) -> None:
        self.request(self.pick_open(pick), Quit(reason))

    @precondition(lambda self: self.open or self.closed)
    @rule(pick=picks)
    def disconnect(self, pick: int) -> None:
        """The peer goes away, or the server reports a connection it closed as gone."""
        conns = sorted(self.open | self.closed)
        conn = conns[pick % len(conns)]
        self.open.discard(conn)
        self.closed.discard(conn)
        self.gone.add(conn)
        self.conn_of = {k: c for k, c in self.conn_of.items() if c != conn}
        self.apply(self.state.disconnected(conn, self.at()))
        assert self.state.state_of(conn) is ConnState.CLOSED

    @rule(step=st.sampled_from([0.5, 5.0, 11.0, 31.0]) | steps_s)
    def tick(self, step: float) -> None:
        self.now += step
        self.apply(self.state.tick(self.at()))

    # -- invariants -----------------------------------------------------------

    @invariant()
    def names_are_unique_case_insensitively(self) -> None:
        keys = [name_key(n) for n in self.state.user_names()]
        assert len(keys) == len(set(keys)), keys

    @invariant()
    def committed_messages_are_numbered_1_to_n(self) -> None:
        for room in ROOMS:
            seqs = [m.seq for m in self.store.all_messages(room)]
            assert seqs == list(range(1, len(seqs) + 1)), (room, seqs)

    @invariant()
    def the_store_is_given_one_batch_at_a_time(self) -> None:
        assert sum(isinstance(item, WriteBatch) for item in self.submitted) <= 1

    @staticmethod
    def frames(effects: list[Effect]) -> list[Frame]:
        return [e.frame for e in effects if isinstance(e, Send)]


ChatSessions.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChatSessions = ChatSessions.TestCase
