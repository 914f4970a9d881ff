"""Properties of the clustered machine: any interleaving of answers, reads and events.

Hypothesis picks the order in which each node sends its ops, hears their
answers, reads a room's stream (in any batches, with repeats) and reads the
cluster's events; after everything settles, what each member saw must be
what Redis stored, once, in order, and every node must agree on the rosters.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chattycat.protocol.messages import Hello, History, Join, Message, Part, Quit, Say
from chattycat.server.model import RoomsConfig
from tests.server.cluster.fake import Cluster, Node, seqs, sign_in

pytestmark = pytest.mark.timeout(120)


_NODES = ("n1", "n2", "n3")
_CONNS = {1: "n1", 2: "n1", 3: "n2"}
_LATE = {4: "dan", 5: "eve"}  # on n3, in the den until a "join" step brings them over
_step = st.one_of(
    # ann (first on conn 1) leaves and resumes on the next node, which may be
    # behind the one she left in the lobby, or ahead of it.
    st.tuples(st.just("move"), st.integers(1, 2)),
    st.tuples(st.just("say"), st.sampled_from(sorted(_CONNS))),
    st.tuples(st.just("send"), st.sampled_from(_NODES)),
    st.tuples(st.just("answer"), st.sampled_from(_NODES), st.integers(1, 3)),
    st.tuples(st.just("deliver"), st.sampled_from(_NODES), st.integers(1, 3),
              st.integers(0, 2)),
    st.tuples(st.just("events"), st.sampled_from(_NODES)),
    st.tuples(st.just("join"), st.sampled_from(sorted(_LATE))),
)


class _Ann:
    """Where ann is now, and every connection she has had, in order."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.session = cluster["n1"].frames(1)[0].session
        self.conns: list[tuple[str, int]] = [("n1", 1)]
        self.unacked: dict[str, str] = {}  # id -> text, as her client keeps them
        self.retried: set[str] = set()

    def say(self, text: str, request_id: str) -> None:
        node, conn = self.conns[-1]
        self.unacked[request_id] = text
        self.cluster[node].receive(conn, Say("lobby", text, id=request_id))

    def move(self, hops: int) -> None:
        node, conn = self.conns[-1]
        seen = self.seen()  # her client's last seq, whichever connection brought it
        for frame in self.cluster[node].frames(conn, Message):
            if frame.sender == "ann":
                self.unacked.pop(frame.id or "", None)
        self.cluster[node].disconnected(conn)
        node = _NODES[(_NODES.index(node) + hops) % len(_NODES)]
        conn = 100 + len(self.conns)
        # Welcomed before anything else happens (a say sent before its welcome,
        # on a connection then dropped, is rightly lost); the lobby may still lag,
        # and so may the events (her hello's settle ran before those were written).
        self.cluster[node].greet(conn, Hello("ann", session=self.session,
                                             resume={"lobby": seen[-1] if seen else 0}),
                                 unheard=True)
        self.cluster[node].send()
        self.cluster[node].answer()
        self.conns.append((node, conn))
        # Says the old connection never acknowledged go again, with their ids:
        # stored once whether or not the first try made it (PROTOCOL 5).
        for request_id, text in list(self.unacked.items()):
            self.retried.add(request_id)
            self.say(text, request_id)

    def seen(self) -> list[int]:
        """Every seq she saw, but for the answers to her retries of ids already
        stored: PROTOCOL 5 sends the original again, to her alone."""
        out: list[int] = []
        for node, conn in self.conns:
            for frame in self.cluster[node].frames(conn):
                if isinstance(frame, History):
                    out.extend(m.seq for m in frame.messages)
                elif isinstance(frame, Message) and not (
                        frame.id in self.retried and frame.seq in out):
                    out.append(frame.seq)
        return out


