"""Specification of the flood-control token bucket (PROTOCOL section 8)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chattycat.protocol.flood import TokenBucket

START = 1_000.0


def allowed(bucket: TokenBucket, count: int, now: float) -> int:
    return sum(bucket.allow(now) for _ in range(count))


def test_a_fresh_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate_per_s=5.0, burst=10, now=START)
    assert allowed(bucket, 10, START) == 10
    assert not bucket.allow(START)


def test_tokens_come_back_at_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=4, now=START)
    allowed(bucket, 4, START)
    assert not bucket.allow(START + 0.4)
    assert bucket.allow(START + 0.5)
    assert not bucket.allow(START + 0.5)
    assert allowed(bucket, 10, START + 1.5) == 2


def test_refill_never_exceeds_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=5.0, burst=3, now=START)
    assert allowed(bucket, 10, START + 3600.0) == 3


def test_rate_0_allows_everything() -> None:
    bucket = TokenBucket(rate_per_s=0.0, burst=1, now=START)
    assert allowed(bucket, 10_000, START) == 10_000


def test_a_burst_below_1_still_allows_one_request() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=0, now=START)
    assert allowed(bucket, 5, START) == 1


def test_a_clock_going_backwards_refills_nothing_and_breaks_nothing() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=2, now=START)
    allowed(bucket, 2, START)
    assert not bucket.allow(START - 100.0)
    # time runs on from the stepped-back clock: one second later, one token
    assert bucket.allow(START - 99.0)
    assert not bucket.allow(START - 99.0)


@given(
    rate=st.floats(0.1, 100.0),
    burst=st.integers(1, 50),
    steps=st.lists(st.floats(-10.0, 10.0), max_size=60),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, START)
    now, granted = START, 0
    for step in steps:
        now += step
        granted += bucket.allow(now)
    # backward steps refill nothing, so forward time alone bounds the grants
    forward = sum(step for step in steps if step > 0)
    assert granted <= burst + rate * forward + 1e-9
