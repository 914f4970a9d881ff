"""Where the client connects next and when: round robin, backoff only per failed round."""

from __future__ import annotations

import pytest

from chattycat.client.attempts import Address, Attempts, parse_address
from chattycat.client.liveness import RETRY_CAP_S

A, B, C = Address("a", 1), Address("b", 2), Address("c", 3)


@pytest.mark.parametrize(("text", "expected"), [
    ("chat.example.org:9000", Address("chat.example.org", 9000)),
    ("10.0.0.1:1", Address("10.0.0.1", 1)),
    ("[::1]:9999", Address("::1", 9999)),
    ("[fe80::1%eth0]:80", Address("fe80::1%eth0", 80)),
    ("chat.example.org", Address("chat.example.org", 9999)),
    ("[::1]", Address("::1", 9999)),
])
def test_parse_address_accepts_host_port_and_bracketed_ipv6(text: str,
                                                             expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", ":9999", "host:", "host:0", "host:65536", "host:x",
                                  "::1", "::1:9999", "[::1", "[::1]9999", "[]:1"])
def test_parse_address_refuses_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="bad server address"):
        parse_address(text)


def test_an_address_prints_as_it_is_written() -> None:
    assert str(Address("::1", 9999)) == "[::1]:9999"
    assert str(Address("chat", 1)) == "chat:1"


def test_the_first_address_is_tried_first() -> None:
    assert Attempts([A, B]).current == A


def test_no_addresses_is_an_error() -> None:
    with pytest.raises(ValueError):
        Attempts([])


def test_a_failure_moves_to_the_next_address_at_once() -> None:
    attempts = Attempts([A, B, C])
    step = attempts.failed("refused", jitter=1.0)
    assert (step.address, step.delay_s, step.round_failed) == (B, 0.0, False)
    step = attempts.failed("refused", jitter=1.0)
    assert (step.address, step.delay_s, step.round_failed) == (C, 0.0, False)


def test_a_whole_failed_round_backs_off_and_starts_again_at_the_first() -> None:
    attempts = Attempts([A, B])
    attempts.failed("refused", jitter=1.0)
    step = attempts.failed("timed out", jitter=1.0)
    assert (step.address, step.delay_s, step.round_failed) == (A, 1.0, True)
    assert attempts.describe_failures() == "a:1: refused; b:2: timed out"


def test_the_backoff_doubles_per_failed_round_up_to_the_cap_with_jitter() -> None:
    attempts = Attempts([A, B])
    round_delays = []
    for _ in range(8):
        attempts.failed("refused", jitter=0.5)
        round_delays.append(attempts.failed("refused", jitter=0.5).delay_s)
    assert round_delays == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, RETRY_CAP_S / 2, RETRY_CAP_S / 2]


def test_one_address_pauses_before_every_retry_as_a_single_server_client_does() -> None:
    attempts = Attempts([A])
    delays = [attempts.failed("refused", jitter=1.0) for _ in range(3)]
    assert [(d.address, d.delay_s, d.round_failed) for d in delays] == [
        (A, 1.0, True), (A, 2.0, True), (A, 4.0, True)]


def test_a_lost_connection_after_a_welcome_goes_to_the_next_node_without_a_pause() -> None:
    attempts = Attempts([A, B])
    attempts.failed("refused", jitter=1.0)
    attempts.failed("refused", jitter=1.0)  # a round failed: the backoff grew
    attempts.failed("refused", jitter=1.0)  # now on B
    attempts.welcomed()  # B answered
    step = attempts.failed("connection lost", jitter=1.0)
    assert (step.address, step.delay_s) == (A, 0.0)
    step = attempts.failed("refused", jitter=1.0)
    # The backoff starts again from its first step: the welcome reset it.
    assert (step.address, step.delay_s, step.round_failed) == (B, 1.0, True)


def test_attempts_are_counted_since_the_last_welcome() -> None:
    attempts = Attempts([A, B])
    attempts.failed("refused", jitter=1.0)
    attempts.failed("refused", jitter=1.0)
    assert attempts.attempt == 2
    attempts.welcomed()
    assert attempts.attempt == 0
    assert attempts.describe_failures() == ""


def test_the_failures_named_are_those_of_the_latest_round() -> None:
    attempts = Attempts([A, B])
    attempts.failed("old", jitter=1.0)
    attempts.failed("old", jitter=1.0)
    attempts.failed("new", jitter=1.0)
    assert attempts.describe_failures() == "a:1: new"
