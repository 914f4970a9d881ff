"""A single-threaded event loop on :mod:`selectors`.

One pass of the loop (``_run_once``) reads top to bottom:

1. drop cancelled timers from the top of the heap (and rebuild the heap when
   cancelled entries dominate it),
2. block in ``select()`` for as long as nothing is due,
3. queue the callbacks of ready file descriptors and expired timers,
4. run the callbacks that were ready when the pass started,
5. run the before-poll callbacks (write flushes, group commits) until none are left.

Signals and other threads reach the loop only through the write end of a
socketpair (``signal.set_wakeup_fd`` and ``call_soon_threadsafe``); no work is
ever done inside a Python signal handler.
"""

from __future__ import annotations

import heapq
import logging
import selectors
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

__all__ = ["EventLoop", "ExceptionHandler", "FileDescriptorLike", "Handle", "TimerHandle"]

logger = logging.getLogger("chattycat.net.loop")


class HasFileno(Protocol):
    def fileno(self) -> int: ...


FileDescriptorLike: TypeAlias = int | HasFileno
ExceptionHandler: TypeAlias = Callable[[BaseException, str], None]
Callback: TypeAlias = Callable[..., object]

# Rebuild the timer heap once more than this many entries (and more than half of
# them) are cancelled: a chat server arms a heartbeat timer per client and cancels
# it on every message, so lazy deletion alone would let the heap grow unboundedly.
MIN_CANCELLED_TIMERS_TO_REBUILD = 100
# Bytes drained from the wakeup socket per read; signal numbers and b"\0" nudges.
_WAKEUP_READ_BYTES = 4096


