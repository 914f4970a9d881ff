"""Scenarios A-G: which servers each applies to, its load, and the figures of one run.

A  100 clients in one room, 10 senders, window 8, 100-byte texts
B  1,000 clients in one room, 5 senders, window 8
C  idle connections, each in a room of its own, as many as one process may hold
D  join storm: clients (each alone in a room so far) all join one room at once
E  latency at half of the server's maximum rate (A's room, A's rate from this run)
F  A with the SQLite history file instead of :memory: (read from A's figures)
G  A over TLS
R  A over Redis: one --redis node and 1, 2, 4 processes      (see cluster.py)
S  messages stored per second: SQLite, Redis everysec and always
T  the Redis round trip's cost: :memory: and one --redis node at the same rate
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from cluster import CLUSTER_KINDS_FOR, CLUSTER_RUN_ORDER, CLUSTER_TITLES
from harness import (
    CLIENTS_PER_PROCESS,
    Loadgen,
    LoadOutcome,
    LoadSpec,
    Profiler,
    Target,
    run_load,
)
from servers import Server, TlsFiles, concurrency_of, protocol_of, start_server

ALL_KINDS = ("chattycat", "chattycat-sqlite", "asyncio", "ngircd")
TLS_KINDS = ("chattycat", "asyncio", "ngircd")
RUN_ORDER = ("A", "B", "C", "D", "E", "G", *CLUSTER_RUN_ORDER)  # F is A's SQLite column
TRACED = ("A", "B", "G")  # fan-out scenarios whose send calls strace counts
TRACED_DURATION_S = 3.0
LOWER_BOUND_CPU_PCT = 80.0
TITLES = {
    "A": "100 clients, one room, 10 senders, window 8",
    "B": "1,000 clients, one room, 5 senders, window 8",
    "C": "idle connections, a room each",
    "D": "join storm into one room",
    "E": "latency at half the maximum rate (A's room)",
    "F": "A with the SQLite history file",
    "G": "A over TLS",
    **CLUSTER_TITLES,
}


@dataclass(frozen=True)
class Sizes:
    """Room sizes, times and repetitions: the full run, or the smoke test's."""

    a_clients: int = 100
    a_senders: int = 10
    b_clients: int = 1000
    b_senders: int = 5
    c_clients: int = 19_500
    d_clients: int = 3000
    window: int = 8
    text: int = 100
    warmup: float = 1.0
    duration: float = 10.0
    hold: float = 5.0
    storm_timeout: float = 180.0
    settle: float = 0.3
    per_process: int = CLIENTS_PER_PROCESS
    runs: int = 3
    s_clients: int = 10  # S: a room of this many, every one sending
    s_window: int = 16


QUICK = Sizes(a_clients=20, a_senders=4, b_clients=60, b_senders=2, c_clients=200,
              d_clients=60, warmup=0.1, duration=0.4, hold=0.3, storm_timeout=30.0, settle=0.1,
              per_process=100, runs=1, s_clients=4)  # C still spread over two load generators
# What one process may hold: the hard descriptor limit, less room for the rest.
IDLE_HEADROOM_FDS = 500
IDLE_MAX_CLIENTS = 19_500


def full_sizes(nofile: int) -> Sizes:
    """The issue's sizes; scenario C as many connections as the descriptor limit allows."""
    return Sizes(c_clients=max(100, min(IDLE_MAX_CLIENTS, nofile - IDLE_HEADROOM_FDS)))


def kinds_for(scenario: str) -> tuple[str, ...]:
    if scenario in CLUSTER_KINDS_FOR:
        return CLUSTER_KINDS_FOR[scenario]
    return TLS_KINDS if scenario == "G" else ALL_KINDS


