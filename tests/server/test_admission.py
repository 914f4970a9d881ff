"""Per-address connection limits and throttled log lines, without sockets."""

from __future__ import annotations

import pytest

from chattycat.server.admission import AddressLimits, LogThrottle, address_key


@pytest.mark.parametrize(("peer", "key"), [
    (("192.0.2.7", 5555), "192.0.2.7"),
    (("2001:db8:1:2:aaaa::1", 5555, 0, 0), "2001:db8:1:2::/64"),
    (("2001:db8:1:2:ffff:1:2:3", 1, 0, 0), "2001:db8:1:2::/64"),
    (("::ffff:192.0.2.7", 5555, 0, 0), "192.0.2.7"),
    (("fe80::1%eth0", 1, 0, 2), "fe80::/64"),
    (None, "?"),
])
def test_addresses_are_counted_ipv4_as_is_and_ipv6_per_64(peer: object, key: str) -> None:
    assert address_key(peer) == key


def test_connections_per_address_are_capped() -> None:
    limits = AddressLimits(max_per_address=3, max_unwelcomed_per_address=None, opens_per_s=0)
    for conn in range(3):
        assert limits.opened(conn, "a", 0.0).admitted
        limits.welcomed(conn)
    refused = limits.opened(3, "a", 0.0)
    assert not refused.admitted and "too many connections" in refused.reason
    assert limits.opened(4, "b", 0.0).admitted  # another address is not affected
    limits.closed(0)
    assert limits.opened(5, "a", 0.0).admitted


def test_connections_without_hello_have_a_much_smaller_cap() -> None:
    limits = AddressLimits(max_per_address=100, max_unwelcomed_per_address=2, opens_per_s=0)
    assert limits.opened(1, "a", 0.0).admitted
    assert limits.opened(2, "a", 0.0).admitted
    assert not limits.opened(3, "a", 0.0).admitted
    limits.welcomed(1)
    assert limits.opened(4, "a", 0.0).admitted
    assert limits.counts("a") == (3, 2)
    for conn in (1, 2, 4):
        limits.closed(conn)
    assert limits.counts("a") == (0, 0)


def test_opening_rate_per_address_survives_closing_everything() -> None:
    limits = AddressLimits(None, None, opens_per_s=1.0, opens_burst=3)
    for conn in range(3):
        assert limits.opened(conn, "a", 0.0).admitted
        limits.closed(conn)
    assert not limits.opened(9, "a", 0.0).admitted
    assert limits.opened(10, "a", 1.0).admitted


def test_log_throttle_logs_once_per_interval_and_counts_the_rest() -> None:
    throttle = LogThrottle(10.0)
    assert throttle.should_log(0.0) == (True, 0)
    assert [throttle.should_log(t)[0] for t in (1.0, 2.0, 9.0)] == [False] * 3
    assert throttle.should_log(10.5) == (True, 3)


def test_addresses_without_connections_are_remembered_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("chattycat.server.admission.MAX_IDLE_ADDRESSES", 5)
    limits = AddressLimits(None, None, opens_per_s=1.0, opens_burst=1)
    for n in range(20):
        assert limits.opened(n, f"10.0.0.{n}", 0.0).admitted
        limits.closed(n)
    assert len(limits._idle) == 5 and not limits._addresses
    assert not limits.opened(99, "10.0.0.19", 0.0).admitted  # still remembered
    assert limits.opened(98, "10.0.0.0", 0.0).admitted  # forgotten: a fresh bucket
