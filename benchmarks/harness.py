"""Build the C load generator and drive it: its processes, the start signal, strace.

``loadgen.c`` is compiled with the system C compiler into a temporary
directory each time the benchmark runs (with OpenSSL when its headers are
there, for the TLS scenario). One load consists of one or more loadgen
processes pinned to the load-generator core: each connects its share of the
clients and prints ``ready``; when all are ready the harness reads the
server's memory, sends ``go`` to every process at once, collects each
``result`` line, and sends ``quit``.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from servers import HERE, child_setup, rss_kib

# One process holds at most this many clients; more are split over processes
# (each is capped by the same descriptor limit as the server).
CLIENTS_PER_PROCESS = 10_000
RESULT_GRACE_S = 60.0
EXIT_TIMEOUT_S = 30.0
STRACE_ATTACH_S = 1.0
SEND_CALLS = ("sendmsg", "sendto", "write", "writev")


@dataclass(frozen=True)
class Loadgen:
    """The compiled load generator, and whether it speaks TLS."""

    path: str
    tls: bool


def build_loadgen(tmp: str) -> tuple[Loadgen | None, str]:
    """Compile loadgen.c with ``cc -O2``; (None, why) when that cannot be done."""
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        return None, "no C compiler (cc) on this machine: the load generator cannot be built"
    out, src = os.path.join(tmp, "loadgen"), str(HERE / "loadgen.c")
    with_tls = subprocess.run([cc, "-O2", "-o", out, src, "-DWITH_TLS", "-lssl", "-lcrypto"],
                              capture_output=True, text=True, timeout=180)
    if with_tls.returncode == 0:
        return Loadgen(out, tls=True), ""
    plain = subprocess.run([cc, "-O2", "-o", out, src], capture_output=True, text=True,
                           timeout=180)
    if plain.returncode != 0:
        last = (plain.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"{cc} could not build loadgen.c: {last}"
    return Loadgen(out, tls=False), "load generator built without TLS (no OpenSSL headers)"


@dataclass(frozen=True)
class Target:
    """Where a load goes: the server's ports (clients spread evenly), its processes, and
    processes it depends on whose CPU is reported apart (a cluster's Redis)."""

    ports: Sequence[int]
    pids: Sequence[int]
    aux_pids: Sequence[int] = ()


def _listed(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


@dataclass(frozen=True)
class LoadSpec:
    """One load: what the clients do (see loadgen.c for each option)."""

    proto: str
    clients: int
    senders: int = 0
    window: int = 8
    rate: float = 0.0
    size: int = 100
    warmup: float = 1.0
    duration: float = 10.0
    room: str = "lobby"
    own_rooms: bool = False
    storm: bool = False
    track: bool = False
    tls: bool = False
    concurrency: int = 200
    prefix: str = "u"
    setup_timeout: float = 300.0
    settle: float = 0.3
    per_process: int = CLIENTS_PER_PROCESS

    def args(self, first: int, count: int, target: Target, processes: int) -> list[str]:
        concurrency = max(1, self.concurrency // processes)  # the server sees the sum
        args = ["--proto", self.proto, "--port", _listed(target.ports), "--clients", str(count),
                "--first", str(first), "--total", str(self.clients), "--senders",
                str(max(0, min(self.senders - first, count))), "--window", str(self.window),
                "--rate", str(self.rate), "--size", str(self.size), "--warmup", str(self.warmup),
                "--duration", str(self.duration), "--room", self.room, "--concurrency",
                str(concurrency), "--prefix", self.prefix, "--server-pid",
                _listed(target.pids), "--setup-timeout", str(self.setup_timeout),
                "--settle", str(self.settle)]
        if target.aux_pids:
            args += ["--aux-pid", _listed(target.aux_pids)]
        flags = {"--own-rooms": self.own_rooms, "--storm": self.storm, "--track": self.track,
                 "--tls": self.tls}
        return args + [flag for flag, on in flags.items() if on]


@dataclass
class LoadOutcome:
    """What every process reported, and the server's memory around the setup."""

    ready: list[dict[str, Any]]
    results: list[dict[str, Any]]
    rss_before_kib: int | None
    rss_after_kib: int | None
    send_calls: dict[str, int] | None = None
    complaints: list[str] = field(default_factory=list)  # the processes' stderr, first lines


@dataclass
class _Child:
    proc: subprocess.Popen[str]
    lines: collections.deque[tuple[str, dict[str, Any]]] = field(default_factory=collections.deque)
    stderr: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))
    changed: threading.Event = field(default_factory=threading.Event)

    def start_readers(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True).start()

    def _read(self, stream: IO[str], is_stdout: bool) -> None:
        for line in stream:
            if not is_stdout:
                self.stderr.append(line)
                continue
            word, _, rest = line.partition(" ")
            if word in ("ready", "result"):
                self.lines.append((word, json.loads(rest)))
                self.changed.set()
        if is_stdout:
            self.changed.set()

    def wait_for(self, word: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for got, payload in self.lines:
                if got == word:
                    return payload
            if self.proc.poll() is not None and not any(w == word for w, _ in self.lines):
                raise RuntimeError("load generator exited: " + "".join(self.stderr).strip())
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"load generator: no {word!r} in {timeout_s:.0f} s; "
                                   + "".join(self.stderr).strip())
            self.changed.wait(min(left, 0.5))
            self.changed.clear()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def finish(self) -> None:
        self.send("quit")
        try:
            self.proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(EXIT_TIMEOUT_S)


class Strace:
    """``strace -c`` on the server: how many send calls it made while attached."""

    def __init__(self, pid: int, core: int | None, out: str) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            ["strace", "-c", "-f", "-e", "trace=" + ",".join(SEND_CALLS), "-o", out,
             "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_setup(core))
        time.sleep(STRACE_ATTACH_S)  # it attaches to every thread of the server

    def stop(self) -> dict[str, int] | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(EXIT_TIMEOUT_S)
        try:
            with open(self.out) as summary:
                counts = parse_strace(summary.read())
        except OSError:
            return None
        return counts or None


class Profiler:
    """``py-spy record`` on the server while a load runs: collapsed stacks in ``out``.

    Beside them, ``out`` with ``.top.txt`` lists the functions by their own
    samples and by inclusive samples (see :func:`summarize_profile`).
    """

    def __init__(self, pid: int, core: int | None, out: str) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
             "--output", out, "--nonblocking"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=child_setup(core))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(EXIT_TIMEOUT_S)
        try:
            with open(self.out) as raw:
                top = summarize_profile(raw.read())
        except OSError:
            return
        with open(self.out.removesuffix(".txt") + ".top.txt", "w") as summary:
            summary.write(top)


def summarize_profile(collapsed: str, rows: int = 25) -> str:
    """The functions with the most samples, own and inclusive, from collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return "no samples\n"
    out = [f"{total} samples", "", "own %  function"]
    out += [f"{100 * n / total:5.1f}  {name}" for name, n in own.most_common(rows)]
    out += ["", "incl % function"]
    out += [f"{100 * n / total:5.1f}  {name}" for name, n in inclusive.most_common(rows)]
    return "\n".join(out) + "\n"


def _short(frame: str) -> str:
    # py-spy writes "function (path/to/module.py:line)": keep the function and file.
    name, _, where = frame.partition(" (")
    path = where.split(":")[0]
    return f"{name} ({os.path.basename(path)})" if path else name


def parse_strace(summary: str) -> dict[str, int]:
    """Calls per system call from an ``strace -c`` summary table."""
    counts: dict[str, int] = {}
    for line in summary.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(parts) >= 5 and parts[-1] in SEND_CALLS and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    return counts


def _rss_sum(pids: Sequence[int]) -> int | None:
    """The resident memory of every process of the server (None if one has gone)."""
    sizes = [rss_kib(pid) for pid in pids]
    return None if any(size is None for size in sizes) else sum(s for s in sizes if s)


def run_load(loadgen: Loadgen, spec: LoadSpec, target: Target, core: int | None,
             strace_out: str | None = None,
             on_ready: Callable[[], None] | None = None) -> LoadOutcome:
    """Run one load against a server; every process is stopped before this returns.

    ``on_ready`` is called once every client is ready, before the measured phase.
    """
    server_pid = target.pids[0]
    rss_before = _rss_sum(target.pids)
    processes = max(1, -(-spec.clients // spec.per_process))
    children: list[_Child] = []
    try:
        for k in range(processes):
            first = k * spec.clients // processes
            count = (k + 1) * spec.clients // processes - first
            child = _Child(subprocess.Popen(
                [loadgen.path, *spec.args(first, count, target, processes)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                preexec_fn=child_setup(core)))
            child.start_readers()
            children.append(child)
        ready = [c.wait_for("ready", spec.setup_timeout + RESULT_GRACE_S) for c in children]
        time.sleep(0.05)
        rss_after = _rss_sum(target.pids)
        if on_ready is not None:
            on_ready()
        tracer = Strace(server_pid, core, strace_out) if strace_out else None
        for child in children:
            child.send("go")
        budget = spec.warmup + spec.duration + RESULT_GRACE_S
        results = [c.wait_for("result", budget) for c in children]
        calls = tracer.stop() if tracer else None
        complaints = [line.strip() for c in children for line in list(c.stderr)[:3]]
        return LoadOutcome(ready, results, rss_before, rss_after, calls, complaints)
    finally:
        for child in children:
            child.finish()
