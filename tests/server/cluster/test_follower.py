"""The stream follower's reads, with Redis replaced by a stub that records each call.

:class:`~chattycat.server.redis_follow.StreamFollower` decides what to read
and when; these tests answer its reads by hand (from the fake cluster's
streams) and count them, so that a read loop or a missed message shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chattycat.errors import RedisConnectionError
from chattycat.protocol.messages import Hello, Join, Message
from chattycat.server.cluster.ops import FOLLOW, Fetch
from chattycat.server.redis_follow import FETCH_COUNT, StreamFollower
from tests.server.cluster.fake import Cluster, Node

pytestmark = pytest.mark.timeout(60)


class StubClient:
    """Records calls; a test answers them in order."""

    connected = True

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], Callable[[Any], None]]] = []

    def call(self, args: list[Any], done: Callable[[Any], None]) -> None:
        self.calls.append((list(args), done))

    def xranges(self) -> list[list[Any]]:
        return [args for args, _done in self.calls if args[0] == "XRANGE"]


def follower_of(node: Node, client: StubClient) -> StreamFollower:
    return StreamFollower(client, node.machine, node.input,  # type: ignore[arg-type]
                          lambda *args: ["EVALSHA", *args], "0-0")


def ann_signed_in(**hello: Any) -> tuple[Cluster, Node]:
    """One node of a cluster of one, with ann signed in (conn 1)."""
    cluster = Cluster("n1")
    node = cluster["n1"]
    node.connect(1)
    node.receive(1, Hello("ann", **hello))
    cluster.settle()
    return cluster, node


def answer_xranges(cluster: Cluster, client: StubClient, limit: int = 20) -> int:
    """Answer every XRANGE (and any it leads to) from the fake's streams; how many."""
    answered = 0
    while answered < limit:
        pending = [(i, c) for i, c in enumerate(client.calls) if c[0][0] == "XRANGE"]
        if not pending:
            return answered
        index, (args, done) = pending[0]
        del client.calls[index]
        room = args[1].removeprefix("cc:room:")
        after = int(args[2].removeprefix("(0-"))
        entries = [[f"0-{m.seq}".encode(), _fields(m)]
                   for m in cluster.redis.stored(room) if m.seq > after][:int(args[5])]
        done(entries)
        answered += 1
    return answered


def _fields(m: Message) -> list[bytes]:
    return [b"f", m.sender.encode(), b"c", m.color.encode(), b"t", m.text.encode(),
            b"ts", repr(m.ts).encode(), b"i", b"", b"a", b""]


def test_catching_up_reads_each_room_once_when_nothing_is_new() -> None:
    cluster, node = ann_signed_in()
    assert node.machine.cursors() == {"lobby": 0}
    client = StubClient()
    follower_of(node, client).catch_up()
    assert len(client.xranges()) == 1
    assert answer_xranges(cluster, client) == 1  # not read again and again


def test_catching_up_delivers_what_was_missed() -> None:
    cluster, node = ann_signed_in()
    for i in range(3):
        cluster.redis.add("lobby", "bob", f"#{i}")
    client = StubClient()
    follower_of(node, client).catch_up()
    answer_xranges(cluster, client)
    assert [m.seq for m in node.frames(1, Message)] == [1, 2, 3]
    assert node.machine.cursor("lobby") == 3


def test_a_wake_up_before_following_began_is_not_lost() -> None:
    """A wake-up that arrives before the FOLLOW read's reply is ignored (the room is
    not followed yet); the reply must still lead to the message it announced."""
    cluster, node = ann_signed_in(resume={"den": 0})
    for i in range(5):
        cluster.redis.add("lobby", "bob", f"#{i}")
    client = StubClient()
    follower = follower_of(node, client)
    node.receive(1, Join("lobby"))
    node.settle_first()
    [read] = [op.read for op in node.send() if isinstance(op, Fetch)]
    assert read.up_to == FOLLOW  # Redis answers it at top 5; the reply is on its way
    cluster.redis.add("lobby", "bob", "#6")
    follower.woken(b"cc:wake", b"rlobby 6")  # on the other connection, first
    node.answer()  # the reply: following begins at 5
    follower.read_on("lobby")  # what the page handler does after a FOLLOW read
    answer_xranges(cluster, client)
    assert [m.seq for m in node.frames(1, Message)] == [6]


