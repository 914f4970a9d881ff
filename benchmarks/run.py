"""Run the ChattyCat benchmark scenarios; print and save the results as markdown.

Every scenario starts its own ``chattycat serve`` (``sys.executable -m
chattycat serve`` on 127.0.0.1, a free port, ``--flood-rate 0``), drives it
with :mod:`loadgen` from this process, and stops it by PID. The tables go to
stdout and to ``benchmarks/results.md`` (overwritten).

    python benchmarks/run.py                 # all scenarios, about two minutes
    python benchmarks/run.py --quick         # shorter runs, for a smoke test
    python benchmarks/run.py --profile       # also a py-spy profile of the fan-out
    python benchmarks/run.py --only fanout   # one scenario (fanout, idle, rooms, history)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loadgen import (
    HISTORY_COLUMNS,
    LOAD_COLUMNS,
    LoadConfig,
    LoadResult,
    LoadRun,
    markdown_header,
    markdown_row,
    run_history,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"
LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
SCENARIOS = ("fanout", "idle", "rooms", "history", "syscalls")


class Server:
    """A ``chattycat serve`` subprocess; its stderr is drained by a thread."""

    def __init__(self, db: str, extra: Sequence[str] = ()) -> None:
        cmd = [sys.executable, "-m", "chattycat", "serve", "--host", "127.0.0.1", "--port", "0",
               "--db", db, "--flood-rate", "0", "--log-level", "info", *extra]
        self.proc = subprocess.Popen(cmd, cwd=HERE.parent, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.log: collections.deque[str] = collections.deque(maxlen=50)
        self._port: int | None = None
        self._listening = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._listening.wait(START_TIMEOUT_S) or self._port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.log))

    @property
    def port(self) -> int:
        assert self._port is not None
        return self._port

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            match = LISTENING_RE.search(line)
            if match and self._port is None:
                self._port = int(match.group(1))
                self._listening.set()
        self._listening.set()  # exited before listening

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL by PID if it does not exit in time."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT_S)


@contextmanager
def server(db: str = ":memory:") -> Iterator[Server]:
    """A fresh server for one scenario, stopped afterwards whatever happens."""
    srv = Server(db)
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def temp_db() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="chattycat-bench-") as tmp:
        yield os.path.join(tmp, "history.sqlite3")


def load(srv: Server, **kwargs: Any) -> LoadResult:
    config = LoadConfig(port=srv.port, server_pid=srv.pid, **kwargs)
    return asyncio.run(LoadRun(config).run())


# -- scenarios ------------------------------------------------------------------------


def fanout(args: argparse.Namespace) -> list[LoadResult]:
    """100 clients in one room, 10 senders as fast as acks allow (16 in flight each)."""
    results = []
    for label, use_file in (("fan-out, SQLite file", True), ("fan-out, :memory:", False)):
        with temp_db() as path, server(path if use_file else ":memory:") as srv:
            results.append(load(srv, label=label, clients=100, senders=10, window=16,
                                duration_s=args.duration))
    return results


def idle(args: argparse.Namespace) -> list[LoadResult]:
    """1000 connections that say nothing: memory per connection and idle CPU."""
    with server() as srv:
        return [load(srv, label="idle connections", clients=1000, senders=0,
                     duration_s=min(args.duration, 5.0))]


def rooms(args: argparse.Namespace) -> list[LoadResult]:
    """200 clients in 20 rooms of 10, every client sending 2 messages/s."""
    with temp_db() as path, server(path) as srv:
        return [load(srv, label="20 rooms x 10, 2 msg/s each", clients=200, rooms=20,
                     senders=200, rate=400, duration_s=args.duration)]


def history(args: argparse.Namespace) -> str:
    """Join a room holding 10k messages; ask for 500 of them."""
    stored = 2000 if args.quick else 10000
    with temp_db() as path, server(path) as srv:
        config = LoadConfig(port=srv.port, server_pid=srv.pid)
        result = asyncio.run(run_history(config, stored, reps=20, limit=500))
    return markdown_header(HISTORY_COLUMNS) + "\n" + markdown_row(result, HISTORY_COLUMNS)


SYSCALLS_SHOWN = ("sendmsg", "sendto", "recvfrom", "epoll_wait", "epoll_ctl", "pwrite64",
                  "write", "fdatasync", "fsync")


def syscalls(args: argparse.Namespace) -> str:
    """strace -c on the server: system calls per stored message and per delivery."""
    if shutil.which("strace") is None:
        return "_strace is not installed: skipped._"
    rows = []
    for label, kwargs in (("1,000 msg/s paced", {"rate": 1000.0}),
                          ("as fast as acks allow (w16)", {"window": 16})):
        with temp_db() as path, server(path) as srv, tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "strace.txt")
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(srv.pid)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(1.0)  # let it attach
                result = load(srv, label=label, clients=100, senders=10, duration_s=5.0,
                              **kwargs)
            finally:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(STOP_TIMEOUT_S)
            calls = _strace_counts(Path(out).read_text())
        # Connect-phase calls are in the counts too; they are small next to 5 s of traffic.
        messages = result.messages_per_s * 5.0
        deliveries = result.deliveries_per_s * 5.0
        shown = [f"{name} {calls.get(name, 0) / messages:.2f}" for name in SYSCALLS_SHOWN
                 if calls.get(name)]
        rows.append(f"| {label} | {messages:,.0f} | {deliveries:,.0f} | "
                    f"{calls.get('sendmsg', 0) / deliveries:.3f} | "
                    f"{deliveries / max(1, calls.get('sendmsg', 0)):.1f} | {', '.join(shown)} |")
    header = ("| load (under strace) | msgs stored | deliveries | sendmsg per delivery | "
              "frames per sendmsg | calls per stored message |\n|---|---|---|---|---|---|")
    return header + "\n" + "\n".join(rows)


def _strace_counts(summary: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in summary.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    return counts


def profile(args: argparse.Namespace) -> str:
    """py-spy on the server during the fan-out (SQLite file): top functions by own time."""
    if shutil.which("py-spy") is None:
        return "_py-spy is not installed (pip install py-spy): skipped._"
    with temp_db() as path, server(path) as srv, tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "profile.txt")
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(srv.pid), "--rate", "250", "--nolineno",
             "--format", "raw", "--output", out, "--duration", str(int(args.duration) + 2)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            load(srv, label="profiled", clients=100, senders=10, duration_s=args.duration)
        finally:
            spy.wait(args.duration + 30)
        stacks = Path(out).read_text() if os.path.exists(out) else ""
    return _top_functions(stacks)


def _top_functions(collapsed: str, top: int = 12) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return "_py-spy recorded nothing._"
    lines = [f"{samples} samples of the busy server.\n",
             "| function | own % | incl. % |", "|---|---|---|"]
    for frame, count in own.most_common(top):
        lines.append(f"| `{frame}` | {100 * count / samples:.1f} | "
                     f"{100 * total[frame] / samples:.1f} |")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``func (/some/dir/pkg/mod.py)`` -> ``func (pkg/mod.py)``: no machine paths."""
    match = re.match(r"(.*) \((.*)\)$", frame)
    if not match:
        return frame
    func, where = match.groups()
    parts = Path(where).parts
    return f"{func} ({'/'.join(parts[-2:])})"


