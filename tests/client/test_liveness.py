"""Specification of the client's retry backoff and heartbeat watchdog."""

from __future__ import annotations

from chattycat.client.liveness import RETRY_CAP_S, Verdict, Watchdog, retry_delay_s


def test_retry_delays_double_up_to_the_cap() -> None:
    assert [retry_delay_s(n, 1.0) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert retry_delay_s(20, 1.0) == RETRY_CAP_S


def test_jitter_scales_the_delay() -> None:
    assert retry_delay_s(2, 0.5) == 2.0


def test_a_silent_server_gets_one_ping_after_a_heartbeat_and_is_lost_after_two() -> None:
    watchdog = Watchdog()
    watchdog.heartbeat_s = 10.0
    watchdog.heard(100.0)
    assert watchdog.check(105.0) is Verdict.ALIVE
    assert watchdog.check(110.0) is Verdict.PING
    assert watchdog.check(115.0) is Verdict.ALIVE  # the ping is out already
    assert watchdog.check(120.0) is Verdict.LOST
    assert watchdog.silent_s(120.0) == 20.0


def test_hearing_from_the_server_rearms_the_ping() -> None:
    watchdog = Watchdog()
    watchdog.heartbeat_s = 10.0
    watchdog.heard(100.0)
    assert watchdog.check(110.0) is Verdict.PING
    watchdog.heard(111.0)
    assert watchdog.check(121.0) is Verdict.PING


def test_checks_run_often_enough_but_not_too_often() -> None:
    watchdog = Watchdog()
    watchdog.heartbeat_s = 2.0
    assert watchdog.check_every_s == 0.5
    watchdog.heartbeat_s = 60.0
    assert watchdog.check_every_s == 1.0
    watchdog.heartbeat_s = 0.01
    assert watchdog.check_every_s == 0.05


def test_retry_delay_stays_at_the_cap_after_days_offline() -> None:
    assert retry_delay_s(10_000, 1.0) == RETRY_CAP_S
