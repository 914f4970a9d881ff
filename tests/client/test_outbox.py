"""Specification of the client's outgoing requests: paced, matched to errors, pending till acked."""

from __future__ import annotations

from chattycat.client.outbox import (
    MAX_TRACKED_REFS,
    RATE_LIMITED_RETRY_S,
    SEND_BURST,
    Outbox,
    acknowledged_ids,
)
from chattycat.protocol.messages import (
    History,
    Join,
    Message,
    Nick,
    Part,
    Request,
    Say,
    Whisper,
    WhisperTo,
    Who,
)

NOW = 1_000.0


def drain(outbox: Outbox, now: float = NOW) -> list[Request]:
    sent: list[Request] = []
    while isinstance(request := outbox.next_request(now), Request):
        sent.append(request)
    return sent


def say(n: int) -> Say:
    return Say("lobby", f"line {n}", f"x-{n}", ref=f"x-{n}")


def test_requests_leave_in_the_order_they_were_put() -> None:
    outbox = Outbox(NOW)
    outbox.put(Who("a", ref="r1"))
    outbox.put(Who("b", ref="r2"))
    assert drain(outbox) == [Who("a", ref="r1"), Who("b", ref="r2")]
    assert outbox.next_request(NOW) is None


def test_a_burst_is_paced_then_says_how_long_to_wait() -> None:
    outbox = Outbox(NOW)
    for n in range(SEND_BURST + 2):
        outbox.put(Who("lobby", ref=f"r{n}"))
    assert len(drain(outbox)) == SEND_BURST
    assert outbox.queued_count() == 2
    wait_s = outbox.next_request(NOW)
    assert isinstance(wait_s, float) and wait_s > 0
    assert outbox.next_request(NOW + wait_s) == Who("lobby", ref=f"r{SEND_BURST}")


def test_a_say_is_pending_from_put_until_acknowledged() -> None:
    outbox = Outbox(NOW)
    outbox.put(say(1))
    outbox.put(Who("lobby", ref="r2"))  # not a message: never pending
    assert outbox.pending_count() == 1 and outbox.is_pending("x-1")
    drain(outbox)
    assert outbox.pending_count() == 1  # written is not acknowledged
    assert outbox.acknowledge("x-1")
    assert not outbox.acknowledge("x-1")  # a duplicate acknowledgement is no news
    assert outbox.pending_count() == 0


def test_a_say_acknowledged_before_it_left_is_not_sent() -> None:
    outbox = Outbox(NOW)
    outbox.put(say(1))
    outbox.put(say(2))
    outbox.acknowledge("x-1")  # e.g. inside a resume history
    assert drain(outbox) == [say(2)]


def test_a_refused_say_is_no_longer_pending() -> None:
    outbox = Outbox(NOW)
    outbox.put(say(1))
    drain(outbox)
    outbox.refused("x-1")
    assert outbox.pending_count() == 0


def test_a_rate_limited_request_goes_again_in_its_place_after_a_pause() -> None:
    outbox = Outbox(NOW)
    outbox.put(Who("a", ref="r1"))
    outbox.put(Who("b", ref="r2"))
    drain(outbox)
    entry = outbox.take_sent("r1")
    assert entry is not None and entry[1] == Who("a", ref="r1")
    assert outbox.take_sent("r1") is None
    outbox.put(Who("c", ref="r3"))
    assert outbox.retry_later(entry, NOW) == RATE_LIMITED_RETRY_S
    assert outbox.next_request(NOW) == RATE_LIMITED_RETRY_S
    assert drain(outbox, NOW + 2 * RATE_LIMITED_RETRY_S) == [Who("a", ref="r1"), Who("c", ref="r3")]


def test_only_the_newest_sent_refs_are_remembered() -> None:
    outbox = Outbox(NOW)
    for n in range(MAX_TRACKED_REFS + 1):
        outbox.put(Nick("bob", ref=f"r{n}"))
        drain(outbox, NOW + n)
    assert outbox.take_sent("r0") is None
    assert outbox.take_sent(f"r{MAX_TRACKED_REFS}") is not None


def test_after_a_loss_pending_says_go_first_and_joins_parts_are_dropped() -> None:
    outbox = Outbox(NOW)
    outbox.put(say(1))
    drain(outbox)  # written, not acknowledged: lost with the connection
    outbox.put(Join("dev", ref="r5"))
    outbox.put(Part("games", ref="r6"))
    outbox.put(Who("lobby", ref="r7"))
    outbox.put(say(8))
    outbox.requeue_after_loss()
    assert drain(outbox) == [say(1), Who("lobby", ref="r7"), say(8)]
    assert outbox.pending_count() == 2


def test_what_acknowledges_a_say_or_a_whisper() -> None:
    mine = Message("lobby", 3, "alice", "#112233", "hi", 1.0, "x-1")
    assert acknowledged_ids(mine, "alice") == ["x-1"]
    assert acknowledged_ids(History("lobby", (mine,)), "alice") == ["x-1"]
    echo = Whisper("Alice", "bob", "#112233", "psst", 1.0, "x-2")
    assert acknowledged_ids(echo, "alice") == ["x-2"]
    incoming = Whisper("bob", "alice", "#112233", "psst", 1.0, "y-9")
    assert acknowledged_ids(incoming, "alice") == []
    assert acknowledged_ids(WhisperTo("bob", "psst", "x-3"), "alice") == []