@dataclass
class Context:
    """What every run needs: the load generator, cores, files, and the servers' max rates."""

    loadgen: Loadgen
    sizes: Sizes
    tmp: str
    server_core: int | None
    loadgen_core: int | None
    tls: TlsFiles | None
    ngircd: str | None
    reuse_servers: bool
    strace: bool
    profile_dir: str | None = None  # py-spy profiles of ChattyCat's runs go here
    a_rates: dict[str, list[float]] = field(default_factory=dict)  # messages/s in A
    r_rates: dict[str, list[float]] = field(default_factory=dict)  # messages/s in R
    t_kinds: tuple[str, ...] = ()  # the servers T runs against: the slowest sets its rate
    _servers: dict[tuple[str, bool], Server] = field(default_factory=dict)

    @contextlib.contextmanager
    def server(self, kind: str, tls: bool) -> Iterator[Server]:
        """A fresh server per run; in the smoke test, one per kind for the whole run."""
        key = (kind, tls)
        if self.reuse_servers and key in self._servers:
            yield self._servers[key]
            return
        srv = start_server(kind, self.server_core, self.tmp, self.tls if tls else None,
                           self.ngircd)
        if self.reuse_servers:
            self._servers[key] = srv
            yield srv
            return
        try:
            yield srv
        finally:
            srv.stop()

    def close(self) -> None:
        for srv in self._servers.values():
            srv.stop()
        self._servers.clear()


def spec_for(ctx: Context, scenario: str, kind: str, run: int, traced: bool = False) -> LoadSpec:
    """The load of one run of ``scenario`` against a server of ``kind``."""
    s = ctx.sizes
    base = LoadSpec(proto=protocol_of(kind), clients=s.a_clients, senders=s.a_senders,
                    window=s.window, size=s.text, warmup=s.warmup, duration=s.duration,
                    track=True, concurrency=concurrency_of(kind), settle=s.settle,
                    prefix=f"{scenario.lower()}{run}{'t' if traced else ''}u")
    if scenario == "B":
        base = replace(base, clients=s.b_clients, senders=s.b_senders)
    elif scenario == "C":
        base = replace(base, clients=s.c_clients, senders=0, own_rooms=True, warmup=0.0,
                       duration=s.hold, track=False, per_process=s.per_process)
    elif scenario == "D":
        base = replace(base, clients=s.d_clients, senders=0, storm=True, warmup=0.0,
                       room=f"storm{run}", duration=s.storm_timeout, track=False)
    elif scenario == "E":
        base = replace(base, rate=0.5 * statistics.median(ctx.a_rates[kind]))
    elif scenario == "G":
        base = replace(base, tls=True)
    elif scenario == "S":
        base = replace(base, clients=s.s_clients, senders=s.s_clients, window=s.s_window)
    elif scenario == "T":
        base = replace(base, rate=0.5 * min(statistics.median(ctx.r_rates[k])
                                            for k in ctx.t_kinds or (kind,)))
    if traced:
        base = replace(base, duration=TRACED_DURATION_S)
    return base


def measure(ctx: Context, scenario: str, kind: str, run: int,
            traced: bool = False) -> dict[str, Any]:
    """One run: start (or reuse) the server, load it, and return the figures."""
    if scenario == "E" and not ctx.a_rates.get(kind):
        calibrate(ctx, kind)
    if scenario == "T":
        for other in ctx.t_kinds or (kind,):
            if not ctx.r_rates.get(other):
                calibrate(ctx, other, "R")
    spec = spec_for(ctx, scenario, kind, run, traced)
    strace_out = os.path.join(ctx.tmp, f"strace-{scenario}-{kind}.txt") if traced else None
    setup: dict[str, Any] = {}
    with ctx.server(kind, spec.tls) as srv:
        errors_before = len(srv.logged_errors())
        profiler = (Profiler(srv.pid, ctx.loadgen_core,
                             os.path.join(ctx.profile_dir, f"{scenario}-{kind}-{run}.txt"))
                    if ctx.profile_dir and kind.startswith("chattycat") and not traced else None)
        try:
            target = Target(srv.ports, srv.cpu_pids(), srv.aux_pids())
            outcome = run_load(ctx.loadgen, spec, target, ctx.loadgen_core, strace_out,
                               on_ready=lambda: setup.update(srv.describe()))
        finally:
            if profiler is not None:
                profiler.stop()
        logged = srv.logged_errors()[errors_before:]
    row = {"scenario": scenario, "server": kind, "run": run, "traced": traced,
           **figures(spec, outcome), **setup, "server_errors": len(logged),
           "server_said": logged[:3]}
    rates = {"A": ctx.a_rates, "R": ctx.r_rates}.get(scenario)
    if rates is not None and not traced and row["messages_per_s"]:
        rates.setdefault(kind, []).append(row["messages_per_s"])
    return row