# -- report ---------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores ({model}), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}; server and load generator on the same machine, "
            f"over 127.0.0.1; load average at start {os.getloadavg()[0]:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs instead of 10 s")
    parser.add_argument("--profile", action="store_true", help="add a py-spy profile")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="repeatable")
    args = parser.parse_args(argv)
    args.duration = 3.0 if args.quick else 10.0
    chosen = args.only or list(SCENARIOS)
    sections = [f"# ChattyCat benchmark results\n\n{machine()}.\n"]
    print(sections[0], flush=True)

    def section(title: str, body: Callable[[], str]) -> None:
        print(f"running: {title}", file=sys.stderr, flush=True)
        sections.append(f"## {title}\n\n{body()}\n")
        print(sections[-1], flush=True)

    load_rows: list[LoadResult] = []
    for name, scenario in (("fanout", fanout), ("idle", idle), ("rooms", rooms)):
        if name in chosen:
            print(f"running: {name}", file=sys.stderr, flush=True)
            load_rows += scenario(args)
    if load_rows:
        table = "\n".join([markdown_header(LOAD_COLUMNS)]
                          + [markdown_row(r, LOAD_COLUMNS) for r in load_rows])
        sections.append(f"## Load scenarios\n\n{table}\n")
        print(sections[-1], flush=True)
    if "history" in chosen:
        stored = 2000 if args.quick else 10000
        section(f"History ({stored:,} stored messages)", lambda: history(args))
    if "syscalls" in chosen:
        section("System calls (strace -c)", lambda: syscalls(args))
    if args.profile:
        section("Profile of the fan-out (py-spy, SQLite file)", lambda: profile(args))
    RESULTS.write_text("\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