class Handle:
    """A scheduled callback; ``cancel()`` keeps it from running."""

    __slots__ = ("_args", "_callback", "_cancelled", "_context", "_loop")

    def __init__(
        self, loop: EventLoop, callback: Callback, args: tuple[Any, ...], context: str
    ) -> None:
        self._loop = loop
        self._callback: Callback | None = callback
        self._args = args
        self._cancelled = False
        self._context = context

    def cancel(self) -> None:
        """Keep the callback from running (a no-op if it already ran)."""
        self._cancelled = True
        # Drop references early: a cancelled timer may sit in the heap for a while.
        self._callback = None
        self._args = ()

    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._cancelled

    def _run(self) -> None:
        callback = self._callback
        if self._cancelled or callback is None:
            return
        try:
            callback(*self._args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._loop._report(exc, f"exception in {self._context} callback {callback!r}")

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else repr(self._callback)
        return f"<{type(self).__name__} {self._context} {state}>"


class TimerHandle(Handle):
    """A callback scheduled at ``when`` on the loop's monotonic clock."""

    __slots__ = ("_in_heap", "when")

    def __init__(
        self, loop: EventLoop, when: float, callback: Callback, args: tuple[Any, ...]
    ) -> None:
        super().__init__(loop, callback, args, "timer")
        self.when = when
        self._in_heap = True

    def cancel(self) -> None:
        if not self._cancelled and self._in_heap:
            self._loop._timer_cancelled()
        super().cancel()

    def __lt__(self, other: TimerHandle) -> bool:
        return self.when < other.when


class EventLoop:
    """A selectors-based event loop: ready queue, timer heap, fd callbacks, signals."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()
        self._ready: deque[Handle] = deque()
        # Handles of call_before_poll and bare callables of flush_before_poll, in order.
        self._before_poll: deque[Handle | Callable[[], None]] = deque()
        self._timers: list[TimerHandle] = []
        self._cancelled_timers = 0
        self._running = False
        self._stopping = False
        self._closed = False
        self._exception_handler: ExceptionHandler | None = None
        # select() with a timeout may wake up a hair early relative to time.monotonic().
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self._signal_handlers: dict[int, Handle] = {}
        self._previous_signal_handlers: dict[int, Any] = {}
        self._previous_wakeup_fd: int | None = None
        self._wakeup_recv, self._wakeup_send = socket.socketpair()
        self._wakeup_recv.setblocking(False)
        self._wakeup_send.setblocking(False)
        self._selector.register(self._wakeup_recv.fileno(), selectors.EVENT_READ, None)

    # -- scheduling -------------------------------------------------------------------

    def time(self) -> float:
        """The loop's clock: ``time.monotonic()``."""
        return time.monotonic()

    def call_soon(self, callback: Callback, *args: Any) -> Handle:
        """Run ``callback(*args)`` in the next pass, in FIFO order."""
        handle = Handle(self, callback, args, "ready")
        self._ready.append(handle)
        return handle

    def call_later(self, delay_s: float, callback: Callback, *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` after ``delay_s`` seconds."""
        return self.call_at(self.time() + delay_s, callback, *args)

    def call_at(self, when: float, callback: Callback, *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` once ``self.time() >= when``."""
        timer = TimerHandle(self, when, callback, args)
        heapq.heappush(self._timers, timer)
        return timer

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> Handle:
        """Like ``call_soon`` but callable from any thread; wakes a blocked ``select()``."""
        handle = Handle(self, callback, args, "threadsafe")
        self._ready.append(handle)  # deque.append is atomic
        self._wake_up()
        return handle

    def call_before_poll(self, callback: Callback, *args: Any) -> Handle:
        """Run ``callback(*args)`` at the end of this pass, before the loop blocks again.

        Everything a pass produced (say, one incoming chat message turned into N
        writes) is then handled once: transports flush here so N small writes leave
        in one ``sendmsg()``, and the server commits a transaction here before acking.
        """
        handle = Handle(self, callback, args, "before-poll")
        self._before_poll.append(handle)
        return handle

    def flush_before_poll(self, callback: Callable[[], None]) -> None:
        """:meth:`call_before_poll` for the hot path: no handle, no arguments, no cancel.

        A transport with output calls it once per pass; a pass that fans one
        message out to a thousand connections would otherwise allocate a
        thousand handles just to say so. Order is kept with the handles of
        :meth:`call_before_poll` (first scheduled, first run).
        """
        self._before_poll.append(callback)

    def _timer_cancelled(self) -> None:
        self._cancelled_timers += 1

    def _wake_up(self) -> None:
        try:
            self._wakeup_send.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the buffer is full, so the loop is going to wake up anyway
        except OSError:
            pass  # the loop was closed under us; nothing left to wake

    # -- file descriptors -------------------------------------------------------------

    def add_reader(self, fd: FileDescriptorLike, callback: Callback, *args: Any) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is readable (replaces a previous reader)."""
        self._set_fd_callback(fd, selectors.EVENT_READ, Handle(self, callback, args, "reader"))

    def add_writer(self, fd: FileDescriptorLike, callback: Callback, *args: Any) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is writable (replaces a previous writer)."""
        self._set_fd_callback(fd, selectors.EVENT_WRITE, Handle(self, callback, args, "writer"))

    def remove_reader(self, fd: FileDescriptorLike) -> bool:
        """Stop watching ``fd`` for reading; False if no reader was registered."""
        return self._set_fd_callback(fd, selectors.EVENT_READ, None)

    def remove_writer(self, fd: FileDescriptorLike) -> bool:
        """Stop watching ``fd`` for writing; False if no writer was registered."""
        return self._set_fd_callback(fd, selectors.EVENT_WRITE, None)

    def _set_fd_callback(self, fd: FileDescriptorLike, event: int, handle: Handle | None) -> bool:
        """Install (or, with None, remove) the reader/writer; True if one was replaced."""
        fileno = fd if isinstance(fd, int) else fd.fileno()
        if fileno == self._wakeup_recv.fileno():
            raise ValueError("the loop's wakeup socket cannot be watched")
        try:
            key: selectors.SelectorKey | None = self._selector.get_key(fileno)
        except KeyError:
            key = None
        reader, writer = key.data if key is not None else (None, None)
        old = reader if event == selectors.EVENT_READ else writer
        if event == selectors.EVENT_READ:
            reader = handle
        else:
            writer = handle
        mask = (selectors.EVENT_READ if reader else 0) | (selectors.EVENT_WRITE if writer else 0)
        if key is None:
            if mask:
                self._selector.register(fileno, mask, (reader, writer))
        elif mask:
            self._selector.modify(fileno, mask, (reader, writer))
        else:
            self._selector.unregister(fileno)
        if old is not None:
            old.cancel()
        return old is not None

    # -- signals ----------------------------------------------------------------------

    def add_signal_handler(self, sig: int, callback: Callback, *args: Any) -> None:
        """Run ``callback(*args)`` as a loop callback when ``sig`` arrives (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("signal handlers can only be added in the main thread")
        self._check_open()
        if not self._signal_handlers:
            # Python's C-level handler writes the signal number to this fd; the
            # loop reads it and dispatches. Nothing happens inside the handler.
            previous = signal.set_wakeup_fd(self._wakeup_send.fileno(), warn_on_full_buffer=False)
            self._previous_wakeup_fd = previous
        if sig not in self._previous_signal_handlers:
            self._previous_signal_handlers[sig] = signal.getsignal(sig)
        self._signal_handlers[sig] = Handle(self, callback, args, "signal")
        try:
            signal.signal(sig, _do_nothing_signal_handler)
            # SA_RESTART: blocking calls elsewhere are restarted instead of failing
            # with EINTR; the loop itself is woken through the wakeup fd anyway.
            signal.siginterrupt(sig, False)
        except (OSError, ValueError):
            self.remove_signal_handler(sig)
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        """Restore the handler ``sig`` had before; False if none was added."""
        handle = self._signal_handlers.pop(sig, None)
        if handle is None:
            return False
        handle.cancel()
        previous = self._previous_signal_handlers.pop(sig, signal.SIG_DFL)
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        if not self._signal_handlers and self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None
        return True

    def _read_wakeup_socket(self) -> None:
        while True:
            try:
                data = self._wakeup_recv.recv(_WAKEUP_READ_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                handle = self._signal_handlers.get(signum)  # b"\0" is a plain nudge
                if handle is not None:
                    self._ready.append(handle)

    # -- running ----------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run passes until ``stop()`` is called."""
        self.run_until(lambda: False)

    def run_until(self, condition: Callable[[], bool], timeout_s: float | None = None) -> bool:
        """Run passes until ``condition()`` holds or ``timeout_s`` elapses.

        The condition is checked before the first pass (a pass may block) and after
        every pass. Returns True if it held, False on timeout or ``stop()``.
        ``run_until(lambda: False, timeout_s=0)`` runs exactly one non-blocking pass.
        """
        self._check_open()
        if self._running:
            raise RuntimeError("the event loop is already running")
        if condition():
            return True
        deadline = None if timeout_s is None else self.time() + timeout_s
        # A timer at the deadline keeps select() from blocking past it.
        alarm = None if deadline is None else self.call_at(deadline, _do_nothing)
        self._running = True
        try:
            while True:
                self._run_once()
                if condition():
                    return True
                if self._stopping:
                    return False
                if deadline is not None and self.time() >= deadline:
                    return False
        finally:
            self._running = False
            self._stopping = False
            if alarm is not None:
                alarm.cancel()

    def stop(self) -> None:
        """Make the current ``run_*`` call return after the current pass."""
        self._stopping = True

    def is_running(self) -> bool:
        """Whether ``run_forever``/``run_until`` is executing."""
        return self._running

    def _run_once(self) -> None:
        timers = self._timers
        while timers and timers[0].cancelled():
            heapq.heappop(timers)._in_heap = False
            self._cancelled_timers -= 1
        if (
            self._cancelled_timers > MIN_CANCELLED_TIMERS_TO_REBUILD
            and self._cancelled_timers * 2 > len(timers)
        ):
            self._rebuild_timer_heap()

        if self._ready or self._before_poll:
            timeout: float | None = 0
        elif timers:
            timeout = max(0.0, timers[0].when - self.time())
        else:
            timeout = None  # idle: block until a descriptor, signal or thread wakes us

        for key, mask in self._selector.select(timeout):
            if key.data is None:
                self._read_wakeup_socket()
                continue
            reader, writer = key.data
            if mask & selectors.EVENT_READ and reader is not None:
                self._ready.append(reader)
            if mask & selectors.EVENT_WRITE and writer is not None:
                self._ready.append(writer)

        end = self.time() + self._clock_resolution
        while timers and timers[0].when <= end:
            timer = heapq.heappop(timers)
            timer._in_heap = False
            if timer.cancelled():
                self._cancelled_timers -= 1
            else:
                self._ready.append(timer)

        # Only what was ready at this point runs now; callbacks scheduled by these
        # callbacks wait for the next pass, so a self-rescheduling callback cannot
        # starve I/O.
        for _ in range(len(self._ready)):
            self._ready.popleft()._run()

        # Drain completely: a flush may schedule another flush (e.g. a commit whose
        # acks are written by transports that then flush in this same phase).
        before_poll = self._before_poll
        while before_poll:
            item = before_poll.popleft()
            if type(item) is Handle:
                item._run()
                continue
            try:
                item()  # type: ignore[operator]  # a flush_before_poll callable
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self._report(exc, f"exception in before-poll callback {item!r}")

    def _rebuild_timer_heap(self) -> None:
        live = []
        for timer in self._timers:
            if timer.cancelled():
                timer._in_heap = False
            else:
                live.append(timer)
        heapq.heapify(live)
        self._timers = live
        self._cancelled_timers = 0

    # -- errors and teardown ----------------------------------------------------------

    def set_exception_handler(self, handler: ExceptionHandler | None) -> None:
        """Route callback exceptions to ``handler(exc, context)`` instead of the log."""
        self._exception_handler = handler

    def _report(self, exc: BaseException, context: str) -> None:
        handler = self._exception_handler
        if handler is not None:
            try:
                handler(exc, context)
                return
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as handler_exc:
                logger.error("exception handler failed", exc_info=handler_exc)
        logger.error("%s", context, exc_info=exc)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the event loop is closed")

    def is_closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def close(self) -> None:
        """Release the selector and wakeup socket; restore signal handlers and wakeup fd."""
        if self._running:
            raise RuntimeError("cannot close a running event loop")
        if self._closed:
            return
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        self._closed = True
        self._ready.clear()
        self._before_poll.clear()
        self._timers.clear()
        self._cancelled_timers = 0
        self._selector.close()
        self._wakeup_recv.close()
        self._wakeup_send.close()


def _do_nothing_signal_handler(signum: int, frame: object) -> None:
    """Installed so Python does not apply the default action; the loop does the work."""


def _do_nothing() -> None:
    pass
