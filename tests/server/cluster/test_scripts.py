"""The cluster's Lua scripts against a real Redis, called as a node calls them.

Arguments are built with ``codec.*_args`` from the same ops the machine
hands out, and replies read back with the codec, so these tests pin what a
node and Redis agree on. Each test gets its own ``redis-server`` (skipped
where it is not installed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from chattycat.protocol.messages import Message, Whisper
from chattycat.server.cluster import codec
from chattycat.server.cluster.ops import (
    FOLLOW,
    Claim,
    Claimed,
    Enter,
    Leave,
    Publish,
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
    SignOut,
)
from chattycat.server.cluster.scripts import SCRIPTS
from chattycat.server.colors import PALETTE
from chattycat.server.effects import LoadHistory, Page
from tests.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)

GRACE_S = 120.0
TTL_MS = 10_000
RED, SKY = "#e06c75", "#61afef"


class Node:
    """One node's calls of the scripts (EVALSHA, as the wiring makes them)."""

    def __init__(self, client: redis.Redis, name: str, shas: dict[str, str], *,
                 window: int = 1000, whisper_window: int = 1000) -> None:
        self.r = client
        self.name = name
        self.shas = shas
        self.rules = codec.Settings(name, grace_s=GRACE_S, session_ttl_s=3600.0,
                                    window=window, whisper_window=whisper_window)

    def call(self, script: str, *args: Any) -> Any:
        return self.r.evalsha(self.shas[script], 0, *args)

    def beat(self) -> int:
        return int(self.call("beat", self.name, TTL_MS))

    def publish(self, text: str, msg_id: str | None = None, *, room: str = "lobby",
                session: str = "s1", ts: float = 1000.0) -> Any:
        message = Message(room, 1, "ann", RED, text, ts, msg_id)
        return self.call("publish", *codec.publish_args(Publish(1, message, session), self.rules))

    def claim(self, name: str, *, hd: str = "", nd: str = "new", mode: str = "open",
              color: str = RED, avoid: tuple[str, ...] = (), ts: float = 1000.0,
              rooms: tuple[str, ...] = ()) -> Claimed:
        op = Claim(1, name.lower(), name, hd, nd, mode, color, avoid, ts, rooms)
        return codec.decode_claimed(self.call("claim", *codec.claim_args(op, self.rules)))

    def rename(self, old: str, name: str, *, digest: str = "new", owner: bool = False,
               ts: float = 1000.0) -> str:
        op = Rename(1, old, name.lower(), name, digest, owner, ts)
        return codec.decode_claimed(self.call("rename", *codec.rename_args(op, self.rules))).outcome

    def join(self, key: str, room: str) -> int:
        return int(self.call("join", *codec.enter_args(Enter(key, room, 5.0), self.rules)))

    def part(self, key: str, room: str) -> int:
        return int(self.call("part", *codec.leave_args(Leave(key, room, "part"), self.rules)))

    def sign_out(self, key: str, digest: str = "", ts: float = 1000.0) -> int:
        op = SignOut(key, digest, "", "quit", ts)
        return int(self.call("sign_out", *codec.sign_out_args(op, self.rules)))

    def whisper(self, to: str, wid: str | None, *, session: str = "s1",
                ts: float = 1000.0) -> tuple[str, str, Whisper | None]:
        op = SendWhisper(1, Whisper("ann", to, RED, "psst", ts, wid), to.lower(), session)
        return codec.decode_whispered(op, self.call("whisper", *codec.whisper_args(op, self.rules)))

    def page(self, page: Page, seq: int, limit: int, up_to: int) -> tuple[int, list[int], bool]:
        read = LoadHistory(1, "lobby", page, seq, limit, up_to)
        top, messages, truncated = codec.decode_page(read, self.call("page",
                                                                     *codec.page_args(read)))
        return top, [m.seq for m in messages], truncated


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def shas(r: redis.Redis) -> dict[str, str]:
    return {name: str(r.script_load(text)) for name, text in SCRIPTS.items()}


@pytest.fixture
def n1(r: redis.Redis, shas: dict[str, str]) -> Node:
    node = Node(r, "n1", shas)
    node.beat()
    return node


@pytest.fixture
def n2(r: redis.Redis, shas: dict[str, str]) -> Node:
    node = Node(r, "n2", shas)
    node.beat()
    return node


