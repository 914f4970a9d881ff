"""The event loop: ready queue, timers, before-poll phase, wakeups, signals, errors."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chattycat.net.loop import EventLoop


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


class CountingSelector(selectors.DefaultSelector):
    """A selector that records the timeout of every select() call."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def select(self, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        return super().select(timeout)


def test_call_soon_runs_callbacks_in_fifo_order(loop: EventLoop) -> None:
    seen: list[int] = []
    for i in range(5):
        loop.call_soon(seen.append, i)
    assert loop.run_until(lambda: len(seen) == 5, timeout_s=2)
    assert seen == [0, 1, 2, 3, 4]


def test_timers_fire_in_time_order_whatever_the_scheduling_order(loop: EventLoop) -> None:
    seen: list[str] = []
    now = loop.time()
    loop.call_at(now + 0.03, seen.append, "c")
    loop.call_at(now + 0.01, seen.append, "a")
    loop.call_later(0.02, seen.append, "b")
    assert loop.run_until(lambda: len(seen) == 3, timeout_s=2)
    assert seen == ["a", "b", "c"]


def test_timer_does_not_fire_early(loop: EventLoop) -> None:
    fired_at: list[float] = []
    handle = loop.call_later(0.05, lambda: fired_at.append(loop.time()))
    assert loop.run_until(lambda: bool(fired_at), timeout_s=2)
    assert fired_at[0] >= handle.when - 0.001


def test_cancelled_timer_does_not_fire(loop: EventLoop) -> None:
    seen: list[str] = []
    handle = loop.call_later(0.01, seen.append, "cancelled")
    loop.call_later(0.02, seen.append, "kept")
    handle.cancel()
    assert handle.cancelled()
    assert loop.run_until(lambda: bool(seen), timeout_s=2)
    assert seen == ["kept"]


def test_cancelled_call_soon_does_not_run(loop: EventLoop) -> None:
    seen: list[int] = []
    loop.call_soon(seen.append, 1).cancel()
    loop.call_soon(seen.append, 2)
    assert loop.run_until(lambda: bool(seen), timeout_s=2)
    assert seen == [2]


def test_cancelled_timers_do_not_pile_up_in_the_heap(loop: EventLoop) -> None:
    handles = [loop.call_later(1000 + i, lambda: None) for i in range(1000)]
    for handle in handles[:900]:
        handle.cancel()
    assert len(loop._timers) == 1000
    ran: list[bool] = []
    loop.call_soon(ran.append, True)
    assert loop.run_until(lambda: bool(ran))  # one pass
    assert len(loop._timers) == 100
    assert all(not timer.cancelled() for timer in loop._timers)


def test_before_poll_runs_after_ready_callbacks_and_drains_nested_additions(
    loop: EventLoop,
) -> None:
    seen: list[str] = []

    def before_poll() -> None:
        seen.append("before-poll")
        loop.call_before_poll(seen.append, "nested before-poll")

    loop.call_before_poll(before_poll)
    loop.call_soon(seen.append, "ready 1")
    loop.call_soon(seen.append, "ready 2")
    loop.run_until(lambda: False, timeout_s=0)  # exactly one pass
    assert seen == ["ready 1", "ready 2", "before-poll", "nested before-poll"]


def test_callbacks_scheduled_by_callbacks_wait_for_the_next_pass(loop: EventLoop) -> None:
    seen: list[str] = []
    loop.call_soon(lambda: loop.call_soon(seen.append, "later"))
    loop.run_until(lambda: False, timeout_s=0)
    assert seen == []
    loop.run_until(lambda: False, timeout_s=0)
    assert seen == ["later"]


def test_pending_callbacks_keep_select_from_blocking() -> None:
    selector = CountingSelector()
    loop = EventLoop(selector)
    try:
        ran: list[str] = []
        loop.call_later(60, ran.append, "timer")
        loop.call_before_poll(ran.append, "before-poll")
        assert loop.run_until(lambda: bool(ran))
        loop.call_soon(ran.append, "ready")
        assert loop.run_until(lambda: len(ran) == 2)
        assert selector.timeouts == [0, 0]
        assert ran == ["before-poll", "ready"]
    finally:
        loop.close()


def test_call_soon_threadsafe_wakes_a_loop_blocked_without_timers(loop: EventLoop) -> None:
    seen: list[str] = []
    started = threading.Event()

    def other_thread() -> None:
        started.wait()
        time.sleep(0.05)  # give the loop time to block in select()
        loop.call_soon_threadsafe(seen.append, "from thread")

    loop.call_soon(started.set)
    thread = threading.Thread(target=other_thread)
    thread.start()
    begin = time.monotonic()
    loop.run_until(lambda: bool(seen))  # no timeout: only the wakeup can end this
    elapsed = time.monotonic() - begin
    thread.join()
    assert seen == ["from thread"]
    assert elapsed < 2


def test_call_soon_threadsafe_survives_a_full_wakeup_buffer(loop: EventLoop) -> None:
    seen: list[int] = []
    for i in range(200_000):  # far more bytes than the socketpair buffer holds
        loop.call_soon_threadsafe(seen.append, i)
    assert loop.run_until(lambda: len(seen) == 200_000, timeout_s=10)


def test_exception_in_callback_is_logged_and_loop_continues(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    loop.call_soon(broken)
    loop.call_later(0.01, broken)
    loop.call_before_poll(broken)
    loop.call_soon(seen.append, "after")
    loop.call_later(0.02, seen.append, "timer after")
    with caplog.at_level(logging.ERROR, logger="chattycat.net.loop"):
        assert loop.run_until(lambda: len(seen) == 2, timeout_s=2)
    records = [r for r in caplog.records if r.name == "chattycat.net.loop"]
    assert len(records) == 3
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in records)


