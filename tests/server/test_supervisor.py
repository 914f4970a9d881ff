"""``serve --workers``: the supervisor restarts dead workers and stops them all, none orphaned.

The supervisor runs in a child process (it handles signals, as the real one
does) over fake workers: small Python programs that print their pid and
sleep, ignore SIGTERM, or exit at once. Processes are checked by PID.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chattycat.server.supervisor import RestartPolicy, describe_exit
from tests.conftest import _LineCollector, child_env, wait_for

WAIT_S = 10.0

DRIVER = r"""
import logging, sys
from chattycat.net.loop import EventLoop
from chattycat.server.supervisor import RestartPolicy, Supervisor

logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                    format="%(levelname)s %(name)s: %(message)s")
count, grace, first, cap, worker = sys.argv[1:]
supervisor = Supervisor(
    EventLoop(), lambda i: [sys.executable, "-c", worker, str(i)], int(count),
    echo=lambda line: print(line, file=sys.stderr, flush=True),
    policy=RestartPolicy(first_s=float(first), cap_s=float(cap)), stop_grace_s=float(grace))
sys.exit(supervisor.run())
"""

SLEEPER = ("import os, sys, time\n"
           "print('pid', os.getpid(), flush=True, file=sys.stderr)\n"
           "time.sleep(120)\n")
STUBBORN = ("import os, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('pid', os.getpid(), flush=True, file=sys.stderr)\n"
            "time.sleep(120)\n")
FAILING = "import sys\nprint('failing', flush=True, file=sys.stderr)\nsys.exit(3)\n"

PID_RE = r"^\[worker (\d)\] pid (\d+)$"


class RunningSupervisor:
    """The driver child, its stderr, and the worker pids it has reported."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        assert proc.stderr is not None
        self.err = _LineCollector(proc.stderr)

    def worker_pids(self) -> dict[int, list[int]]:
        """Every pid each worker index has had, in order."""
        pids: dict[int, list[int]] = {}
        for line in self.err.lines:
            if match := re.match(PID_RE, line):
                pids.setdefault(int(match.group(1)), []).append(int(match.group(2)))
        return pids

    def wait_for_pids(self, condition: Callable[[dict[int, list[int]]], bool]
                      ) -> dict[int, list[int]]:
        assert wait_for(lambda: condition(self.worker_pids()), WAIT_S), self.log
        return self.worker_pids()

    def wait_for_log(self, pattern: str) -> re.Match[str]:
        match = self.err.wait_for(re.compile(pattern), WAIT_S)
        assert match is not None, f"no {pattern!r} in:\n{self.log}"
        return match

    @property
    def log(self) -> str:
        return "\n".join(self.err.lines)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Callable[..., RunningSupervisor]]:
    started: list[RunningSupervisor] = []

    def start(worker: str, count: int = 2, *, grace_s: float = 5.0, first_s: float = 0.2,
              cap_s: float = 0.8) -> RunningSupervisor:
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(count), str(grace_s), str(first_s), str(cap_s),
             worker],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=child_env(), cwd=tmp_path,
        )
        running = RunningSupervisor(proc)
        started.append(running)
        return running

    yield start
    for running in started:
        pids = [p for ps in running.worker_pids().values() for p in ps]
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(WAIT_S)
        for pid in pids:  # nothing may outlive a test, whatever it asserted
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


# -- the restart policy (pure) --------------------------------------------------------


def test_restart_delay_doubles_while_a_worker_keeps_dying_up_to_the_cap() -> None:
    policy = RestartPolicy()
    delays: list[float] = []
    previous: float | None = None
    for _ in range(8):
        previous = policy.delay_s(previous, ran_s=0.5)
        delays.append(previous)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_restart_delay_starts_afresh_after_a_worker_ran_a_minute() -> None:
    policy = RestartPolicy()
    assert policy.delay_s(30.0, ran_s=59.9) == 30.0
    assert policy.delay_s(30.0, ran_s=60.0) == 1.0


def test_exit_statuses_are_described_for_the_log() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(0) == "exited with status 0"


# -- the supervisor process ---------------------------------------------------------


def test_each_worker_is_started_with_its_index_and_its_lines_are_prefixed(
        supervisor: Callable[..., RunningSupervisor]) -> None:
    running = supervisor(SLEEPER, count=3)
    pids = running.wait_for_pids(lambda p: len(p) == 3)
    assert sorted(pids) == [1, 2, 3]
    assert all(alive(ps[0]) for ps in pids.values())


def test_a_killed_worker_is_restarted_and_its_death_logged_as_a_warning(
        supervisor: Callable[..., RunningSupervisor]) -> None:
    running = supervisor(SLEEPER, count=2)
    pids = running.wait_for_pids(lambda p: len(p) == 2)
    victim, other = pids[1][0], pids[2][0]
    os.kill(victim, signal.SIGKILL)
    pids = running.wait_for_pids(lambda p: len(p[1]) == 2)
    assert pids[1][1] != victim and alive(pids[1][1])
    assert pids[2] == [other] and alive(other)  # the other worker was left alone
    running.wait_for_log(rf"^WARNING chattycat.supervisor: worker 1 \(pid {victim}\) "
                         r"killed by SIGKILL after [\d.]+ s; restarting it in 0.2 s$")


def test_a_worker_that_keeps_failing_is_restarted_ever_more_slowly(
        supervisor: Callable[..., RunningSupervisor]) -> None:
    running = supervisor(FAILING, count=1, first_s=0.05, cap_s=0.2)
    def delays() -> list[str]:
        return re.findall(r"exited with status 3 after [\d.]+ s; restarting it in ([\d.]+) s",
                          running.log)

    assert wait_for(lambda: len(delays()) >= 4, WAIT_S), running.log
    assert delays()[:4] == ["0.05", "0.1", "0.2", "0.2"]
    assert "[worker 1] failing" in running.log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_stops_every_worker_and_the_supervisor_exits_0(
        supervisor: Callable[..., RunningSupervisor], sig: signal.Signals) -> None:
    running = supervisor(SLEEPER, count=2)
    pids = running.wait_for_pids(lambda p: len(p) == 2)
    running.proc.send_signal(sig)
    assert running.proc.wait(WAIT_S) == 0
    assert wait_for(lambda: not any(alive(ps[0]) for ps in pids.values()), WAIT_S)
    running.err.join(WAIT_S)
    assert "restarting" not in running.log  # stopping workers are not restarted


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(
        supervisor: Callable[..., RunningSupervisor]) -> None:
    running = supervisor(STUBBORN, count=2, grace_s=0.5)
    pids = running.wait_for_pids(lambda p: len(p) == 2)
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(WAIT_S) == 0
    assert not any(alive(ps[0]) for ps in pids.values())
    running.err.join(WAIT_S)
    assert "did not stop in time: killing it" in running.log


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_supervisor_killed_by_sigkill(
        supervisor: Callable[..., RunningSupervisor]) -> None:
    running = supervisor(SLEEPER, count=2)
    pids = running.wait_for_pids(lambda p: len(p) == 2)
    running.proc.kill()
    running.proc.wait(WAIT_S)
    assert wait_for(lambda: not any(alive(ps[0]) for ps in pids.values()), WAIT_S)