def _flat(fields: dict[bytes, bytes]) -> list[bytes]:
    return [x for kv in fields.items() for x in kv]


def stored(r: redis.Redis, room: str = "lobby") -> list[Message]:
    """The room's stream as the node reads it."""
    return [codec.decode_message(room, [eid, _flat(f)]) for eid, f in r.xrange(f"cc:room:{room}")]


def stream_seqs(r: redis.Redis, room: str = "lobby") -> list[int]:
    return [codec.seq_of(entry_id) for entry_id, _f in r.xrange(f"cc:room:{room}")]


def events(r: redis.Redis) -> list[Any]:
    return [codec.decode_event([eid, _flat(f)]) for eid, f in r.xrange("cc:events")]


# -- publish ---------------------------------------------------------------------------


def test_publish_numbers_one_to_n(n1: Node, r: redis.Redis) -> None:
    replies = [n1.publish(f"#{i}") for i in range(1, 6)]
    assert [(int(dup), codec.seq_of(sid)) for dup, sid, _after in replies] == \
        [(0, i) for i in range(1, 6)]
    assert stream_seqs(r) == [1, 2, 3, 4, 5]
    first = stored(r)[0]
    assert (first.seq, first.text, first.sender, first.ts) == (1, "#1", "ann", 1000.0)


def test_a_message_keeps_the_last_event_before_it(n1: Node, r: redis.Redis) -> None:
    n1.publish("before anyone")
    n1.claim("ann", nd="d1")
    n1.publish("after ann came")
    [signed_in] = r.xrange("cc:events")
    entries = [[sid, _flat(f)] for sid, f in r.xrange("cc:room:lobby")]
    messages, after = codec.decode_messages("lobby", entries)
    assert [m.text for m in messages] == ["before anyone", "after ann came"]
    assert after == ["0-0", signed_in[0].decode()]
    assert n1.publish("and again")[2] == signed_in[0]  # the reply says it too


def test_a_part_a_sign_out_and_a_nick_keep_where_the_rooms_stood(n1: Node,
                                                                  r: redis.Redis) -> None:
    n1.claim("ann", nd="d1", rooms=("lobby", "den"))
    for _ in range(3):
        n1.publish("in the lobby")
    n1.publish("in the den", room="den")
    n1.part("ann", "den")
    n1.publish("later")
    n1.rename("ann", "Anna")
    n1.sign_out("anna")
    marks = [codec.event_marks([eid, _flat(f)]) for eid, f in r.xrange("cc:events")]
    assert marks == [[], [("den", 1)], [("lobby", 4)], [("lobby", 4)]]


def test_eval_without_a_loaded_script_works_too(r: redis.Redis) -> None:
    rules = codec.Settings("n1", grace_s=1, session_ttl_s=60, window=10, whisper_window=10)
    op = Publish(1, Message("den", 1, "ann", RED, "hi", 1.0), "s1")
    reply = r.eval(SCRIPTS["publish"], 0, *codec.publish_args(op, rules))
    assert codec.seq_of(reply[1]) == 1


def test_concurrent_publishers_leave_no_gap(redis_server: RedisServer,
                                            shas: dict[str, str]) -> None:
    threads, each = 8, 40
    got: list[list[int]] = [[] for _ in range(threads)]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        client = redis_server.client()
        try:
            node = Node(client, f"n{index}", shas)
            for i in range(each):
                reply = node.publish(f"{index}/{i}", f"{index}-{i}", session=f"s{index}")
                got[index].append(codec.seq_of(reply[1]))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            client.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not failures and not any(w.is_alive() for w in workers)
    total = threads * each
    with redis_server.client() as r:
        assert stream_seqs(r) == list(range(1, total + 1))
    assert sorted(s for seqs in got for s in seqs) == list(range(1, total + 1))
    assert all(seqs == sorted(seqs) for seqs in got)  # each client's in its own order


def test_a_repeated_id_returns_the_original_and_stores_nothing(n1: Node, r: redis.Redis) -> None:
    n1.publish("first", "x")
    n1.publish("other", "y")
    dup, sid, fields = n1.publish("first again", "x", ts=2000.0)
    assert int(dup) == 1 and codec.seq_of(sid) == 1
    original = codec.decode_message("lobby", [sid, fields])
    assert (original.text, original.ts, original.id) == ("first", 1000.0, "x")
    assert stream_seqs(r) == [1, 2]


