"""Random sessions against ChatState, checking the protocol's invariants after every step.

A :class:`~hypothesis.stateful.RuleBasedStateMachine` connects, signs in (with
clashing names in random case), joins, parts, says (with repeated ids), renames,
whispers, quits, drops connections, takes sessions over and lets time pass.
It keeps its own record of what was sent to whom, and checks that:

- user names are unique case-insensitively;
- each room's seq, as seen in ``message`` effects, runs 1..n without gaps, and a
  repeated seq is only ever the original frame resent to its sender alone;
- a ``say`` repeating an id of its sender's name in that room is never stored again;
- a new message reaches exactly the room's members, each in seq order;
- nothing is sent to, or closed on, a connection that is already closed;
- every frame fits in ``max_frame``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chattycat.protocol.messages import (
    Error,
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
from chattycat.server.state import ChatState, Close, ConnId, ConnState, Effect, RoomsConfig, Send
from chattycat.server.store import SQLiteStore

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
    """Drives ChatState with random requests and audits every effect it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.store = SQLiteStore(":memory:")
        self.config = RoomsConfig(
            max_frame=MAX_FRAME, flood_rate_per_s=5.0, flood_burst=8, heartbeat_s=30.0,
            handshake_timeout_s=10.0, session_ttl_s=120.0,
        )
        self.state = ChatState(self.store, self.config)
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
        self.ids_sent: set[tuple[str, str, str]] = set()  # (room, name key, id) stored

    def teardown(self) -> None:
        self.store.close()

    # -- auditing -------------------------------------------------------------

    def apply(self, effects: list[Effect], requester: ConnId | None = None) -> None:
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
            self.observe(effect, requester)

    def observe(self, effect: Send, requester: ConnId | None) -> None:
        frame = effect.frame
        if isinstance(frame, Welcome):
            (conn,) = effect.conns
            self.conn_of[name_key(frame.name)] = conn
            self.sessions[name_key(frame.name)] = (frame.name, frame.session)
        elif isinstance(frame, Renamed):
            conn = self.conn_of.pop(name_key(frame.old))
            self.conn_of[name_key(frame.new)] = conn
            session = self.sessions.pop(name_key(frame.old))[1]
            self.sessions[name_key(frame.new)] = (frame.new, session)
        elif isinstance(frame, Message):
            self.observe_message(effect.conns, frame, requester)

    def observe_message(
        self, conns: tuple[ConnId, ...], message: Message, requester: ConnId | None
    ) -> None:
        last = self.last_seq.get(message.room, 0)
        if message.seq <= last:
            # only an idempotent resend may repeat a seq: the original, to its sender alone
            assert conns == (requester,), (conns, requester, message)
            assert self.originals[(message.room, message.seq)] == message
            return
        assert message.seq == last + 1, f"gap in {message.room}: {last} -> {message.seq}"
        self.last_seq[message.room] = message.seq
        self.originals[(message.room, message.seq)] = message
        if message.id is not None:
            # fewer than 1000 ids per name and room here: every earlier one is remembered
            sent_by = (message.room, name_key(message.sender), message.id)
            assert sent_by not in self.ids_sent, f"{message} stored again: {sent_by}"
            self.ids_sent.add(sent_by)
        members = {self.conn_of[name_key(n)] for n in self.state.members(message.room)}
        assert set(conns) == members, (conns, members, message)
        for conn in conns:
            previous = self.seen.get((conn, message.room), 0)
            assert message.seq > previous, (conn, previous, message)
            self.seen[(conn, message.room)] = message.seq

    def request(self, conn: ConnId, request: Request) -> list[Effect]:
        self.now += 0.1
        effects = self.state.receive(conn, request, self.now)
        self.apply(effects, conn)
        return effects

    def has_active(self) -> bool:
        return any(self.state.state_of(c) is ConnState.ACTIVE for c in self.open)

    def pick_open(self, pick: int, wanted: ConnState = ConnState.ACTIVE) -> ConnId:
        """Mostly a connection in the ``wanted`` state, sometimes any open one."""
        fitting = [c for c in sorted(self.open) if self.state.state_of(c) is wanted]
        conns = fitting if fitting and pick % 8 != 7 else sorted(self.open)
        return conns[pick // 8 % len(conns)]

    # -- rules ----------------------------------------------------------------

    @precondition(lambda self: len(self.open) < 6)
    @rule()
    def connect(self) -> None:
        conn, self.next_conn = self.next_conn, self.next_conn + 1
        assert self.state.connect(conn, self.now) == []
        self.open.add(conn)

    @precondition(lambda self: self.open)
    @rule(pick=picks, name=names, with_session=st.booleans())
    def hello(self, pick: int, name: str, with_session: bool) -> None:
        conn = self.pick_open(pick, ConnState.AWAITING_HELLO)
        known = self.sessions.get(name_key(name))
        session = known[1] if known and with_session else None
        before = self.state.state_of(conn)
        effects = self.request(conn, Hello(name, session=session))
        if before is ConnState.ACTIVE:
            codes = [f.code for f in self.frames(effects) if isinstance(f, Error)]
            assert codes in (["bad_state"], ["rate_limited"])

    @precondition(lambda self: self.sessions and self.open)
    @rule(pick=picks, resume=st.none() | st.dictionaries(rooms, st.integers(0, 30), max_size=3))
    def take_over(self, pick: int, resume: dict[str, int] | None) -> None:
        keys = sorted(self.sessions)
        name, session = self.sessions[keys[pick % len(keys)]]
        old = self.conn_of.get(name_key(name))
        self.connect()
        conn = self.next_conn - 1
        effects = self.request(conn, Hello(name, session=session, resume=resume))
        if old is not None:
            assert Close(old) in effects
            assert self.state.state_of(conn) is ConnState.ACTIVE

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
        conn = self.pick_open(pick)
        active = self.state.state_of(conn) is ConnState.ACTIVE
        effects = self.request(conn, Quit(reason))
        limited = any(isinstance(f, Error) for f in self.frames(effects))
        if active and not limited:  # quit counts against flood control too
            assert effects[-1] == Close(conn)

    @precondition(lambda self: self.open or self.closed)
    @rule(pick=picks)
    def disconnect(self, pick: int) -> None:
        """The peer goes away, or the server reports a connection it closed as gone."""
        conns = sorted(self.open | self.closed)
        conn = conns[pick % len(conns)]
        was_open = conn in self.open
        self.open.discard(conn)
        self.closed.discard(conn)
        self.gone.add(conn)
        self.conn_of = {k: c for k, c in self.conn_of.items() if c != conn}
        effects = self.state.disconnected(conn, self.now)
        if not was_open:
            assert effects == []
        self.apply(effects)
        assert self.state.state_of(conn) is ConnState.CLOSED

    @rule(step=st.sampled_from([0.5, 5.0, 11.0, 31.0]) | steps_s)
    def tick(self, step: float) -> None:
        self.now += step
        self.apply(self.state.tick(self.now))

    # -- invariants -----------------------------------------------------------

    @invariant()
    def names_are_unique_case_insensitively(self) -> None:
        keys = [name_key(n) for n in self.state.user_names()]
        assert len(keys) == len(set(keys)), keys

    @invariant()
    def every_signed_in_user_is_on_an_open_connection(self) -> None:
        for name in self.state.user_names():
            conn = self.conn_of[name_key(name)]
            assert conn in self.open
            assert self.state.state_of(conn) is ConnState.ACTIVE

    @staticmethod
    def frames(effects: list[Effect]) -> list[Any]:
        return [e.frame for e in effects if isinstance(e, Send)]


ChatSessions.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChatSessions = ChatSessions.TestCase