def _run(cluster: Cluster, step: Any, said: int, joined: set[int], ann: _Ann) -> int:
    kind = step[0]
    if kind == "say":
        said += 1
        if step[1] == 1:
            ann.say(f"#{said}", f"i{said}")
        else:
            cluster[_CONNS[step[1]]].receive(step[1], Say("lobby", f"#{said}", id=f"i{said}"))
    elif kind == "move":
        ann.move(step[1])
    elif kind == "join":
        if step[1] not in joined:
            cluster["n3"].receive(step[1], Join("lobby"))
        joined.add(step[1])
    elif kind == "send":
        cluster[step[1]].send()
    elif kind == "answer":
        cluster[step[1]].answer(step[2])
    elif kind == "deliver":
        cluster[step[1]].deliver("lobby", step[2], again=step[3])
    else:
        cluster[step[1]].events()
    return said


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_step, max_size=60))
def test_every_member_gets_the_stored_sequence_once_in_order(steps: list[Any]) -> None:
    cluster = Cluster(*_NODES, config=RoomsConfig(flood_rate_per_s=0, heartbeat_s=0,
                                                  join_history=1000))
    for conn, name in ((1, "ann"), (2, "bob"), (3, "cat")):
        sign_in(cluster, cluster[_CONNS[conn]], conn, name)
    for conn, name in _LATE.items():
        sign_in(cluster, cluster["n3"], conn, name, resume={"den": 0})
    said, joined, ann = 0, set[int](), _Ann(cluster)
    for step in steps:
        said = _run(cluster, step, said, joined, ann)
    cluster.settle()
    stored = cluster.redis.stored("lobby")
    assert [m.seq for m in stored] == list(range(1, said + 1))
    for conn, node in _CONNS.items():
        if conn != 1:
            assert cluster[node].frames(conn, Message) == stored, conn
    # What ann saw, over all her connections: each message once, in order.
    assert ann.seen() == list(range(1, said + 1))
    for conn in joined:  # history up to where following began, then live: each once
        assert seqs(cluster["n3"], conn) == list(range(1, said + 1)), conn


_PEOPLE = {1: ("n1", "ann"), 2: ("n2", "bob"), 3: ("n3", "cat"), 4: ("n2", "dan")}
_change = st.one_of(
    st.tuples(st.sampled_from(["join", "part"]), st.sampled_from(sorted(_PEOPLE)),
              st.sampled_from(["lobby", "den", "attic"])),
    st.tuples(st.sampled_from(["quit", "move"]), st.sampled_from(sorted(_PEOPLE)),
              st.just("")),
    st.tuples(st.sampled_from(["send", "answer", "events"]), st.sampled_from(_NODES),
              st.just("")),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_change, max_size=40))
def test_rosters_agree_on_every_node(steps: list[Any]) -> None:
    cluster = Cluster(*_NODES)
    where = {who: (node, who) for who, (node, _name) in _PEOPLE.items()}  # node, conn
    for who, (node, name) in _PEOPLE.items():
        sign_in(cluster, cluster[node], who, name)
    fresh = 10
    for kind, who, room in steps:
        if kind in ("join", "part"):
            node_name, conn = where[who]
            cluster[node_name].receive(conn, Join(room) if kind == "join" else Part(room))
        elif kind in ("quit", "move"):  # back at once (or taken over) on the next node
            node_name, conn = where[who]
            welcome = cluster[node_name].frames(conn)[0]
            if kind == "quit":
                cluster[node_name].receive(conn, Quit())
                cluster.settle()
            later = _NODES[(_NODES.index(node_name) + 1) % len(_NODES)]
            sign_in(cluster, cluster[later], fresh, welcome.name, session=welcome.session)
            where[who] = (later, fresh)
            fresh += 1
        else:
            step = {"send": Node.send, "answer": Node.answer, "events": Node.events}[kind]
            step(cluster[who])
    cluster.settle()
    truth = {room: sorted(u.name for u in cluster.redis.users.values() if room in u.rooms)
             for room in ("lobby", "den", "attic")}
    for node in cluster.nodes.values():
        assert sorted(node.machine.user_names()) == ["ann", "bob", "cat", "dan"], node.name
        for room, members in truth.items():
            assert sorted(node.machine.members(room)) == members, (node.name, room)