def test_the_same_id_from_another_session_is_new(n1: Node, r: redis.Redis) -> None:
    n1.publish("mine", "x", session="s1")
    dup, sid, _after = n1.publish("theirs", "x", session="s2")
    assert int(dup) == 0 and codec.seq_of(sid) == 2
    dup, sid, _after = n1.publish("in the den", "x", session="s1", room="den")
    assert int(dup) == 0 and codec.seq_of(sid) == 1  # the window is per room too


def test_the_window_keeps_the_last_ids(r: redis.Redis, shas: dict[str, str]) -> None:
    node = Node(r, "n1", shas, window=3)
    for msg_id in "abcd":
        node.publish(msg_id, msg_id)
    assert r.zcard("cc:ids:s1:lobby") == 3
    assert int(node.publish("d", "d")[0]) == 1  # still remembered
    assert int(node.publish("a", "a")[0]) == 0  # forgotten: stored again, as 5
    assert stream_seqs(r) == [1, 2, 3, 4, 5]
    assert 0 < r.ttl("cc:ids:s1:lobby") <= 3600


def test_trimming_never_resets_the_numbering(n1: Node, r: redis.Redis) -> None:
    for i in range(1, 5):
        n1.publish(f"#{i}", ts=float(i))
    assert int(n1.call("prune", repr(2.5))) == 2  # 1 and 2 are older than 2.5
    assert stream_seqs(r) == [3, 4]
    assert codec.seq_of(n1.publish("#5", ts=5.0)[1]) == 5
    assert int(n1.call("prune", repr(100.0))) == 3  # all of them
    assert stream_seqs(r) == []
    assert codec.seq_of(n1.publish("#6", ts=6.0)[1]) == 6
    n1.publish("#7", ts=7.0)
    r.xtrim("cc:room:lobby", maxlen=0, approximate=False)
    assert stream_seqs(r) == []
    assert codec.seq_of(n1.publish("#8", ts=8.0)[1]) == 8
    assert n1.page(Page.LATEST, 0, 10, FOLLOW) == (8, [8], False)


def test_prune_reads_past_its_batches(n1: Node, r: redis.Redis) -> None:
    for i in range(1, 251):  # the script reads 100 entries at a time
        n1.publish(f"#{i}", ts=float(i))
    assert int(n1.call("prune", repr(180.0))) == 179
    assert stream_seqs(r) == list(range(180, 251))
    assert int(n1.call("prune", repr(180.0))) == 0
    assert int(n1.call("prune", repr(1e9))) == 71
    assert codec.seq_of(n1.publish("next", ts=2e9)[1]) == 251


def test_a_repeated_id_whose_message_was_pruned_is_stored_again(n1: Node,
                                                                r: redis.Redis) -> None:
    n1.publish("old", "x", ts=1.0)
    n1.call("prune", repr(50.0))
    dup, sid, _after = n1.publish("old", "x", ts=100.0)
    assert int(dup) == 0 and codec.seq_of(sid) == 2


# -- claims ------------------------------------------------------------------------------


def test_claim_fresh_then_taken(n1: Node, n2: Node, r: redis.Redis) -> None:
    assert n1.claim("Ann", nd="d1") == Claimed("fresh", RED, "d1", "")
    assert n2.claim("ANN", nd="d2") == Claimed("taken")
    assert n2.claim("ann", hd="wrong", nd="d2") == Claimed("taken")
    assert events(r) == [RemoteIn("n1", "ann", "Ann", RED)]
    snapshot = codec.decode_snapshot(n1.call("snapshot"))[1]
    assert snapshot == [RemoteUser("ann", "Ann", RED, "n1", ())]


def test_claim_takeover_across_nodes(n1: Node, n2: Node, r: redis.Redis) -> None:
    n1.claim("ann", nd="d1")
    n1.join("ann", "lobby")
    assert n2.claim("ann", hd="d1", nd="d2", color=SKY) == \
        Claimed("takeover", RED, "d1", "n1", ("lobby",))
    assert events(r)[-1] == RemoteMove("n2", "ann", "ann", RED, ("lobby",))
    [user] = codec.decode_snapshot(n1.call("snapshot"))[1]
    assert (user.node, user.rooms) == ("n2", ("lobby",))  # rooms go with the user


