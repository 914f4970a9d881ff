"""``chattycat serve --workers N``: one supervisor process over N server processes.

One Python process uses one core. With ``--workers`` the supervisor starts N
ordinary ``chattycat serve`` processes (the workers) that listen on the same
port with ``SO_REUSEPORT``, so the kernel spreads new connections among them;
they share rooms, names and history through Redis, exactly as nodes on
different machines do. The supervisor itself serves nothing: it starts the
workers, passes their log lines through (each prefixed with its index),
restarts a worker that dies, and stops them all when it is told to stop.

Process management only: the caller builds each worker's command line and
holds any reserved port; nothing here opens a socket. The supervisor runs on
the project's :class:`~chattycat.net.loop.EventLoop`: child exits arrive as
SIGCHLD and stop requests as SIGTERM/SIGINT/SIGHUP through the loop's signal
wake-up, workers' stderr as readable pipes, restarts as timers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chattycat.net.loop import EventLoop, TimerHandle

__all__ = ["STOP_GRACE_S", "RestartPolicy", "Supervisor", "describe_exit"]

log = logging.getLogger("chattycat.supervisor")

# How long workers get for their graceful shutdown (the notice to their
# clients, the last store writes) before they are killed.
STOP_GRACE_S = 5.0
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")
STDERR_READ_BYTES = 65536
# Linux's prctl option: the kernel signals the child when its parent dies.
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How long a dead worker waits before it is started again."""

    first_s: float = 1.0
    cap_s: float = 30.0
    # A worker that ran this long was healthy: its next death starts the
    # backoff afresh. One that keeps dying at start-up (a bad setting, Redis
    # refusing it) is retried ever more slowly instead of in a tight loop.
    steady_s: float = 60.0

    def delay_s(self, previous_s: float | None, ran_s: float) -> float:
        """The pause after a death, given the previous pause (None: none yet) and the run time."""
        if previous_s is None or ran_s >= self.steady_s:
            return self.first_s
        return min(self.cap_s, previous_s * 2)


