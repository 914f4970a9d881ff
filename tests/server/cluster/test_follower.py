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
from chattycat.protocol.messages import Hello, Join, Message, Parted
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

    def only_call(self) -> tuple[list[Any], Callable[[Any], None]]:
        """The one call out (there must be exactly one), taken to be answered."""
        [call] = self.calls
        self.calls.clear()
        return call

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
    _args, failed = client.only_call()
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
    _args, done = client.only_call()
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
    _args, done = client.only_call()  # one read at a time; another is owed
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
    _args, snapshot_done = client.only_call()  # no event read while the snapshot is out
    snapshot_done([b"5-0", [[b"ann", b'{"n": "ann", "c": "#e06c75", "node": "n1"}',
                             [b"lobby"]]], []])
    assert went == []
    [(args, done)] = client.calls  # the snapshot was older than the settle: read on
    assert args[2] == "5-0"
    done(_events("9-0"))
    assert went == ["a"]


def test_a_message_is_shown_only_after_the_events_before_it() -> None:
    """dan signs in on another node and speaks at once: ann sees him arrive first."""
    cluster, node = ann_signed_in()
    client = StubClient()
    follower = follower_of(node, client)
    message = cluster.redis.add("lobby", "dan", "hi")
    follower.woken(b"cc:wake", b"rlobby 1")
    _args, done = client.only_call()
    done([[b"0-1", [*_fields(message), b"e", b"7-0"]]])  # dan's sign-in is event 7-0
    assert not node.frames(1, Message)
    [(args, events_done)] = client.calls  # the events are read first
    assert args[0] == "EVALSHA" and args[2] == "0-0"
    follower.woken(b"cc:wake", b"rlobby 2")  # the room is read no further meanwhile
    assert len(client.calls) == 1
    client.calls.clear()
    dan = [b"k", b"in", b"node", b"n2", b"key", b"dan", b"n", b"dan", b"c", b"#123456",
           b"rooms", b"lobby"]
    events_done([0, [[b"7-0", dan]]])
    assert [type(f).__name__ for f in node.frames(1)][-2:] == ["Joined", "Message"]


def _dan(kind: bytes, *fields: bytes) -> list[Any]:
    return [b"k", kind, b"node", b"n2", b"key", b"dan", *fields]


def _with_dan_in_the_lobby() -> tuple[Cluster, Node, StubClient, StreamFollower]:
    """ann on this node, dan on n2 (read from the events); both in the lobby."""
    cluster, node = ann_signed_in()
    client = StubClient()
    follower = follower_of(node, client)
    follower.fetch_events()
    _args, done = client.only_call()
    done([0, [[b"1-0", _dan(b"in", b"n", b"dan", b"c", b"#123456", b"rooms", b"lobby")]]])
    assert node.machine.members("lobby") == ["ann", "dan"]
    return cluster, node, client, follower


def _shown(node: Node) -> list[str]:
    return [f"{f.sender}: {f.text}" if isinstance(f, Message) else type(f).__name__
            for f in node.frames(1) if isinstance(f, Message | Parted)]


def test_a_part_waits_for_the_users_messages_from_before_it() -> None:
    cluster, node, client, follower = _with_dan_in_the_lobby()
    said = [cluster.redis.add("lobby", "dan", text) for text in ("one", "two")]
    follower.fetch_events()  # the part's event is read before the room
    _args, done = client.only_call()
    done([0, [[b"2-0", _dan(b"part", b"room", b"lobby", b"r", b"part", b"s", b"lobby:2")]]])
    assert _shown(node) == [] and node.machine.members("lobby") == ["ann", "dan"]
    [(args, room_done)] = client.calls  # so the room is read up to where it stood
    assert args[:2] == ["XRANGE", "cc:room:lobby"]
    client.calls.clear()
    room_done([[f"0-{m.seq}".encode(), [*_fields(m), b"e", b"1-0"]] for m in said])
    assert _shown(node) == ["dan: one", "dan: two", "Parted"]


def test_a_read_past_a_waiting_part_shows_the_rest_after_it() -> None:
    # The room's read also returns what was said after the part (it follows the
    # part's event): what came before goes first, then the part, then the rest.
    cluster, node, client, follower = _with_dan_in_the_lobby()
    before = cluster.redis.add("lobby", "dan", "bye")
    after = cluster.redis.add("lobby", "ann", "see you")
    follower.fetch_events()
    _args, done = client.only_call()
    done([0, [[b"2-0", _dan(b"part", b"room", b"lobby", b"r", b"part", b"s", b"lobby:1")]]])
    _args, room_done = client.only_call()
    room_done([[b"0-1", [*_fields(before), b"e", b"1-0"]],
               [b"0-2", [*_fields(after), b"e", b"2-0"]]])
    assert _shown(node) == ["dan: bye", "Parted", "ann: see you"]
    assert not [args for args, _done in client.calls if args[0] == "EVALSHA"]  # no re-read


def test_an_own_message_after_unread_events_waits_for_them_too() -> None:
    # ann's say is numbered after carol's sign-in elsewhere: members here see
    # carol arrive before ann's message, as one server would show it.
    cluster, node = ann_signed_in()
    client = StubClient()
    follower = follower_of(node, client)
    mine = cluster.redis.add("lobby", "ann", "hi all")
    follower.arrived("lobby", 1, mine, "4-0")
    assert not node.frames(1, Message)
    assert client.xranges()  # read from the stream, where it waits for event 4-0


def test_an_own_message_with_no_unread_event_before_it_goes_at_once() -> None:
    cluster, node = ann_signed_in()
    client = StubClient()
    follower_of(node, client).arrived("lobby", 1, cluster.redis.add("lobby", "ann", "hi"),
                                      "0-0")
    assert [m.text for m in node.frames(1, Message)] == ["hi"] and not client.calls
