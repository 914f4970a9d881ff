"""Faults under load: a node killed, Redis killed and restarted, a node's Redis link cut.

What must hold (issue 10): an acknowledged message is never lost or
repeated, members receive every stored message of their rooms once and in
seq order, a dead node's users can carry on elsewhere, and while Redis is
down nothing is acknowledged. Redis's own stream (``XRANGE``) is the truth
every member's view is compared with.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
import redis

from chattycat.client.client import Client, ClientState
from chattycat.net.loop import EventLoop
from chattycat.protocol.messages import Message
from tests.cluster.conftest import (
    LINK_NAMES,
    Cluster,
    Member,
    StartCluster,
    Tape,
    wait_linked,
)
from tests.wire import Frame

WAIT_S = 20.0
# The bound for a dead node's users to be parted (heartbeat TTL + reaping).
DEAD_NODE_PARTED_S = 15.0
# Node 1's links are cut this many times, each time with messages stored meanwhile.
CUT_CYCLES = 10
MESSAGES_PER_CUT = 5
# Once relinked, a node must have caught up within this (no further wake-up comes).
CATCH_UP_S = 5.0


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


def member(loop: EventLoop, cluster: Cluster, name: str, first: int) -> Member:
    """A client of ``name`` trying the nodes from node ``first`` on, in the lobby."""
    ports = [node.port for node in cluster.nodes]
    order = ports[first:] + ports[:first]
    made = Member(Client(loop, name, rooms=["lobby"],
                         addresses=[("127.0.0.1", port) for port in order]))
    made.client.on_event = made.events.append
    made.client.start()
    return made


def seqs_of(frames: list[Frame] | list[Message]) -> list[int]:
    return [f["seq"] if isinstance(f, dict) else f.seq for f in frames]


def test_a_killed_nodes_clients_resume_elsewhere_and_nothing_acknowledged_is_lost(
        cluster: StartCluster, loop: EventLoop) -> None:
    three = cluster(3)
    victims = [member(loop, three, f"victim{i}", first=0) for i in range(2)]
    assert loop.run_until(lambda: all(v.client.state is ClientState.ONLINE
                                      and v.client.members("lobby") for v in victims), WAIT_S)
    watchers = [Tape(three.nodes[1].user("watcher1")), Tape(three.nodes[2].user("watcher2"))]
    three.nodes[0].user("ghost")  # on the dying node; never comes back
    for i in range(40):
        for victim in victims:
            victim.client.say("lobby", f"{victim.client.name} {i}")
        for n, watcher in enumerate(watchers, 1):
            watcher.client.say("lobby", f"watcher{n} {i}", id=f"w{n}-{i}")
    # Let some of it through, then kill node 1 with the rest in flight.
    assert loop.run_until(lambda: all(v.client.pending() < 30 for v in victims), WAIT_S)
    three.nodes[0].kill()
    killed_at = time.monotonic()
    for i in range(40, 60):
        for victim in victims:
            victim.client.say("lobby", f"{victim.client.name} {i}")
    assert loop.run_until(lambda: all(v.client.pending() == 0 and v.resumed()
                                      for v in victims), WAIT_S), [
        (v.client.state, v.client.pending()) for v in victims]
    assert all(v.client.port != three.nodes[0].port for v in victims)

    # The ghost's session lived on node 1 only: it is parted within the bound.
    for watcher in watchers:
        parted = watcher.until("parted", DEAD_NODE_PARTED_S + 2,
                               where=lambda f: f["name"] == "ghost")
        assert parted["reason"] == "disconnected"
    assert time.monotonic() - killed_at < DEAD_NODE_PARTED_S
    stored = three.stored("lobby")
    total = 2 * 60 + 2 * 40  # every say stored once, none twice
    assert [s.seq for s in stored] == list(range(1, total + 1))
    assert len({s.text for s in stored}) == total
    expected = [(s.seq, s.sender, s.text) for s in stored]
    for watcher in watchers:
        watcher.until_messages(total)
        watcher.frames += watcher.client.drain(0.3)
        shown = [(m["seq"], m["from"], m["text"]) for m in watcher.messages()]
        assert shown == expected, f"seqs: {seqs_of(watcher.messages())}"
        # The victims' handover to other nodes is not a part and a join (PROTOCOL 7).
        assert not [f for f in watcher.frames if f["type"] in ("parted", "joined")
                    and f["name"].startswith("victim")]
    loop.run_until(lambda: all(len(v.shown("lobby")) >= total for v in victims), WAIT_S)
    for victim in victims:
        shown = [(m.seq, m.sender, m.text) for m in victim.shown("lobby")]
        seqs = seqs_of(victim.shown("lobby"))
        missing = sorted(set(range(1, total + 1)) - set(seqs))
        assert shown == expected, (f"{victim.client.name} (now on port {victim.client.port}) "
                                   f"was shown {len(seqs)} messages; missing seqs {missing}; "
                                   f"repeated {sorted(s for s in set(seqs) if seqs.count(s) > 1)}")
        victim.client.close()


def test_redis_killed_under_load_refuses_says_and_loses_nothing_acknowledged(
        cluster: StartCluster) -> None:
    two = cluster(2)
    members = [Tape(two.nodes[0].user("alice")), Tape(two.nodes[1].user("bob")),
               Tape(two.nodes[0].user("carol"))]
    members[0].until("joined", where=lambda f: f["name"] == "carol")
    for i in range(50):  # pipelined; Redis dies with some of them in flight
        for n, tape in enumerate(members):
            tape.client.say("lobby", f"before {n}-{i}", id=f"b{n}-{i}", ref=f"b{n}-{i}")
    members[2].until("message", where=lambda f: f["id"] == "b2-10")
    two.redis.kill()
    for n, tape in enumerate(members):
        for i in range(5):
            tape.client.say("lobby", f"during {n}-{i}", id=f"d{n}-{i}", ref=f"d{n}-{i}")
    for n, tape in enumerate(members):
        # Every say sent while Redis is down is refused: internal, never acknowledged.
        for i in range(5):
            error = tape.until("error", where=lambda f, ref=f"d{n}-{i}": f.get("ref") == ref)
            assert error["code"] == "internal", error
    client = two.nodes[1].connect()  # a hello needs Redis too
    client.send({"type": "hello", "name": "dave", "protocol": 1})
    assert client.recv()["code"] == "internal"
    two.redis.restart()
    for node in two.nodes:  # the nodes reconnect by themselves
        assert wait_linked(two.db, node.name), node.log
    for n, tape in enumerate(members):
        tape.client.say("lobby", f"after {n}", id=f"a{n}", ref=f"a{n}")
    for n, tape in enumerate(members):
        tape.until("message", where=lambda f, i=f"a{n}": f["id"] == i)
    stored = two.stored("lobby")
    assert [s.seq for s in stored] == list(range(1, len(stored) + 1))
    by_seq = {s.seq: s for s in stored}
    assert len({s.id for s in stored}) == len(stored)  # nothing stored twice
    assert not [s for s in stored if s.id is not None and s.id.startswith("d")]
    names = ["alice", "bob", "carol"]
    for tape, name in zip(members, names, strict=True):
        tape.until_messages(len(stored))
        tape.frames += tape.client.drain(0.3)
        # Every member received the stream: each seq once, in order...
        assert seqs_of(tape.messages()) == [s.seq for s in stored], name
        # ...and every acknowledgement is in the stream as it was acknowledged.
        for ack in tape.messages():
            assert (by_seq[ack["seq"]].text, by_seq[ack["seq"]].id) == (ack["text"], ack["id"])
    # A say refused with internal may or may not have been stored (Redis died
    # with the reply on its way): sent again with its id, it is numbered once.
    for n, tape in enumerate(members):
        refused = [f["ref"] for f in tape.frames if f["type"] == "error"
                   and f.get("ref", "").startswith("b")]
        assert all(f"b{n}-{i}" not in refused for i in range(11))  # acknowledged before
        for ref in refused:
            tape.client.say("lobby", f"before {ref[1:]}", id=ref)
        for ref in refused:
            again = tape.until("message", where=lambda f, i=ref: f["id"] == i)
            if ref in {s.id for s in stored}:
                assert again["seq"] == next(s.seq for s in stored if s.id == ref)
    final = two.stored("lobby")
    assert sorted(s.id or "" for s in final) == sorted(
        [f"b{n}-{i}" for n in range(3) for i in range(50)] + ["a0", "a1", "a2"])
    assert [s.seq for s in final] == list(range(1, len(final) + 1))


def kill_links(db: redis.Redis, node: str) -> set[int]:
    """``CLIENT KILL ID`` every Redis connection of ``node``; the ids killed."""
    prefix = LINK_NAMES[0].format(node=node)
    ids = {int(c["id"]) for c in db.client_list() if str(c.get("name", "")).startswith(prefix)}
    for client_id in ids:
        with contextlib.suppress(redis.ResponseError):  # gone already
            db.client_kill_filter(_id=str(client_id))
    return ids


def test_a_node_whose_redis_links_are_cut_catches_up_from_the_streams(
        cluster: StartCluster) -> None:
    two = cluster(2)
    alice = Tape(two.nodes[0].user("alice"))
    bob = Tape(two.nodes[1].user("bob"))
    alice.until("joined", where=lambda f: f["name"] == "bob")
    killed: set[int] = set()
    for cycle in range(CUT_CYCLES):
        # Node 1 loses its links, and with them the wake-ups of the messages
        # node 2 stores meanwhile; nothing else is said after them.
        killed |= kill_links(two.db, "node1")
        for i in range(MESSAGES_PER_CUT):
            bob.client.say("lobby", f"cut {cycle}.{i}", id=f"c{cycle}.{i}")
        bob.until("message", where=lambda f, last=f"c{cycle}.{i}": f["id"] == last)
        assert wait_linked(two.db, "node1"), two.nodes[0].log
        try:
            alice.until_messages(MESSAGES_PER_CUT * (cycle + 1), timeout_s=CATCH_UP_S)
        except TimeoutError as exc:
            raise AssertionError(f"cut {cycle}: {exc}\nnode1's log:\n{two.nodes[0].log}"
                                 ) from None
    assert not killed & {int(c["id"]) for c in two.db.client_list()}, "links never cut"
    alice.frames += alice.client.drain(0.3)
    assert [(m["seq"], m["text"]) for m in alice.messages()] == [
        (n + 1, f"cut {n // MESSAGES_PER_CUT}.{n % MESSAGES_PER_CUT}")
        for n in range(CUT_CYCLES * MESSAGES_PER_CUT)]