def calibrate(ctx: Context, kind: str, scenario: str = "A") -> None:
    """E without A (T without R) in this run: measure it once, not recorded, for the rate."""
    measure(ctx, scenario, kind, run=0)
    {"A": ctx.a_rates, "R": ctx.r_rates}[scenario].setdefault(kind, [1.0])


def _sum(results: list[dict[str, Any]], key: str) -> float:
    return float(sum(r.get(key) or 0 for r in results))


def figures(spec: LoadSpec, out: LoadOutcome) -> dict[str, Any]:
    """The figures of one run, from what every load-generator process reported."""
    first = out.results[0]
    window = first["window_s"] or 0.0
    copies, server_cpu = _sum(out.results, "copies"), first["server_cpu_s"]
    acks, aux_cpu = _sum(out.results, "acks"), first.get("aux_cpu_s")
    loadgen_cpu = _sum(out.results, "loadgen_cpu_s")
    loadgen_pct = 100 * loadgen_cpu / window if window else None
    rss = (None if out.rss_before_kib is None or out.rss_after_kib is None
           else (out.rss_after_kib - out.rss_before_kib))
    calls = sum((out.send_calls or {}).values())
    return {
        "clients": spec.clients, "senders": spec.senders, "window": spec.window,
        "rate": spec.rate or None, "tls": spec.tls, "processes": len(out.results),
        "setup_s": max(r["setup_s"] for r in out.ready),
        "ready": sum(r["ready"] for r in out.ready), "failed": sum(r["failed"] for r in out.ready),
        "window_s": window,
        "deliveries_per_s": copies / window if window and spec.senders else None,
        "messages_per_s": _sum(out.results, "acks") / window if window and spec.senders else None,
        "lat_p50_ms": first["lat_p50_ms"], "lat_p99_ms": first["lat_p99_ms"],
        "lat_max_ms": first["lat_max_ms"], "all_p50_ms": first["all_p50_ms"],
        "all_p99_ms": first["all_p99_ms"], "all_max_ms": first["all_max_ms"],
        "server_cpu_pct": 100 * server_cpu / window if server_cpu is not None and window else None,
        "cpu_us_per_delivery": (1e6 * server_cpu / copies
                                if server_cpu is not None and copies else None),
        "cpu_us_per_msg": (1e6 * server_cpu / acks
                           if server_cpu is not None and acks else None),
        "redis_cpu_pct": 100 * aux_cpu / window if aux_cpu is not None and window else None,
        "redis_us_per_msg": 1e6 * aux_cpu / acks if aux_cpu is not None and acks else None,
        "rss_before_mib": None if out.rss_before_kib is None else out.rss_before_kib / 1024,
        "rss_after_mib": None if out.rss_after_kib is None else out.rss_after_kib / 1024,
        "rss_kib_per_conn": None if rss is None else rss / spec.clients,
        "loadgen_cpu_pct": loadgen_pct,
        "lower_bound": bool(loadgen_pct and loadgen_pct > LOWER_BOUND_CPU_PCT),
        "held": int(_sum(out.results, "held")), "closed": int(_sum(out.results, "closed")),
        "errors": int(_sum(out.results, "errors")),
        "undelivered": int(_sum(out.results, "undelivered")),
        "storm_ready_s": first["storm_ready_s"], "storm_notices_s": first["storm_notices_s"],
        "send_calls": out.send_calls, "complaints": out.complaints[:3],
        "frames_per_send": _sum(out.results, "copies_total") / calls if calls else None,
    }