def test_claim_resume_keeps_the_color_unless_a_neighbour_has_it(n1: Node, n2: Node) -> None:
    # Redis picks the color (PROTOCOL 2), whatever the node proposed.
    n1.claim("ann", nd="d1", color=SKY, rooms=("lobby",))
    assert n1.sign_out("ann", "d1", ts=1000.0) == 1
    assert n2.claim("ann", hd="d1", nd="d2", color=SKY, ts=1001.0, rooms=("lobby",)) == \
        Claimed("resume", RED, "d1", "")
    n2.sign_out("ann", "d1", ts=1002.0)
    assert n1.claim("bob", nd="b1", ts=1002.5, rooms=("lobby",)).color == RED
    assert n1.claim("ann", hd="d1", nd="d3", ts=1003.0, rooms=("lobby",)) == \
        Claimed("resume", PALETTE[1], "d1", "")


def test_claims_at_once_into_one_room_get_distinct_colors_while_the_palette_lasts(
        n1: Node, n2: Node) -> None:
    colors = [(n1 if i % 2 else n2).claim(f"u{i}", nd=f"d{i}", rooms=("lobby",)).color
              for i in range(len(PALETTE))]
    assert sorted(colors) == sorted(PALETTE)
    # A room of its own: the least used by everyone comes first, then palette order.
    assert n1.claim("solo", nd="s", rooms=("attic",)).color == PALETTE[0]
    # Leaving frees a color for the room.
    n2.part("u0", "lobby")
    assert n1.claim("late", nd="l", rooms=("lobby",)).color == colors[0]


def test_claim_reserved_within_grace_then_free(n1: Node, n2: Node) -> None:
    n1.claim("ann", nd="d1")
    n1.sign_out("ann", "d1", ts=1000.0)
    assert n2.claim("ann", nd="d2", ts=1000.0 + GRACE_S - 1) == Claimed("reserved")
    assert n2.claim("ann", nd="d2", ts=1000.0 + GRACE_S + 1) == Claimed("fresh", RED, "d2", "")


def test_claim_in_account_mode(n1: Node, n2: Node) -> None:
    assert n1.claim("ann", mode="account") == Claimed("auth")  # no session at all
    n1.claim("ann", nd="d1", mode="proven")
    assert n2.claim("ann", mode="account") == Claimed("auth")  # held, without its session
    assert n2.claim("ann", hd="d1", mode="account").outcome == "takeover"
    n2.sign_out("ann", "d1", ts=1000.0)
    assert n1.claim("ann", hd="x", mode="account", ts=5000.0) == Claimed("auth")
    assert n1.claim("ann", hd="d1", mode="account", ts=5000.0).outcome == "resume"


def test_a_proven_claim_wins(n1: Node, n2: Node) -> None:
    n1.claim("ann", nd="d1")
    assert n2.claim("ann", nd="d2", mode="proven") == Claimed("takeover", RED, "d2", "n1")
    n2.sign_out("ann", "d2", ts=1000.0)
    assert n1.claim("ann", nd="d3", mode="proven", ts=1001.0).outcome == "fresh"


def test_a_holder_on_a_dead_node_is_signed_out(r: redis.Redis, shas: dict[str, str],
                                               n2: Node) -> None:
    dead = Node(r, "n9", shas)
    dead.beat()
    dead.claim("ann", nd="d1")
    dead.join("ann", "lobby")
    r.delete("cc:node:n9")  # its heartbeat ran out
    assert n2.claim("ann", nd="d2") == Claimed("reserved")  # parked for its session
    assert events(r)[-1] == RemoteOut("n9", "ann", "disconnected")
    assert not r.exists("cc:urooms:ann")
    assert n2.claim("ann", hd="d1", nd="d2") == Claimed("resume", RED, "d1", "")


def test_a_dead_holder_with_its_session_is_taken_over_at_once(r: redis.Redis,
                                                             shas: dict[str, str],
                                                             n2: Node) -> None:
    dead = Node(r, "n9", shas)
    dead.beat()
    dead.claim("ann", nd="d1")
    r.delete("cc:node:n9")
    assert n2.claim("ann", hd="d1", nd="d2").outcome == "resume"
    assert codec.decode_snapshot(n2.call("snapshot"))[1][0].node == "n2"


# -- rename -------------------------------------------------------------------------------