def describe_exit(returncode: int) -> str:
    """``exited with status 3`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"


class _Worker:
    """One worker slot: its index, and the process in it now (None while waiting)."""

    __slots__ = ("delay_s", "index", "partial", "process", "restart", "started_at")

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.delay_s: float | None = None  # the last restart pause
        self.restart: TimerHandle | None = None
        self.partial = b""  # the start of a stderr line not finished yet


class Supervisor:
    """Runs ``count`` workers, ``command(index)`` each (index from 1), until told to stop."""

    def __init__(
        self,
        loop: EventLoop,
        command: Callable[[int], list[str]],
        count: int,
        *,
        echo: Callable[[str], None],
        env: Mapping[str, str] | None = None,
        policy: RestartPolicy = RestartPolicy(),
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        if count < 1:
            raise ValueError("a supervisor needs at least one worker")
        self.loop = loop
        self.policy = policy
        self._command = command
        self._echo = echo  # where the workers' log lines go, prefixed
        self._env = dict(env) if env is not None else None
        self._stop_grace_s = stop_grace_s
        self._workers = [_Worker(index) for index in range(1, count + 1)]
        self._stopping = False
        self._kill_timer: TimerHandle | None = None
        self._die_with_parent = _parent_death_hook()

    def pids(self) -> list[int]:
        """The process ids of the workers running now, by index."""
        return [w.process.pid for w in self._workers if w.process is not None]

    def run(self) -> int:
        """Start the workers and supervise them until a stop signal; returns the exit code."""
        handled = [getattr(signal, name) for name in (*STOP_SIGNALS, "SIGCHLD")
                   if hasattr(signal, name)]
        for sig in handled:
            handler = self._reap if sig == getattr(signal, "SIGCHLD", None) else self._stop_on
            self.loop.add_signal_handler(sig, handler, sig)
        try:
            self.start()
            self.loop.run_forever()
        finally:
            for sig in handled:
                self.loop.remove_signal_handler(sig)
            self.kill_all()
        log.info("stopped")
        return 0

    def start(self) -> None:
        """Start every worker (run() does this; tests may drive the loop themselves)."""
        for worker in self._workers:
            self._spawn(worker)

    def stop(self) -> None:
        """Ask every worker to stop (SIGTERM), kill those still running after the grace."""
        if self._stopping:
            return
        self._stopping = True
        for worker in self._workers:
            if worker.restart is not None:
                worker.restart.cancel()
                worker.restart = None
            if worker.process is not None:
                # send_signal skips a process already reaped; SIGCHLD reports it.
                worker.process.send_signal(signal.SIGTERM)
        self._kill_timer = self.loop.call_later(self._stop_grace_s, self.kill_all)
        self._stop_when_all_gone()

    def kill_all(self) -> None:
        """SIGKILL every worker still running and wait for it: none may outlive us."""
        self._stopping = True  # nothing is restarted from here on
        for worker in self._workers:
            process = worker.process
            if process is not None and process.poll() is None:
                log.warning("worker %d (pid %d) did not stop in time: killing it",
                            worker.index, process.pid)
                process.kill()
            if process is not None:
                process.wait()
                self._exited(worker)

    # -- worker life cycle ------------------------------------------------------

    def _spawn(self, worker: _Worker) -> None:
        worker.restart = None
        if self._stopping:
            return
        command = self._command(worker.index)
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self._env,
                preexec_fn=self._die_with_parent,  # the supervisor has one thread
            )
        except OSError as exc:
            log.error("cannot start worker %d: %s", worker.index, exc.strerror or exc)
            self._schedule_restart(worker, ran_s=0.0)
            return
        worker.process = process
        worker.started_at = self.loop.time()
        assert process.stderr is not None
        os.set_blocking(process.stderr.fileno(), False)
        self.loop.add_reader(process.stderr.fileno(), self._read_stderr, worker)
        log.info("worker %d started (pid %d)", worker.index, process.pid)

    def _reap(self, _sig: int) -> None:
        # SIGCHLD is coalesced: one signal may stand for several exits.
        for worker in self._workers:
            if worker.process is not None and worker.process.poll() is not None:
                self._exited(worker)

    def _exited(self, worker: _Worker) -> None:
        process = worker.process
        if process is None or process.returncode is None:
            return
        worker.process = None
        self._drain_stderr(worker, process)
        if self._stopping:
            log.info("worker %d (pid %d) %s", worker.index, process.pid,
                     describe_exit(process.returncode))
            self._stop_when_all_gone()
            return
        ran_s = self.loop.time() - worker.started_at
        delay_s = self._schedule_restart(worker, ran_s)
        log.warning("worker %d (pid %d) %s after %.1f s; restarting it in %g s",
                    worker.index, process.pid, describe_exit(process.returncode), ran_s,
                    delay_s)

    def _schedule_restart(self, worker: _Worker, ran_s: float) -> float:
        worker.delay_s = self.policy.delay_s(worker.delay_s, ran_s)
        worker.restart = self.loop.call_later(worker.delay_s, self._spawn, worker)
        return worker.delay_s

    def _stop_on(self, sig: int) -> None:
        log.info("%s: stopping %d workers", signal.Signals(sig).name, len(self.pids()))
        self.stop()

    def _stop_when_all_gone(self) -> None:
        if self._stopping and not self.pids():
            if self._kill_timer is not None:
                self._kill_timer.cancel()
            self.loop.stop()

    # -- workers' log lines -----------------------------------------------------

    def _read_stderr(self, worker: _Worker) -> None:
        process = worker.process
        if process is None or process.stderr is None:
            return
        try:
            data = os.read(process.stderr.fileno(), STDERR_READ_BYTES)
        except BlockingIOError:
            return
        if not data:
            self._drain_stderr(worker, process)
            return
        *lines, worker.partial = (worker.partial + data).split(b"\n")
        for line in lines:
            self._echo_line(worker, line)

    def _drain_stderr(self, worker: _Worker, process: subprocess.Popen[bytes]) -> None:
        """Pass on what is left of a worker's stderr and stop watching it."""
        stream = process.stderr
        if stream is None or stream.closed:
            return
        self.loop.remove_reader(stream.fileno())
        try:
            rest = os.read(stream.fileno(), STDERR_READ_BYTES)
        except BlockingIOError:
            rest = b""
        stream.close()
        for line in (worker.partial + rest).split(b"\n"):
            if line:
                self._echo_line(worker, line)
        worker.partial = b""

    def _echo_line(self, worker: _Worker, line: bytes) -> None:
        self._echo(f"[worker {worker.index}] {line.decode(errors='replace').rstrip()}")


def _parent_death_hook() -> Callable[[], None] | None:
    """On Linux, a function run in each child that makes it get SIGTERM when we die.

    The supervisor kills its workers whenever it exits, but not if it is
    itself killed with SIGKILL; then the kernel does it (prctl
    PR_SET_PDEATHSIG), and the worker shuts down gracefully.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return die_with_parent
