"""Specification of the client's paced outgoing queue."""

from __future__ import annotations

from chattycat.client.outbox import MAX_TRACKED_REFS, RATE_LIMITED_RETRY_S, SEND_BURST, Outbox
from chattycat.protocol.messages import Join, Nick, Part, Request, Say, Who

NOW = 1_000.0


def drain(outbox: Outbox, now: float = NOW) -> list[Request]:
    sent: list[Request] = []
    while isinstance(request := outbox.next_request(now), Request):
        sent.append(request)
    return sent


def test_requests_leave_in_creation_order() -> None:
    outbox = Outbox(NOW, lambda _id: True)
    outbox.put(3, Who("b", ref="r3"))
    outbox.put(1, Who("a", ref="r1"))
    assert drain(outbox) == [Who("a", ref="r1"), Who("b", ref="r3")]
    assert outbox.next_request(NOW) is None


def test_a_burst_is_paced_then_says_how_long_to_wait() -> None:
    outbox = Outbox(NOW, lambda _id: True)
    for n in range(SEND_BURST + 2):
        outbox.put(n, Who("lobby", ref=f"r{n}"))
    assert len(drain(outbox)) == SEND_BURST
    wait_s = outbox.next_request(NOW)
    assert isinstance(wait_s, float) and wait_s > 0
    assert outbox.next_request(NOW + wait_s) == Who("lobby", ref=f"r{SEND_BURST}")


def test_an_acknowledged_say_is_not_sent() -> None:
    outbox = Outbox(NOW, lambda message_id: message_id != "x-1")
    outbox.put(1, Say("lobby", "old", "x-1", ref="x-1"))
    outbox.put(2, Say("lobby", "new", "x-2", ref="x-2"))
    assert drain(outbox) == [Say("lobby", "new", "x-2", ref="x-2")]


def test_a_rate_limited_request_goes_again_in_its_place_after_a_pause() -> None:
    outbox = Outbox(NOW, lambda _id: True)
    outbox.put(1, Who("a", ref="r1"))
    outbox.put(2, Who("b", ref="r2"))
    drain(outbox)
    entry = outbox.take_sent("r1")
    assert entry == (1, Who("a", ref="r1"))
    assert outbox.take_sent("r1") is None
    outbox.put(3, Who("c", ref="r3"))
    assert outbox.retry_later(entry, NOW) == RATE_LIMITED_RETRY_S
    assert outbox.next_request(NOW) == RATE_LIMITED_RETRY_S
    assert drain(outbox, NOW + 2 * RATE_LIMITED_RETRY_S) == [Who("a", ref="r1"), Who("c", ref="r3")]


def test_only_the_newest_sent_refs_are_remembered() -> None:
    outbox = Outbox(NOW, lambda _id: True)
    outbox.restart(NOW)
    for n in range(MAX_TRACKED_REFS + 1):
        outbox.put(n, Nick("bob", ref=f"r{n}"))
        drain(outbox, NOW + n)
    assert outbox.take_sent("r0") is None
    assert outbox.take_sent(f"r{MAX_TRACKED_REFS}") is not None


def test_after_a_loss_pending_says_go_first_and_joins_parts_are_dropped() -> None:
    outbox = Outbox(NOW, lambda _id: True)
    outbox.put(5, Join("dev", ref="r5"))
    outbox.put(6, Part("games", ref="r6"))
    outbox.put(7, Who("lobby", ref="r7"))
    say = Say("lobby", "hi", "x-2", ref="x-2")
    outbox.requeue([(2, say)])
    assert drain(outbox) == [say, Who("lobby", ref="r7")]