def test_rename_rules(n1: Node, n2: Node, r: redis.Redis) -> None:
    n1.claim("ann", nd="d1")
    n1.join("ann", "lobby")
    n2.claim("cat", nd="d2")
    assert n1.rename("ann", "Cat", digest="d1") == "taken"
    assert n2.rename("ann", "Ada", digest="d1") == "gone"  # not n2's user
    assert n1.rename("ann", "Ada", digest="d1") == "ok"
    assert events(r)[-1] == RemoteNick("n1", "ann", "Ada", RED)
    assert r.smembers("cc:urooms:ada") == {b"lobby"} and not r.exists("cc:urooms:ann")
    assert n1.rename("ada", "ADA", digest="d1") == "ok"  # a change of case
    n2.sign_out("cat", "d2", ts=1000.0)
    assert n1.rename("ada", "Cat", digest="d1", ts=1001.0) == "reserved"
    assert n1.rename("ada", "Cat", digest="d1", owner=True, ts=1001.0) == "ok"
    users = {u.key: u for u in codec.decode_snapshot(n1.call("snapshot"))[1]}
    assert sorted(users) == ["cat"] and users["cat"].name == "Cat"


# -- membership is fenced by the owner node ----------------------------------------------


def test_only_the_owner_node_changes_a_user(n1: Node, n2: Node, r: redis.Redis) -> None:
    n1.claim("ann", nd="d1")
    assert n1.join("ann", "lobby") == 1
    n2.claim("ann", hd="d1", nd="d1")  # taken over by n2
    before = r.xlen("cc:events")
    assert n1.join("ann", "den") == 0
    assert n1.part("ann", "lobby") == 0
    assert n1.sign_out("ann") == 0
    assert r.xlen("cc:events") == before
    assert n2.sign_out("ann", "other digest") == 0
    assert n2.join("ann", "den") == 1
    assert n2.part("ann", "lobby") == 1
    assert r.smembers("cc:urooms:ann") == {b"den"}
    assert events(r)[-2:] == [RemoteJoin("n2", "ann", "den", 5.0),
                              RemotePart("n2", "ann", "lobby", "part")]
    assert n2.sign_out("ann", "d1") == 1
    assert events(r)[-1] == RemoteOut("n2", "ann", "quit")
    assert not r.hexists("cc:users", "ann") and not r.exists("cc:urooms:ann")
    assert 0 < r.pttl("cc:session:ann") <= n2.rules.ttl_ms  # parked for the session TTL


# -- whispers -------------------------------------------------------------------------------


def test_whisper_window_and_events(n1: Node, n2: Node, r: redis.Redis) -> None:
    n1.claim("bob", nd="db")
    n2.claim("Cat", nd="dc")
    before = r.xlen("cc:events")
    assert n1.whisper("bob", "w0") == ("new", "n1", None)
    assert r.xlen("cc:events") == before  # same node: no event
    assert n1.whisper("cat", "w1", ts=7.0) == ("new", "n2", None)
    event = events(r)[-1]
    assert isinstance(event, RemoteWhisper) and (event.node, event.to_key, event.to_node) == \
        ("n1", "cat", "n2")
    assert event.whisper == Whisper("ann", "Cat", RED, "psst", 7.0, "w1")  # its own spelling
    outcome, _node, first = n1.whisper("cat", "w1", ts=9.0)
    assert outcome == "again" and first is not None and (first.to, first.ts) == ("Cat", 7.0)
    assert r.xlen("cc:events") == before + 1  # not delivered twice
    assert n1.whisper("dan", "w2") == ("gone", "", None)
    r.delete("cc:node:n2")
    assert n1.whisper("cat", "w3") == ("gone", "", None)  # its node is dead


def test_the_whisper_window_forgets_old_ids(r: redis.Redis, shas: dict[str, str]) -> None:
    node = Node(r, "n1", shas, whisper_window=2)
    node.beat()
    node.claim("cat", nd="dc")
    for i in range(6):
        node.whisper("cat", f"w{i}")
    assert node.whisper("cat", "w5")[0] == "again"
    assert node.whisper("cat", "w0")[0] == "new"
    assert r.hlen("cc:wids:s1") <= 4


# -- pages ------------------------------------------------------------------------------------


def test_page_of_a_room_never_written(n1: Node) -> None:
    assert n1.page(Page.LATEST, 0, 10, FOLLOW) == (0, [], False)


