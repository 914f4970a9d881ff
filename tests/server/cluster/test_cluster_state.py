"""The clustered machine's rules, with Redis played by an in-memory fake (no sockets).

Each test wires two or three :class:`ClusterState` machines through
:class:`~tests.server.cluster.fake.FakeRedis` and moves answers, room
messages and events by hand, so that every ordering the real wiring can
produce (a late answer, a partial read of a stream, a repeated one) can be
forced and its outcome checked frame by frame.
"""

from __future__ import annotations

from typing import Any

import pytest

from chattycat.errors import ErrorCode
from chattycat.protocol.messages import (
    Error,
    Hello,
    History,
    Join,
    Joined,
    Message,
    Nick,
    Part,
    Parted,
    Ping,
    Pong,
    Quit,
    Renamed,
    RoomList,
    Rooms,
    Roster,
    Say,
    Welcome,
    Whisper,
    WhisperTo,
    Who,
)
from chattycat.server.cluster.ops import (
    FOLLOW,
    Claim,
    ClaimMode,
    Fetch,
    Publish,
    RemoteJoin,
    RemoteUser,
    RemoteWhisper,
    SignOut,
)
from chattycat.server.effects import StoredAccount, StoredState
from chattycat.server.model import ConnState, RoomsConfig
from chattycat.server.passwords import hash_password
from tests.server.cluster.fake import QUIET, Cluster, Node, seqs, sign_in

pytestmark = pytest.mark.timeout(60)


def after(node: Node, conn: int, mark: int) -> list[Any]:
    return node.frames(conn)[mark:]


@pytest.fixture
def three() -> Cluster:
    return Cluster("n1", "n2", "n3")


@pytest.fixture
def lobby(three: Cluster) -> Cluster:
    """ann (1) and bob (2) on n1, cat (3) on n2, all in the lobby."""
    sign_in(three, three["n1"], 1, "ann")
    sign_in(three, three["n1"], 2, "bob")
    sign_in(three, three["n2"], 3, "cat")
    return three


# -- says -------------------------------------------------------------------------