def test_exception_in_reader_callback_is_logged_and_loop_continues(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    left, right = socket.socketpair()
    calls: list[bytes] = []

    def reader() -> None:
        calls.append(left.recv(10))
        raise ValueError("bad reader")

    loop.add_reader(left, reader)
    right.send(b"x")
    with caplog.at_level(logging.ERROR, logger="chattycat.net.loop"):
        assert loop.run_until(lambda: bool(calls), timeout_s=2)
    assert "bad reader" in caplog.text
    loop.remove_reader(left)
    left.close()
    right.close()


def test_exception_handler_receives_exception_and_context(loop: EventLoop) -> None:
    caught: list[tuple[BaseException, str]] = []
    loop.set_exception_handler(lambda exc, context: caught.append((exc, context)))
    loop.call_soon(lambda: 1 / 0)
    assert loop.run_until(lambda: bool(caught), timeout_s=2)
    assert isinstance(caught[0][0], ZeroDivisionError)


def test_keyboard_interrupt_propagates_out_of_the_loop(loop: EventLoop) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()


def test_reader_and_writer_callbacks(loop: EventLoop) -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    events: list[str] = []
    loop.add_writer(left, events.append, "writable")
    assert loop.run_until(lambda: "writable" in events, timeout_s=2)
    assert loop.remove_writer(left)
    assert not loop.remove_writer(left)
    loop.add_reader(left.fileno(), lambda: events.append(left.recv(10).decode()))
    right.send(b"hi")
    assert loop.run_until(lambda: "hi" in events, timeout_s=2)
    assert loop.remove_reader(left)
    assert not loop.remove_reader(left)
    with pytest.raises(KeyError):
        loop._selector.get_key(left)
    left.close()
    right.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_signal_handler_runs_as_a_loop_callback(loop: EventLoop) -> None:
    seen: list[tuple[str, bool]] = []
    loop.add_signal_handler(
        signal.SIGUSR1, lambda tag: seen.append((tag, loop.is_running())), "usr1"
    )
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    assert loop.run_until(lambda: bool(seen), timeout_s=5)
    assert seen == [("usr1", True)]
    assert loop.remove_signal_handler(signal.SIGUSR1)
    assert not loop.remove_signal_handler(signal.SIGUSR1)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_close_restores_previous_wakeup_fd_and_signal_handler() -> None:
    def previous_handler(signum: int, frame: object) -> None:
        pass

    other_recv, other_send = socket.socketpair()
    other_send.setblocking(False)
    old_handler = signal.signal(signal.SIGUSR2, previous_handler)
    old_fd = signal.set_wakeup_fd(other_send.fileno())
    try:
        loop = EventLoop()
        loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        assert signal.getsignal(signal.SIGUSR2) is not previous_handler
        loop.close()
        assert signal.getsignal(signal.SIGUSR2) is previous_handler
        assert signal.set_wakeup_fd(-1) == other_send.fileno()
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGUSR2, old_handler)
        other_recv.close()
        other_send.close()


def test_loop_in_a_thread_rejects_signals_but_wakes_up() -> None:
    outcome: dict[str, object] = {}

    def run() -> None:
        loop = EventLoop()
        try:
            with pytest.raises(ValueError):
                loop.add_signal_handler(signal.SIGINT, lambda: None)
            outcome["loop"] = loop
            ready.set()
            outcome["result"] = loop.run_until(lambda: "woken" in outcome, timeout_s=5)
        finally:
            loop.close()

    ready = threading.Event()
    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(5)
    loop = outcome["loop"]
    assert isinstance(loop, EventLoop)
    loop.call_soon_threadsafe(outcome.__setitem__, "woken", True)
    thread.join(5)
    assert outcome["result"] is True


def test_stop_ends_run_forever_after_the_current_pass(loop: EventLoop) -> None:
    seen: list[str] = []

    def stop_now() -> None:
        loop.stop()
        seen.append("stopped")

    loop.call_later(0.01, stop_now)
    loop.call_later(0.01, seen.append, "same pass")
    loop.call_later(5, seen.append, "never")
    loop.run_forever()
    assert seen == ["stopped", "same pass"]
    assert not loop.is_running()


def test_run_until_returns_at_once_if_the_condition_already_holds(loop: EventLoop) -> None:
    begin = time.monotonic()
    assert loop.run_until(lambda: True, timeout_s=5)
    assert time.monotonic() - begin < 1


def test_run_until_times_out_with_false(loop: EventLoop) -> None:
    begin = time.monotonic()
    assert loop.run_until(lambda: False, timeout_s=0.1) is False
    assert 0.09 <= time.monotonic() - begin < 2
    assert len(loop._timers) == 0 or all(t.cancelled() for t in loop._timers)


def test_run_until_is_not_reentrant(loop: EventLoop) -> None:
    errors: list[BaseException] = []

    def nested() -> None:
        try:
            loop.run_until(lambda: False, timeout_s=0)
        except RuntimeError as exc:
            errors.append(exc)

    loop.call_soon(nested)
    assert loop.run_until(lambda: bool(errors), timeout_s=2)


def test_idle_loop_does_not_poll() -> None:
    selector = CountingSelector()
    loop = EventLoop(selector)
    try:
        fired: list[bool] = []
        loop.call_later(0.3, fired.append, True)
        cpu_before = time.process_time()
        assert loop.run_until(lambda: bool(fired), timeout_s=5)
        cpu_used = time.process_time() - cpu_before
    finally:
        loop.close()
    assert len(selector.timeouts) <= 3
    assert cpu_used < 0.1


def test_closed_loop_refuses_to_run() -> None:
    loop = EventLoop()
    loop.close()
    loop.close()  # idempotent
    assert loop.is_closed()
    with pytest.raises(RuntimeError):
        loop.run_until(lambda: True)