def test_page_every_kind(n1: Node) -> None:
    for i in range(1, 11):
        n1.publish(f"#{i}")
    assert n1.page(Page.LATEST, 0, 3, FOLLOW) == (10, [8, 9, 10], False)
    assert n1.page(Page.LATEST, 0, 3, 6) == (10, [4, 5, 6], False)
    assert n1.page(Page.LATEST, 0, 3, 99) == (10, [8, 9, 10], False)
    assert n1.page(Page.RESUME, 4, 3, 9) == (10, [7, 8, 9], True)
    assert n1.page(Page.RESUME, 6, 3, 9) == (10, [7, 8, 9], False)
    assert n1.page(Page.RESUME, 9, 3, 9) == (10, [], False)
    assert n1.page(Page.RESUME, 7, 5, FOLLOW) == (10, [8, 9, 10], False)
    assert n1.page(Page.AFTER, 2, 3, 9) == (10, [3, 4, 5], False)
    assert n1.page(Page.AFTER, 7, 5, 9) == (10, [8, 9], False)
    assert n1.page(Page.AFTER, 9, 5, 9) == (10, [], False)
    assert n1.page(Page.BEFORE, 6, 3, 9) == (10, [3, 4, 5], False)
    assert n1.page(Page.BEFORE, 6, 3, 4) == (10, [2, 3, 4], False)
    assert n1.page(Page.BEFORE, 1, 3, 9) == (10, [], False)


# -- events, reaping, heartbeats ------------------------------------------------------------


def test_events_script_reads_after_the_last_id_and_detects_a_gap(n1: Node,
                                                                 r: redis.Redis) -> None:
    assert n1.call("events", "0-0", 100) == [0, []]
    for name in ("ann", "bob", "cat"):
        n1.claim(name, nd=f"d-{name}")
    gap, entries = n1.call("events", "0-0", 100)
    assert int(gap) == 0 and [codec.decode_event(e).key for e in entries] == \
        ["ann", "bob", "cat"]
    gap, rest = n1.call("events", entries[0][0], 1)
    assert int(gap) == 0 and [e[0] for e in rest] == [entries[1][0]]
    r.xtrim("cc:events", maxlen=1, approximate=False)  # ann's and bob's are gone
    gap, rest = n1.call("events", entries[0][0], 100)
    assert int(gap) == 1
    gap, rest = n1.call("events", entries[2][0], 100)
    assert int(gap) == 0 and rest == []


def test_events_script_reports_a_gap_when_the_stream_is_gone(n1: Node, r: redis.Redis) -> None:
    n1.claim("ann", nd="d1")
    _gap, [first] = n1.call("events", "0-0", 100)
    r.delete("cc:events")  # e.g. lost with the tail of an append-only file
    assert n1.call("events", first[0], 100) == [1, []]
    assert n1.call("events", "0-0", 100) == [0, []]


def test_reap_signs_out_only_dead_nodes_users(r: redis.Redis, shas: dict[str, str],
                                              n1: Node, n2: Node) -> None:
    dead = Node(r, "n9", shas)
    dead.beat()
    n1.claim("ann", nd="d1")
    n2.claim("bob", nd="d2")
    dead.claim("cat", nd="d3")
    dead.claim("dan", nd="d4")
    assert int(n1.call("reap", "n1", 2000.0, TTL_MS, "0")) == 0  # everyone alive
    r.delete("cc:node:n9")
    assert int(n1.call("reap", "n1", 2000.0, TTL_MS, "0")) == 2
    assert sorted(r.hkeys("cc:users")) == [b"ann", b"bob"]
    assert sorted(e.key for e in events(r) if isinstance(e, RemoteOut)) == ["cat", "dan"]
    assert r.smembers("cc:nodes") == {b"n1", b"n2"}
    assert dead.beat() == 0  # it was given up for dead: it must resync
    assert dead.beat() == 1


def test_reap_at_start_signs_out_the_nodes_own_users(n1: Node, n2: Node,
                                                     r: redis.Redis) -> None:
    n1.claim("ann", nd="d1")
    n2.claim("bob", nd="d2")
    assert int(n1.call("reap", "n1", 2000.0, TTL_MS, "1")) == 1
    assert r.hkeys("cc:users") == [b"bob"]


def test_beat_and_leave(n1: Node, r: redis.Redis) -> None:
    assert n1.beat() == 1
    assert 0 < r.pttl("cc:node:n1") <= TTL_MS
    n1.call("leave", "n1")
    assert not r.exists("cc:node:n1") and not r.sismember("cc:nodes", "n1")