def test_ack_and_copies_leave_only_when_the_seq_is_delivered(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    marks = {c: len(n1.frames(c)) for c in (1, 2)}
    n1.receive(1, Say("lobby", "hi", id="m1"))
    n1.receive(1, Ping("p1"))
    ops = n1.send()
    assert [type(op) for op in ops] == [Publish]
    n1.answer()
    assert after(n1, 1, marks[1]) == [] and after(n1, 2, marks[2]) == []
    n1.deliver("lobby")
    ack = after(n1, 1, marks[1])
    assert [type(f) for f in ack] == [Message, Pong]  # the pong never overtakes the ack
    assert ack[0].seq == 1 and ack[0].id == "m1"
    assert after(n1, 2, marks[2]) == [ack[0]]
    n2.deliver("lobby")
    assert n2.frames(3, Message) == [ack[0]]


def test_acks_leave_in_seq_order(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    for i in range(3):
        n1.receive(1, Say("lobby", f"#{i}", id=f"m{i}"))
    n1.send()
    n1.answer()
    n1.deliver("lobby", 1)
    assert [m.seq for m in n1.frames(1, Message)] == [1]
    n1.deliver("lobby")
    assert [m.seq for m in n1.frames(1, Message)] == [1, 2, 3]
    assert [m.text for m in n1.frames(2, Message)] == ["#0", "#1", "#2"]


def test_a_gap_waits_for_the_stream(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    for i in range(1, 5):  # 1..4 delivered everywhere
        n2.receive(3, Say("lobby", f"#{i}"))
    lobby.settle()
    n2.receive(3, Say("lobby", "#5"))
    n2.receive(3, Say("lobby", "#6"))
    n2.send()  # stored as 5 and 6; n1 has not read them
    n1.receive(1, Say("lobby", "#7"))
    n1.send()
    n1.answer()  # published as 7 while n1's cursor is at 4
    assert n1.machine.cursor("lobby") == 4
    mark = len(n1.frames(1))
    n1.deliver("lobby", 1)  # only 5
    assert after(n1, 1, mark) == []  # everything up to 7 takes the place the say held
    n1.deliver("lobby")
    assert [f.seq for f in after(n1, 1, mark)] == [5, 6, 7]
    assert seqs(n1, 2)[-3:] == [5, 6, 7]


def test_a_duplicate_goes_to_its_sender_alone(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    n1.receive(1, Say("lobby", "once", id="x"))
    lobby.settle()
    marks = [len(n1.frames(1)), len(n1.frames(2)), len(n2.frames(3))]
    n1.receive(1, Say("lobby", "once", id="x"))
    lobby.settle()
    again = after(n1, 1, marks[0])
    assert len(again) == 1 and again[0].seq == 1 and again[0].id == "x"
    assert after(n1, 2, marks[1]) == [] and after(n2, 3, marks[2]) == []
    assert len(lobby.redis.stored("lobby")) == 1


def test_a_failed_publish_tells_the_sender_internal(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    mark = len(n1.frames(2))
    lobby.redis.down = True
    n1.receive(1, Say("lobby", "lost", id="m9"))
    n1.receive(1, Ping("p"))
    n1.send()
    n1.answer()
    error, pong = n1.frames(1)[-2:]
    assert isinstance(error, Error) and error.code == ErrorCode.INTERNAL
    assert error.ref == "m9" and error.id == "m9"
    assert isinstance(pong, Pong)
    assert after(n1, 2, mark) == []


def test_losing_the_cluster_releases_waiting_output(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    n1.receive(1, Say("lobby", "numbered"))
    n1.receive(1, Ping("p"))
    n1.send()
    n1.answer()  # seq 1 known, not delivered yet: the pong waits behind it
    assert not n1.frames(1, Pong)
    n1.input(lambda m, now: m.cluster_lost(now))
    assert n1.frames(1, Pong) and not n1.frames(1, Message)
    n1.deliver("lobby")  # caught up from the stream once Redis is back
    assert [m.seq for m in n1.frames(1, Message)] == [1]
    assert [m.seq for m in n1.frames(2, Message)] == [1]


def test_a_quit_after_says_still_gets_their_acks_first(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    for i in range(3):
        n1.receive(1, Say("lobby", f"last words {i}"))
    n1.receive(1, WhisperTo("cat", "bye", id="w"))
    n1.receive(1, Quit("bye"))
    assert 1 not in n1.closed  # the close waits behind the says
    lobby.settle()
    assert [m.seq for m in n1.frames(1, Message)] == [1, 2, 3]
    assert [w.text for w in n1.frames(1, Whisper)] == ["bye"]
    assert 1 in n1.closed
    assert [m.seq for m in n1.frames(2, Message)] == [1, 2, 3]


def test_nothing_goes_to_a_connection_that_is_gone_but_its_whispers_do(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    n1.receive(1, Say("lobby", "and gone"))
    n1.receive(1, WhisperTo("cat", "bye", id="w"))
    n1.receive(1, WhisperTo("bob", "bye", id="w2"))
    n1.disconnected(1)
    n1.closed.add(1)  # the wiring forgot it: Node.apply fails on any frame for it
    lobby.settle()
    assert [m.seq for m in n1.frames(2, Message)] == [1]
    # Whispers Redis counted as sent reach their targets, here and elsewhere.
    assert [w.text for w in n1.frames(2, Whisper)] == ["bye"]
    assert [w.text for w in lobby["n2"].frames(3, Whisper)] == ["bye"]


# -- following a room -----------------------------------------------------------


def test_follow_clamps_to_where_following_began(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    sign_in(three, n1, 1, "ann")
    for i in range(1, 4):
        n1.receive(1, Say("lobby", f"#{i}"))
    three.settle()
    sign_in(three, n2, 3, "cat", resume={"den": 0})  # n2 follows den, not the lobby
    sign_in(three, n2, 4, "dan", resume={"den": 0})
    n2.receive(3, Join("lobby"))
    n2.receive(4, Join("lobby"))
    n2.send()  # both joins settle first
    n2.answer(1)
    ops = n2.send()  # cat's read of the lobby at top 3; the answer waits
    assert [op.read.up_to for op in ops if isinstance(op, Fetch)] == [FOLLOW]
    n1.receive(1, Say("lobby", "#4"))
    n1.receive(1, Say("lobby", "#5"))
    n1.send()  # 4 and 5 are stored before n2 hears back
    n2.answer(1)  # dan's settle
    ops = n2.send()  # dan's read: FOLLOW still (asked before following began), top 5
    assert [op.read.up_to for op in ops if isinstance(op, Fetch)] == [FOLLOW]
    n2.answer()  # cat's read: following begins at 3; dan's is clamped to 3
    assert n2.machine.cursor("lobby") == 3
    assert seqs(n2, 3) == seqs(n2, 4) == [1, 2, 3]  # clamped to where following began
    three.settle()
    assert seqs(n2, 3) == [1, 2, 3, 4, 5]
    assert seqs(n2, 4) == [1, 2, 3, 4, 5]
    n2.greet(5, Hello("eve"))
    n2.send()
    n2.answer()
    reads = [op.read for op in n2.send() if isinstance(op, Fetch)]
    assert [r.up_to for r in reads] == [5]  # the cursor, now that it follows
    three.settle()
    assert seqs(n2, 5) == [1, 2, 3, 4, 5]


def test_history_and_live_meet_without_a_gap_or_a_repeat(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    sign_in(three, n1, 1, "ann")
    for i in range(1, 6):
        n1.receive(1, Say("lobby", f"#{i}"))
        n1.send()
    n2.greet(3, Hello("cat"))
    n2.send()
    n2.answer()  # claimed; its join read goes next
    n2.send()  # reads the lobby at top 5
    n1.receive(1, Say("lobby", "#6"))
    n1.send()  # 6 is stored after the read
    three.settle()
    assert seqs(n2, 3) == [1, 2, 3, 4, 5, 6]
    assert seqs(n1, 1) == [1, 2, 3, 4, 5, 6]


def test_a_node_stops_following_when_its_last_member_leaves(lobby: Cluster) -> None:
    n2 = lobby["n2"]
    assert n2.machine.cursor("lobby") == 0
    n2.receive(3, Join("den"))
    n2.receive(3, Part("lobby"))
    lobby.settle()
    assert n2.machine.cursor("lobby") is None
    assert "lobby" not in n2.machine.cursors()


# -- claims ------------------------------------------------------------------------


def test_a_fresh_claim(three: Cluster) -> None:
    n1 = three["n1"]
    n1.greet(1, Hello("Ann"))
    [claim] = n1.send()
    assert isinstance(claim, Claim)
    assert (claim.key, claim.name, claim.mode, claim.hello_digest) == ("ann", "Ann", "open", "")
    three.settle()
    welcome = n1.frames(1)[0]
    assert isinstance(welcome, Welcome) and welcome.color == claim.color
    assert three.redis.users["ann"].node == "n1"
    assert three["n2"].machine.members("lobby") == ["Ann"]


def test_a_resume_on_another_node_keeps_the_session_and_color(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    first = sign_in(three, n1, 1, "ann")
    n1.receive(1, Quit())
    three.settle()
    assert "ann" not in three.redis.users
    again = sign_in(three, n2, 3, "ann", session=first.session)
    assert again.session == first.session and again.color == first.color


def test_a_resume_changes_color_when_a_neighbour_has_it(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    first = sign_in(three, n1, 1, "ann")
    n1.receive(1, Quit())
    three.settle()
    zed = sign_in(three, three["n3"], 5, "zed")  # ann's old color was free again
    assert zed.color == first.color
    n2.greet(3, Hello("ann", session=first.session))
    [claim] = n2.send()
    assert isinstance(claim, Claim) and first.color in claim.avoid
    three.settle()
    again = n2.frames(3)[0]
    assert isinstance(again, Welcome)
    assert again.session == first.session and again.color != first.color


def test_a_takeover_on_the_same_node_is_silent(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    ann = n1.frames(1)[0]
    marks = [len(n1.frames(2)), len(lobby["n2"].frames(3))]
    welcome = sign_in(lobby, n1, 9, "ann", session=ann.session)
    assert welcome.session == ann.session
    error = n1.frames(1, Error)[-1]
    assert error.code == ErrorCode.REPLACED and 1 in n1.closed
    quiet = (Joined, Parted)
    assert not [f for f in after(n1, 2, marks[0]) if isinstance(f, quiet)]
    assert not [f for f in after(lobby["n2"], 3, marks[1]) if isinstance(f, quiet)]
    assert lobby.redis.users["ann"].node == "n1"


def test_a_takeover_from_another_node_replaces_the_old_connection(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    ann = n1.frames(1)[0]
    marks = [len(n1.frames(2)), len(n2.frames(3))]
    n2.greet(9, Hello("ann", session=ann.session))
    [claim] = n2.send()
    assert isinstance(claim, Claim) and claim.hello_digest
    lobby.settle()
    welcome = n2.frames(9)[0]
    assert isinstance(welcome, Welcome) and welcome.session == ann.session
    assert n1.frames(1, Error)[-1].code == ErrorCode.REPLACED and 1 in n1.closed
    quiet = (Joined, Parted)
    assert not [f for f in after(n1, 2, marks[0]) if isinstance(f, quiet)]
    assert not [f for f in after(n2, 3, marks[1]) if isinstance(f, quiet)]
    assert lobby.redis.users["ann"].node == "n2"
    assert sorted(n1.machine.members("lobby")) == ["ann", "bob", "cat"]
    n2.receive(9, Say("lobby", "moved"))
    lobby.settle()
    assert [m.text for m in n1.frames(2, Message)] == ["moved"]


def test_a_taken_name_is_refused_across_nodes(lobby: Cluster) -> None:
    n2 = lobby["n2"]
    n2.connect(9)
    n2.receive(9, Hello("ANN"))
    lobby.settle()
    [error] = n2.frames(9)
    assert isinstance(error, Error) and error.code == ErrorCode.NAME_TAKEN


def test_a_parked_name_is_reserved_then_free(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    sign_in(three, n1, 1, "ann")
    n1.receive(1, Quit())
    three.settle()
    n2.connect(9)
    n2.receive(9, Hello("ann"))
    three.settle()
    [error] = n2.frames(9)
    assert error.code == ErrorCode.NAME_TAKEN and "kept" in error.message
    n2.now += QUIET.name_grace_s + 1
    n2.receive(9, Hello("ann"))
    three.settle()
    assert isinstance(n2.frames(9)[1], Welcome)


def test_a_registered_name_without_its_session_fails_auth() -> None:
    cluster = Cluster("n1", "n2")
    account = StoredAccount("ann", "ann", hash_password("secret-pw"), 0.0)
    for node in cluster.nodes.values():
        node.machine.restore(StoredState(accounts=(account,)), node.at())
    n1 = cluster["n1"]
    n1.greet(1, Hello("ann"))
    [claim] = n1.send()
    assert isinstance(claim, Claim) and claim.mode == ClaimMode.ACCOUNT
    n1.answer()
    n1.now += 60
    n1.input(lambda m, now: m.tick(now))
    [error] = n1.frames(1)
    assert error.code == ErrorCode.AUTH_FAILED
    assert "ann" not in cluster.redis.users


def test_a_claim_answered_after_its_connection_closed_is_signed_out(three: Cluster) -> None:
    n1 = three["n1"]
    n1.greet(1, Hello("ann"))
    n1.send()
    n1.disconnected(1)
    n1.answer()  # fresh: ann is signed in for a connection that is gone
    assert three.redis.users["ann"].node == "n1"
    ops = n1.send()
    assert [type(op) for op in ops] == [SignOut] and ops[0].key == "ann"
    assert "ann" not in three.redis.users
    three.settle()
    assert three["n2"].machine.user_names() == []


def test_a_sign_out_parks_the_session_at_the_time_of_leaving(three: Cluster) -> None:
    n1 = three["n1"]
    sign_in(three, n1, 1, "ann")
    n1.now = 1234.5
    n1.receive(1, Quit())
    [out] = n1.send()
    assert isinstance(out, SignOut) and (out.key, out.reason, out.ts) == ("ann", "quit", 1234.5)


def test_a_resume_on_another_node_gets_what_it_missed_once(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    first = sign_in(three, n1, 1, "ann")
    sign_in(three, n1, 2, "bob")
    for i in range(1, 4):
        n1.receive(2, Say("lobby", f"#{i}"))
    three.settle()
    assert seqs(n1, 1) == [1, 2, 3]
    n1.disconnected(1)
    for i in range(4, 6):
        n1.receive(2, Say("lobby", f"#{i}"))
    three.settle()
    n2.greet(3, Hello("ann", session=first.session, resume={"lobby": 3}))
    n2.send()
    n1.receive(2, Say("lobby", "#6"))
    n1.send()  # stored while ann's resume is on its way
    three.settle()
    [history] = n2.frames(3, History)
    assert history.messages[0].seq == 4
    assert seqs(n2, 3) == [4, 5, 6]


def test_a_takeover_onto_a_node_behind_in_the_room_repeats_nothing(lobby: Cluster) -> None:
    # ann (n1) has seen up to 3; n2, where cat is, has read the lobby only to 1.
    # Found by the three-node takeover test under load: 2 and 3 reached ann twice.
    n1, n2 = lobby["n1"], lobby["n2"]
    ann = n1.frames(1)[0]
    for i in range(1, 4):
        n1.receive(2, Say("lobby", f"#{i}"))
        n1.send()
        n1.answer()
        n1.deliver("lobby")
    n2.deliver("lobby", 1)
    assert seqs(n1, 1) == [1, 2, 3] and n2.machine.cursor("lobby") == 1
    n2.greet(9, Hello("ann", session=ann.session, resume={"lobby": 3}))
    n2.send()
    n2.answer()  # taken over: nothing newer than 3 to send yet
    n1.receive(2, Say("lobby", "#4"))
    lobby.settle()
    assert seqs(n2, 9) == [4]
    assert seqs(n2, 3) == [1, 2, 3, 4]


def test_a_retry_elsewhere_is_answered_after_the_messages_before_it(lobby: Cluster) -> None:
    # ann's say leaves n1 unacknowledged; she resumes on n2 and sends it again.
    # Found by the property test: the original (seq 2) reached her before seq 1.
    n1, n2 = lobby["n1"], lobby["n2"]
    ann = n1.frames(1)[0]
    n1.receive(1, Say("lobby", "mine", id="m1"))
    n2.receive(3, Say("lobby", "first"))
    n1.disconnected(1)
    n2.connect(9)
    n2.receive(9, Hello("ann", session=ann.session, resume={"lobby": 0}))
    n2.send()  # cat's say is stored as 1; ann's hello settles
    n2.answer()
    n2.send()  # ann is taken over
    n2.answer()
    n1.send()  # ann's first try is stored as 2
    n1.answer()
    n2.receive(9, Say("lobby", "mine", id="m1"))
    lobby.settle()
    assert [m.text for m in lobby.redis.stored("lobby")] == ["first", "mine"]
    assert seqs(n2, 9) == [1, 2]


def test_a_name_won_twice_before_its_events_are_read_stays_won() -> None:
    # ann flaps n1 -> n2 -> n1 before n1 reads any event: n2's move, read
    # between n1's two wins, is older than the second and must not replace it.
    three = Cluster("n1", "n2")
    n1, n2 = three["n1"], three["n2"]
    n1.greet(1, Hello("ann"))
    n1.send()
    n1.answer()
    first = n1.frames(1)[0]
    n1.disconnected(1)
    for node, conn in ((n2, 2), (n1, 3)):
        node.greet(conn, Hello("ann", session=first.session), unheard=True)
        node.send()
        node.answer()
        if conn == 2:
            n2.disconnected(2)
    three.settle()
    assert n1.machine.state_of(3) is ConnState.ACTIVE
    assert not n1.frames(3, Error)


def test_a_takeover_while_a_say_is_in_flight(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    ann = n1.frames(1)[0]
    n1.receive(1, Say("lobby", "in flight", id="f1"))
    n1.send()  # stored as 1; the answer waits
    n2.greet(9, Hello("ann", session=ann.session, resume={"lobby": 0}))
    n2.send()
    n2.answer()
    n1.events()  # n1 hears of the move before its publish answer
    assert n1.machine.state_of(1) is ConnState.CLOSED  # its close waits behind the say
    lobby.settle()  # and nothing is sent to the closed connection (Node.apply checks)
    assert 1 in n1.closed and n1.frames(1, Error)[-1].code == ErrorCode.REPLACED
    assert [m.seq for m in n1.frames(2, Message)] == [1]
    assert seqs(n2, 9) == [1] and seqs(n2, 3) == [1]
    n2.receive(9, Say("lobby", "in flight", id="f1"))  # its client sends it again
    lobby.settle()
    assert n2.frames(9, Message)[-1].seq == 1 and len(lobby.redis.stored("lobby")) == 1


# -- other nodes' users -------------------------------------------------------------


def test_remote_changes_reach_local_members_only(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    sign_in(three, n1, 1, "ann")
    sign_in(three, n2, 3, "cat")
    assert [(f.name, f.room) for f in n1.frames(1, Joined)] == [("ann", "lobby"),
                                                               ("cat", "lobby")]
    n2.receive(3, Join("den"))
    three.settle()
    assert n1.machine.members("den") == ["cat"]
    assert [f.room for f in n1.frames(1, Joined)] == ["lobby", "lobby"]  # ann is not in den
    n2.receive(3, Nick("kit"))
    three.settle()
    assert n1.frames(1, Renamed) == [Renamed("cat", "kit", n2.frames(3)[0].color)]
    n2.receive(3, Part("lobby"))
    three.settle()
    assert [(f.name, f.reason) for f in n1.frames(1, Parted)] == [("kit", "part")]
    n2.receive(3, Quit("bye"))
    three.settle()
    assert n1.machine.user_names() == ["ann"] and n1.machine.members("den") == []
    assert three["n3"].machine.user_names() == ["ann"]
    assert not three["n3"].inbox  # n3 has nobody to tell


def test_a_takeover_that_resumes_keeps_a_join_the_cluster_had_not_heard_of(
        lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    ann = n1.frames(1)[0]
    n1.receive(1, Join("den"))
    n1.settle_first()  # ann is in the den on n1; its Enter has not reached Redis
    assert "den" not in lobby.redis.users["ann"].rooms
    n2.greet(9, Hello("ann", session=ann.session, resume={"lobby": 0, "den": 0}))
    lobby.settle()  # n1's late Enter is refused: ann is n2's now
    assert lobby.redis.users["ann"].rooms == {"lobby", "den"}
    assert sorted(n2.machine.members("den")) == ["ann"] == n1.machine.members("den")


def test_an_older_sign_in_elsewhere_does_not_undo_a_takeover_here(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    n1.greet(1, Hello("ann"))
    n1.send()
    n1.answer()
    ann = n1.frames(1)[0]
    assert isinstance(ann, Welcome)
    n2.greet(9, Hello("ann", session=ann.session), unheard=True)  # ann's sign-in: unread
    n2.send()
    n2.answer()  # a takeover; ann is new to n2
    assert isinstance(n2.frames(9)[0], Welcome)
    three.settle()  # n2 now reads n1's "in" (older than its own "move")
    assert n2.machine.state_of(9) is ConnState.ACTIVE and 9 not in n2.closed
    assert n1.frames(1, Error)[-1].code == ErrorCode.REPLACED and 1 in n1.closed
    assert three.redis.users["ann"].node == "n2"
    # Its join on n1 came too late for the cluster: it is nowhere, on every node.
    assert three.redis.users["ann"].rooms == set()
    assert n1.machine.members("lobby") == [] == n2.machine.members("lobby")


def test_an_older_sign_in_does_not_undo_a_nick_onto_that_name(three: Cluster) -> None:
    n1, n2 = three["n1"], three["n2"]
    sign_in(three, n1, 1, "ann")
    n2.greet(3, Hello("cat"))
    n2.send()
    n2.answer()
    n2.receive(3, Quit())
    n2.send()  # cat signed in and out; n1 has read neither event
    n1.now += QUIET.name_grace_s + 1
    n1.receive(1, Nick("cat"))
    n1.send()
    n1.answer()
    assert n1.frames(1, Renamed)[-1].new == "cat"
    three.settle()
    assert n1.machine.state_of(1) is ConnState.ACTIVE and 1 not in n1.closed
    assert n1.machine.user_names() == ["cat"] == three["n3"].machine.user_names()


def test_events_from_the_own_node_are_ignored(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    marks = [len(n1.frames(1)), len(n1.frames(2))]
    n1.input(lambda m, now: m.remote(RemoteJoin("n1", "ann", "den", 0.0), now))
    assert n1.machine.members("den") == []
    assert after(n1, 1, marks[0]) == [] and after(n1, 2, marks[1]) == []


def test_resync_reconciles_the_view(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    marks = [len(n1.frames(1)), len(n1.frames(2))]
    listed = [
        RemoteUser("ann", "ann", "#000000", "n1", ("lobby",)),
        # bob is gone from the cluster's list: his connection here is dropped
        RemoteUser("cat", "cat", "#000000", "n3", ("den",)),  # moved, and out of the lobby
        RemoteUser("dan", "dan", "#000000", "n2", ("lobby",)),  # new
    ]
    n1.input(lambda m, now: m.resync(listed, now))
    assert sorted(n1.machine.user_names()) == ["ann", "cat", "dan"]
    assert sorted(n1.machine.members("lobby")) == ["ann", "dan"]
    assert n1.machine.members("den") == ["cat"]
    assert n1.frames(2, Error)[-1].code == ErrorCode.REPLACED and 2 in n1.closed
    seen = [(type(f).__name__, f.name) for f in after(n1, 1, marks[0])
            if isinstance(f, Joined | Parted)]
    assert sorted(seen) == [("Joined", "dan"), ("Parted", "bob"), ("Parted", "cat")]
    assert n1.send() == []  # nothing of bob's goes back to the cluster


def test_resync_signs_out_a_leftover_of_this_node(three: Cluster) -> None:
    n1 = three["n1"]
    listed = [RemoteUser("old", "old", "#000000", "n1", ())]
    n1.input(lambda m, now: m.resync(listed, now))
    ops = n1.send()
    assert [(type(op), op.key) for op in ops] == [(SignOut, "old")]


# -- whispers -----------------------------------------------------------------------


# -- reads of other nodes' users -----------------------------------------------------


def _sign_in_unheard(node: Node, conn: int, name: str) -> None:
    """``name`` signs in on ``node`` (its welcome sent) before any other node reads the event."""
    node.greet(conn, Hello(name))
    node.send()
    node.answer()
    assert isinstance(node.frames(conn)[0], Welcome)


def _dan_in_the_den(n2: Node) -> None:
    """dan signs in on n2 and joins the den; no other node has read any of it."""
    _sign_in_unheard(n2, 4, "dan")
    n2.receive(4, Join("den"))
    n2.settle_first()
    n2.send()
    n2.answer()


def test_who_and_rooms_show_what_any_node_did_before_they_were_asked(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    _dan_in_the_den(n2)
    assert n1.machine.members("den") == []  # n1 has not read those events
    n1.receive(1, Who("den", ref="w"))
    n1.receive(1, Rooms(ref="r"))
    lobby.settle()
    roster, rooms = n1.frames(1)[-2:]
    assert isinstance(roster, Roster) and [m.name for m in roster.members] == ["dan"]
    assert isinstance(rooms, RoomList) and rooms.ref == "r"
    assert [(r.room, r.members) for r in rooms.rooms] == [("den", 1), ("lobby", 4)]


def test_a_join_and_a_welcome_show_who_came_before_on_another_node(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    _dan_in_the_den(n2)
    n1.receive(1, Join("den"))
    n1.greet(5, Hello("eve"))
    lobby.settle()
    rosters = [f for f in n1.frames(1, Roster) if f.room == "den"]
    assert [m.name for m in rosters[0].members] == ["ann", "dan"]
    [lobby_roster] = n1.frames(5, Roster)
    assert "dan" in [m.name for m in lobby_roster.members]
    assert lobby_roster.members[-1].name == "eve"


def test_a_whisper_reaches_a_user_who_just_signed_in_elsewhere(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    _sign_in_unheard(n2, 4, "dan")
    n1.receive(1, WhisperTo("dan", "welcome", id="w1"))
    lobby.settle()
    [mine], [theirs] = n1.frames(1, Whisper), n2.frames(4, Whisper)
    assert mine == theirs and mine.to == "dan"
    n1.receive(1, WhisperTo("nobody", "hello?", id="w2"))
    lobby.settle()
    error = n1.frames(1)[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.NO_SUCH_USER
    assert error.ref == "w2"


def test_a_read_waiting_to_settle_keeps_the_connections_order(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    n1.receive(1, Rooms(ref="r"))
    n1.receive(1, Ping("p"))  # waits behind the room list
    assert not n1.frames(1, Pong)
    lobby.settle()
    assert [type(f) for f in n1.frames(1)[-2:]] == [RoomList, Pong]


def test_rooms_out_of_reach_of_redis_answers_from_the_replica(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    lobby.redis.down = True
    n1.receive(1, Rooms(ref="r"))
    lobby.settle()
    rooms = n1.frames(1)[-1]
    assert isinstance(rooms, RoomList) and [(r.room, r.members) for r in rooms.rooms] == [
        ("lobby", 3)]


def test_whisper_on_the_same_node(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    n1.receive(1, WhisperTo("bob", "psst", id="w1"))
    lobby.settle()
    [mine], [theirs] = n1.frames(1, Whisper), n1.frames(2, Whisper)
    assert mine == theirs and mine.to == "bob" and mine.text == "psst"
    assert not lobby["n2"].frames(3, Whisper)


def test_whisper_across_nodes_again_and_gone(lobby: Cluster) -> None:
    n1, n2, n3 = lobby["n1"], lobby["n2"], lobby["n3"]
    n1.receive(1, WhisperTo("cat", "psst", id="w1"))
    lobby.settle()
    [mine], [theirs] = n1.frames(1, Whisper), n2.frames(3, Whisper)
    assert mine == theirs and not n3.inbox and not n1.frames(2, Whisper)
    n1.now += 5
    n1.receive(1, WhisperTo("cat", "psst", id="w1"))
    lobby.settle()
    again = n1.frames(1, Whisper)[-1]
    assert (again.to, again.ts, again.id) == (mine.to, mine.ts, "w1")
    assert len(n2.frames(3, Whisper)) == 1  # not delivered twice
    del lobby.redis.users["cat"]  # signed out; n1 has not heard yet
    n1.receive(1, WhisperTo("cat", "hello?", id="w2"))
    lobby.settle()
    error = n1.frames(1)[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.NO_SUCH_USER
    assert error.ref == "w2"
    assert len(n2.frames(3, Whisper)) == 1


def test_a_remote_whisper_is_delivered_only_on_its_targets_node(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    whisper = Whisper("cat", "bob", "#e06c75", "psst", 1.0, "w9")
    n1.input(lambda m, now: m.remote(RemoteWhisper("n2", "bob", "n3", whisper), now))
    assert not n1.frames(2, Whisper)  # the cluster says bob is on n3: not this bob
    n1.input(lambda m, now: m.remote(RemoteWhisper("n2", "bob", "n1", whisper), now))
    assert n1.frames(2, Whisper) == [whisper] and not n1.frames(1, Whisper)


def test_a_failed_whisper_tells_the_sender_internal(lobby: Cluster) -> None:
    n1 = lobby["n1"]
    lobby.redis.down = True
    n1.receive(1, WhisperTo("cat", "psst", id="w1"))
    lobby.settle()
    error = n1.frames(1)[-1]
    assert isinstance(error, Error) and error.code == ErrorCode.INTERNAL and error.ref == "w1"


def test_a_nick_is_decided_by_the_cluster(lobby: Cluster) -> None:
    n1, n2 = lobby["n1"], lobby["n2"]
    n2.greet(9, Hello("dan"))
    n2.send()  # dan is claimed in Redis; n1 has not heard of dan yet
    n1.receive(1, Nick("Dan"))
    lobby.settle()
    [error] = n1.frames(1, Error)
    assert error.code == ErrorCode.NAME_TAKEN
    assert lobby.redis.users["dan"].node == "n2" and not n1.frames(1, Renamed)
    n1.receive(1, Nick("Ada"))
    lobby.settle()
    assert n2.frames(3, Renamed)[-1] == Renamed("ann", "Ada", n1.frames(1)[0].color)
    assert "ada" in lobby.redis.users and "ann" not in lobby.redis.users


def test_rooms_config_is_the_nodes() -> None:
    cluster = Cluster("n1", config=RoomsConfig(flood_rate_per_s=0, heartbeat_s=0,
                                               default_room="hall"))
    sign_in(cluster, cluster["n1"], 1, "ann")
    assert cluster.redis.users["ann"].rooms == {"hall"}