def test_a_read_asked_for_while_one_is_out_is_made_after_it() -> None:
    """The link drops with a read out; catching up (link back) asks for the room while
    that read's failure is still on its way: the room must still be read."""
    cluster, node = ann_signed_in()
    cluster.redis.add("lobby", "bob", "#1")
    client = StubClient()
    follower = follower_of(node, client)
    follower.woken(b"cc:wake", b"rlobby 1")
    [(_args, failed)] = client.calls
    client.calls.clear()
    follower.catch_up()  # the link is back; the first read's failure comes after this
    assert not client.xranges()  # one read at a time per room
    failed(RedisConnectionError("the link dropped"))
    assert len(client.xranges()) == 1
    answer_xranges(cluster, client)
    assert [m.seq for m in node.frames(1, Message)] == [1]


def test_a_read_that_was_out_when_catching_up_is_made_again() -> None:
    """A read that Redis ran before the link dropped cannot have seen what was
    stored while it was down: catching up reads again after it."""
    cluster, node = ann_signed_in()
    cluster.redis.add("lobby", "bob", "#1")
    client = StubClient()
    follower = follower_of(node, client)
    follower.woken(b"cc:wake", b"rlobby 1")
    [(_args, done)] = client.calls
    client.calls.clear()
    cluster.redis.add("lobby", "bob", "#2")  # its wake-up was lost with the link
    follower.catch_up()
    done([[b"0-1", _fields(cluster.redis.stored("lobby")[0])]])  # run before #2 was stored
    answer_xranges(cluster, client)
    assert [m.seq for m in node.frames(1, Message)] == [1, 2]


def test_a_full_read_is_followed_by_one_more_and_no_loop() -> None:
    cluster, node = ann_signed_in()
    for i in range(FETCH_COUNT):
        cluster.redis.add("lobby", "bob", f"#{i}")
    client = StubClient()
    follower_of(node, client).woken(b"cc:wake", f"rlobby {FETCH_COUNT}".encode())
    assert answer_xranges(cluster, client) == 2  # a full page, then an empty one
    assert node.machine.cursor("lobby") == FETCH_COUNT


# -- settles: requests waiting for the event stream ------------------------------------


def _events(*ids: str) -> list[Any]:
    """An answer of the events script: no gap, entries of a kind nobody reads."""
    return [0, [[i.encode(), [b"k", b"later"]] for i in ids]]


def test_a_settle_goes_on_only_once_its_event_is_read() -> None:
    _cluster, node = ann_signed_in()
    client = StubClient()
    follower = follower_of(node, client)
    follower.fetch_events()  # a read already out, sent before the settle ran
    went: list[str] = []
    follower.when_read("7-0", lambda: went.append("a"))
    follower.when_read("7-1", lambda: went.append("b"))
    [(_args, done)] = client.calls  # one read at a time; another is owed
    client.calls.clear()
    done(_events("5-0"))
    assert went == []
    [(args, done)] = client.calls
    assert args[2] == "5-0"  # read on from where the stream was read
    client.calls.clear()
    done(_events("7-0", "7-1", "8-0"))
    assert went == ["a", "b"] and not client.calls
    follower.when_read("6-0", lambda: went.append("c"))  # read already: at once
    assert went == ["a", "b", "c"] and not client.calls


def test_a_settle_goes_on_when_the_events_cannot_be_read() -> None:
    _cluster, node = ann_signed_in()
    client = StubClient()
    follower = follower_of(node, client)
    went: list[str] = []
    follower.when_read("7-0", lambda: went.append("a"))
    [(_args, done)] = client.calls
    done(RedisConnectionError("the link dropped"))
    assert went == ["a"]  # answered from the replica, not left waiting
    client.connected = False
    follower.when_read("9-0", lambda: went.append("b"))
    assert went == ["a", "b"]


def test_a_settle_asked_for_while_a_snapshot_is_out_reads_on_after_it() -> None:
    _cluster, node = ann_signed_in()
    client = StubClient()
    follower = follower_of(node, client)
    follower.resync()
    went: list[str] = []
    follower.when_read("9-0", lambda: went.append("a"))
    [(_args, snapshot_done)] = client.calls  # no event read while the snapshot is out
    client.calls.clear()
    snapshot_done([b"5-0", [[b"ann", b'{"n": "ann", "c": "#e06c75", "node": "n1"}',
                             [b"lobby"]]], []])
    assert went == []
    [(args, done)] = client.calls  # the snapshot was older than the settle: read on
    assert args[2] == "5-0"
    done(_events("9-0"))
    assert went == ["a"]
