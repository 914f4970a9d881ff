"""Three ``chattycat serve --redis`` nodes act as one server (PROTOCOL.md, section 9).

Clients on different nodes chat in one room, collide on names, whisper,
rename, resume and list rooms exactly as on a single server. Every wait is
bounded; nothing sleeps and hopes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from tests.cluster.conftest import Cluster, Node, StartCluster, joined_room, messages_until
from tests.wire import Frame, WireClient

SENDERS_PER_NODE = 3
MESSAGES_PER_SENDER = 100
# Takeovers from node to node while others keep talking, and how many
# live messages each new connection must then get in order.
TAKEOVERS = 30
LIVE_AFTER_TAKEOVER = 20
TALK_INTERVAL_S = 0.001
MAX_TALK = 5000
ROSTER_ROUNDS = 20
ORDER_ROUNDS = 20


@pytest.fixture
def three(cluster: StartCluster) -> Cluster:
    return cluster(3)


def meet(node: Node, name: str, others: list[WireClient]) -> WireClient:
    """Sign ``name`` in on ``node`` (default room: lobby); wait until ``others`` see it join."""
    client = node.user(name)
    for other in others:
        other.recv_until("joined", where=lambda f: f["name"] == name and f["room"] == "lobby")
    return client


def everyone(three: Cluster, names: list[str]) -> list[WireClient]:
    """One user per name, on the nodes in turn, each seen joining by those before it."""
    clients: list[WireClient] = []
    for i, name in enumerate(names):
        clients.append(meet(three.nodes[i % len(three.nodes)], name, clients))
    return clients


def seqs(frames: list[Frame]) -> list[int]:
    return [f["seq"] for f in frames]


def test_members_on_three_nodes_receive_every_message_once_in_seq_order(
        three: Cluster) -> None:
    clients = everyone(three, ["alice", "bob", "carol"])
    for round_ in range(5):
        for client, name in zip(clients, ["alice", "bob", "carol"], strict=True):
            client.say("lobby", f"{name} {round_}", id=f"{name}-{round_}")
    for client in clients:
        got = messages_until(client, "lobby", 15)
        assert seqs(got) == list(range(1, 16))
        client.expect_no_frame(0.3)
    stored = three.stored("lobby")
    assert [(s.seq, s.sender, s.text, s.id) for s in stored] == [
        (m["seq"], m["from"], m["text"], m["id"]) for m in got]
    assert Counter(s.sender for s in stored) == {"alice": 5, "bob": 5, "carol": 5}


def test_concurrent_senders_on_every_node_number_messages_without_gap_or_repeat(
        three: Cluster) -> None:
    names = [f"s{node}x{i}" for i in range(SENDERS_PER_NODE) for node in range(3)]
    clients = everyone(three, names)
    for client in clients:
        client.drain(0.05)
    for i in range(MESSAGES_PER_SENDER):  # pipelined: nobody waits for an ack
        for client, name in zip(clients, names, strict=True):
            client.say("lobby", f"{name} says {i}", id=f"{name}-{i}")
    total = len(names) * MESSAGES_PER_SENDER
    received = {name: messages_until(client, "lobby", total, timeout_s=60)
                for client, name in zip(clients, names, strict=True)}
    first = received[names[0]]
    assert seqs(first) == list(range(1, total + 1))
    for name, frames in received.items():
        # Every member sees the very same sequence: same seqs, same messages.
        assert [(f["seq"], f["from"], f["id"]) for f in frames] == [
            (f["seq"], f["from"], f["id"]) for f in first], name
        own = [f["id"] for f in frames if f["from"] == name]
        assert own == [f"{name}-{i}" for i in range(MESSAGES_PER_SENDER)], name
    stored = three.stored("lobby")
    assert [(s.seq, s.sender, s.text, s.id) for s in stored] == [
        (f["seq"], f["from"], f["text"], f["id"]) for f in first]


def test_names_collide_across_nodes_case_insensitively(three: Cluster) -> None:
    three.nodes[0].user("alice")
    for node, name, instead in [(three.nodes[1], "ALICE", "bob"),
                                (three.nodes[2], "Alice", "carol")]:
        client = node.connect()
        client.send({"type": "hello", "name": name, "protocol": 1, "ref": "h"})
        error = client.recv()
        assert (error["type"], error["code"], error["ref"]) == ("error", "name_taken", "h")
        assert client.hello(instead)["name"] == instead  # the connection may try again


def test_whisper_across_nodes_reaches_both_once_and_a_retry_elsewhere_is_not_delivered_again(
        three: Cluster) -> None:
    alice, bob, carol = everyone(three, ["alice", "bob", "carol"])
    for client in (alice, bob, carol):
        client.drain(0.05)
    alice.send({"type": "whisper", "to": "BOB", "text": "psst", "id": "w-1"})
    for client in (alice, bob):
        whisper = client.recv_until("whisper")
        assert (whisper["from"], whisper["to"], whisper["text"], whisper["id"]) == (
            "alice", "bob", "psst", "w-1")
        assert whisper["color"] == alice.welcome["color"]  # type: ignore[index]
    # Alice's link drops before she saw her copy (as far as her client knows):
    # she resumes on the third node and sends the whisper again, same id.
    again = three.nodes[2].connect()
    again.hello("alice", session=alice.welcome["session"],  # type: ignore[index]
                resume={"rooms": {"lobby": 0}})
    again.send({"type": "whisper", "to": "bob", "text": "psst", "id": "w-1"})
    copy = again.recv_until("whisper")
    assert (copy["to"], copy["id"]) == ("bob", "w-1")
    bob.send({"type": "ping", "token": "after"})
    frames = bob.recv_all_until("pong")
    assert [f for f in frames if f["type"] == "whisper"] == []
    bob.expect_no_frame(0.5)
    carol.expect_no_frame(0.1)


def test_whisper_to_a_user_on_another_node_who_left_is_no_such_user(three: Cluster) -> None:
    alice, bob = everyone(three, ["alice", "bob"])
    bob.send({"type": "quit"})
    bob.expect_eof()
    alice.recv_until("parted", where=lambda f: f["name"] == "bob")
    alice.send({"type": "whisper", "to": "bob", "text": "still there?", "ref": "w"})
    error = alice.recv_until("error")
    assert (error["code"], error["ref"]) == ("no_such_user", "w")


def test_resume_on_another_node_replaces_the_old_connection_silently_and_replays_missed(
        three: Cluster) -> None:
    alice, bob, carol = everyone(three, ["alice", "bob", "carol"])
    for i in range(3):
        bob.say("lobby", f"seen {i}", id=f"seen-{i}")
    seen = messages_until(alice, "lobby", 3)[-1]["seq"]
    for i in range(4):
        carol.say("lobby", f"missed {i}", id=f"missed-{i}")
    messages_until(bob, "lobby", 7)
    messages_until(carol, "lobby", 7)
    new = three.nodes[1].connect()  # alice was on node 1; bob is on node 2
    welcome = new.hello("alice", session=alice.welcome["session"],  # type: ignore[index]
                        resume={"rooms": {"lobby": seen}})
    assert welcome["session"] == alice.welcome["session"]  # type: ignore[index]
    assert welcome["color"] == alice.welcome["color"]  # type: ignore[index]
    old = alice.expect_eof()
    assert [f["code"] for f in old if f["type"] == "error"] == ["replaced"]
    history = [m for f in new.join_frames if f["type"] == "history" for m in f["messages"]]
    assert [m["text"] for m in history] == [f"missed {i}" for i in range(4)]
    assert [m["seq"] for m in history] == list(range(seen + 1, seen + 5))
    for other in (bob, carol):  # no parted/joined for the handover
        other.expect_no_frame(0.5)
    bob.say("lobby", "welcome back", id="wb")
    assert messages_until(new, "lobby", 1)[0]["text"] == "welcome back"


def test_history_is_the_same_from_every_node(three: Cluster) -> None:
    alice, bob = everyone(three, ["alice", "bob"])
    for i in range(30):
        (alice if i % 2 else bob).say("lobby", f"line {i}", id=f"l{i}")
    seen = [(m["seq"], m["text"]) for m in messages_until(alice, "lobby", 30)]
    assert [(m["seq"], m["text"]) for m in messages_until(bob, "lobby", 30)] == seen
    assert sorted(text for _, text in seen) == sorted(f"line {i}" for i in range(30))
    late = three.nodes[2].user("carol")
    joined = [(m["seq"], m["text"]) for f in late.join_frames if f["type"] == "history"
              for m in f["messages"]]
    assert joined == seen
    for client in (alice, bob, late):
        client.drain(0.1)
        client.send({"type": "history", "room": "lobby", "before": 21, "limit": 5, "ref": "q"})
        answer = client.recv_until("history", where=lambda f: f.get("ref") == "q")
        assert [m["seq"] for m in answer["messages"]] == [16, 17, 18, 19, 20]


def test_nick_is_seen_on_other_nodes_and_a_name_held_elsewhere_is_taken(
        three: Cluster) -> None:
    alice, bob, carol = everyone(three, ["alice", "bob", "carol"])
    for client in (alice, bob, carol):
        client.drain(0.05)
    alice.send({"type": "nick", "name": "al"})
    for client in (alice, bob, carol):
        renamed = client.recv_until("renamed")
        assert (renamed["old"], renamed["new"]) == ("alice", "al")
        assert renamed["color"] == alice.welcome["color"]  # type: ignore[index]
        client.expect_no_frame(0.3)
    carol.send({"type": "nick", "name": "AL", "ref": "n"})
    error = carol.recv_until("error")
    assert (error["code"], error["ref"]) == ("name_taken", "n")
    carol.send({"type": "nick", "name": "Bob", "ref": "n2"})
    assert carol.recv_until("error")["code"] == "name_taken"
    alice.say("lobby", "as al", id="as-al")
    assert messages_until(bob, "lobby", 1)[0]["from"] == "al"
    taker = three.nodes[2].connect()  # the old name is free again, on any node
    assert taker.hello("alice")["name"] == "alice"


def test_rosters_and_room_lists_are_the_same_from_every_node(three: Cluster) -> None:
    alice, bob, carol, dave = everyone(three, ["alice", "bob", "carol", "dave"])
    for client, room in [(alice, "dev"), (bob, "dev"), (carol, "ops"), (dave, "dev")]:
        joined_room(client, room)
    carol.send({"type": "part", "room": "lobby"})
    carol.recv_until("parted")
    # Everyone sees the last change before asking, whichever node made it.
    for client in (alice, bob, dave):
        client.recv_until("parted", where=lambda f: f["name"] == "carol")
    rosters, lists = [], []
    for client in (alice, bob, carol, dave):
        client.drain(0.1)
        client.send({"type": "who", "room": "dev", "ref": "w"})
        rosters.append([m["name"] for m in client.recv_until("roster")["members"]])
        client.send({"type": "rooms", "ref": "r"})
        lists.append(client.recv_until("room_list")["rooms"])
    assert rosters == [["alice", "bob", "dave"]] * 4
    assert lists == [[{"room": "dev", "members": 3}, {"room": "lobby", "members": 3},
                      {"room": "ops", "members": 1}]] * 4


def test_joined_and_parted_are_seen_across_nodes(three: Cluster) -> None:
    alice, bob = everyone(three, ["alice", "bob"])
    joined_room(alice, "dev")
    carol = three.nodes[2].user("carol")
    joined_room(carol, "dev")
    joined = alice.recv_until("joined", where=lambda f: f["room"] == "dev"
                              and f["name"] == "carol")
    assert joined["color"] == carol.welcome["color"]  # type: ignore[index]
    bob.recv_until("joined", where=lambda f: f["name"] == "carol")  # lobby only
    carol.send({"type": "part", "room": "dev"})
    parted = alice.recv_until("parted", where=lambda f: f["room"] == "dev")
    assert (parted["name"], parted["reason"]) == ("carol", "part")
    carol.send({"type": "quit", "reason": "lunch"})
    carol.expect_eof()
    for client in (alice, bob):
        gone = client.recv_until("parted", where=lambda f: f["room"] == "lobby")
        assert (gone["name"], gone["reason"]) == ("carol", "lunch")
    bob.close()
    gone = alice.recv_until("parted", where=lambda f: f["name"] == "bob")
    assert (gone["room"], gone["reason"]) == ("lobby", "disconnected")
    alice.expect_no_frame(0.3)


def test_idempotence_window_of_the_last_1000_ids_holds_on_another_node(three: Cluster) -> None:
    alice = three.nodes[0].user("alice")
    for seq in range(1, 1002):
        alice.say("lobby", f"m{seq}", id=f"id-{seq}")
    assert messages_until(alice, "lobby", 1001)[-1]["seq"] == 1001
    back = three.nodes[1].connect()  # the same session, on another node
    back.hello("alice", session=alice.welcome["session"],  # type: ignore[index]
               resume={"rooms": {"lobby": 1001}})
    back.say("lobby", "retry of the 1000th newest", id="id-2")
    again = back.recv_until("message")
    assert (again["seq"], again["text"]) == (2, "m2")
    back.say("lobby", "too old to be recognised", id="id-1")
    assert back.recv_until("message")["seq"] == 1002
    assert len(three.stored("lobby")) == 1002


def test_users_signing_in_at_once_on_different_nodes_get_distinct_colors(
        three: Cluster) -> None:
    # PROTOCOL 2: users sharing a room get distinct colors while the palette
    # lasts, even when their nodes decide at the same moment.
    clients = [node.connect() for node in three.nodes]
    for i, client in enumerate(clients):
        client.send({"type": "hello", "name": f"user{i}", "protocol": 1})
    colors = []
    for client in clients:
        welcome = client.recv_until("welcome")
        colors.append(welcome["color"])
    assert len(set(colors)) == len(clients), colors


def test_takeovers_across_nodes_under_traffic_get_welcome_then_history_then_live_in_order(
        three: Cluster) -> None:
    user = three.nodes[0].user("alice")
    talkers = [three.nodes[1].user("bob"), three.nodes[2].user("carol")]
    stop = threading.Event()

    def talk() -> None:
        count = 0
        # Capped: the talkers never read, and what waits for them must stay
        # well under the slow-consumer limit.
        while not stop.is_set() and count < MAX_TALK:
            talkers[count % 2].say("lobby", f"m{count}", id=f"m{count}")
            count += 1
            time.sleep(TALK_INTERVAL_S)

    talking = threading.Thread(target=talk, daemon=True)
    talking.start()
    try:
        for takeover in range(TAKEOVERS):
            last = messages_until(user, "lobby", LIVE_AFTER_TAKEOVER)[-1]["seq"]
            new = three.nodes[(takeover + 1) % 3].connect()
            new.send({"type": "hello", "name": "alice", "protocol": 1,
                      "session": user.welcome["session"],  # type: ignore[index]
                      "resume": {"rooms": {"lobby": last}}})
            first = new.recv()
            assert first["type"] == "welcome", f"takeover {takeover}: {first} before welcome"
            new.welcome = first
            frames = new.recv_all_until("history", where=lambda f: not f.get("more"))
            frames += messages_until(new, "lobby", LIVE_AFTER_TAKEOVER)
            assert [f["type"] for f in frames[:2]] == ["roster", "history"], takeover
            seqs = [m["seq"] for f in frames if f["type"] == "history" for m in f["messages"]]
            seqs += [f["seq"] for f in frames if f["type"] == "message"]
            assert seqs == list(range(last + 1, last + 1 + len(seqs))), (
                f"takeover {takeover} from seq {last}: {seqs[:30]}")
            user.close()
            user = new
    finally:
        stop.set()
        talking.join(5)


def test_a_user_signed_in_on_one_node_is_in_the_roster_asked_for_at_once_on_another(
        three: Cluster) -> None:
    # A `who` settles first (docs/scale-out.md): the node answers once it has
    # read the cluster's events as far as they went when it was asked, so a
    # user welcomed on another node a moment before is in it.
    observer = three.nodes[1].user("observer")
    names = ["observer"]
    for i in range(ROSTER_ROUNDS):
        names.append(f"user{i:02d}")
        three.nodes[(i % 2) * 2].user(names[-1])  # node 1 or node 3; welcomed
        observer.send({"type": "who", "room": "lobby", "ref": i})
        roster = observer.recv_until("roster", where=lambda f, ref=i: f.get("ref") == ref)
        assert [m["name"] for m in roster["members"]] == sorted(names, key=str.lower), i


def test_arrival_words_and_leaving_reach_other_nodes_in_the_order_they_happened(
        three: Cluster) -> None:
    # Membership comes through the event stream and messages through the room's
    # stream; a member on another node must still see a user join before its
    # first word and its last word before it leaves, as on one server.
    observer = three.nodes[0].user("observer")
    names = [f"quick{i:02d}" for i in range(ORDER_ROUNDS)]
    for i, name in enumerate(names):
        quick = three.nodes[1 + i % 2].user(name)
        quick.say("lobby", "hello", id="h")
        quick.recv_until("message", where=lambda f, name=name: f.get("from") == name)
        quick.send({"type": "quit", "reason": "done"})
        quick.expect_eof()
    frames = observer.recv_all_until("parted", where=lambda f: f["name"] == names[-1])
    for name in names:
        seen = [f["type"] for f in frames
                if f.get("name") == name or f.get("from") == name]
        assert seen == ["joined", "message", "parted"], (name, seen)
