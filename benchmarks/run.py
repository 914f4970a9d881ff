"""Run the ChattyCat benchmark: scenarios A-G against every server, side by side.

Starts each server itself (ChattyCat with ``:memory:`` and with a SQLite file,
the asyncio-streams reference in this directory, ngIRCd) pinned to one core,
drives it with the compiled load generator pinned to another, and stops it by
PID. Three runs per scenario and server; the medians go to stdout and
``benchmarks/results.md``, every run to ``benchmarks/results.json``.
Scenarios R-T measure ChattyCat scaled out on Redis (see cluster.py).

    python benchmarks/run.py                     # the full run (about 35 minutes)
    python benchmarks/run.py --quick             # smoke test: small sizes, seconds
    python benchmarks/run.py --only A --only E --servers chattycat,ngircd
    python benchmarks/run.py --only R --only S --only T --out DIR   # the cluster alone
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cluster import CLUSTER_RUN_ORDER, redis_binary
from cluster_report import scale_out
from harness import build_loadgen
from report import details, medians, summary
from scenarios import QUICK, RUN_ORDER, TRACED, Context, full_sizes, kinds_for, measure
from servers import (
    ALL_SERVER_KINDS,
    CLUSTER_KINDS,
    HERE,
    SERVER_KINDS,
    find_ngircd,
    make_cert,
    pick_cores,
    raise_nofile,
)

SCENARIOS = "ABCDEFG" + "".join(sorted(CLUSTER_RUN_ORDER))


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "cpu": model,
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "load_average_start": os.getloadavg()[0]}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: small sizes, one short run per scenario and server")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS),
                        help="scenarios to run (repeatable; default all)")
    parser.add_argument("--servers", default=",".join(ALL_SERVER_KINDS),
                        help=f"comma-separated subset of {','.join(ALL_SERVER_KINDS)}")
    parser.add_argument("--runs", type=int, help="runs per scenario and server (default 3)")
    parser.add_argument("--duration", type=float,
                        help="seconds measured per fan-out run (default 10; --quick 0.4)")
    parser.add_argument("--out", type=Path, help="directory for results.json and results.md "
                        "(default: benchmarks/ for a full run; --quick writes none unless given)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record each ChattyCat run with py-spy into DIR (pip install py-spy)")
    parser.add_argument("--no-strace", action="store_true", help="skip counting send calls")
    parser.add_argument("--no-install", action="store_true",
                        help="do not try apt-get when ngIRCd is missing")
    parser.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                        help="measure nothing: redo the tables from kept runs; with several "
                        "files, each scenario's runs come from the last file that has it")
    args = parser.parse_args(argv)
    args.kinds = [k for k in args.servers.split(",") if k]
    unknown = set(args.kinds) - set(ALL_SERVER_KINDS)
    if unknown:
        parser.error(f"unknown server {', '.join(sorted(unknown))}")
    return args


def plan(chosen: set[str], kinds: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(scenario, servers) in running order; F is read from A's two ChattyCat columns.

    The cluster's scenarios run only when some cluster server was asked for.
    """
    steps = []
    cluster = any(k in CLUSTER_KINDS for k in kinds)
    for scenario in RUN_ORDER:
        wanted = [k for k in kinds_for(scenario) if k in kinds]
        if scenario in CLUSTER_RUN_ORDER and not cluster:
            continue
        if scenario == "A" and "A" not in chosen:
            wanted = [k for k in wanted if "F" in chosen and k.startswith("chattycat")]
        elif scenario != "A" and scenario not in chosen:
            continue
        if wanted:
            steps.append((scenario, wanted))
    return steps


def run_all(ctx: Context, steps: list[tuple[str, list[str]]], runs: int,
            notes: list[str]) -> list[dict[str, Any]]:
    """Every run; servers interleaved within a repetition so that noise hits all alike.

    SIGINT or SIGTERM ends the runs early: what was measured so far is kept.
    """
    rows: list[dict[str, Any]] = []
    scenario = "-"
    try:
        for scenario, kinds in steps:
            for run in range(1, runs + 1):
                for kind in kinds:
                    rows += _one(ctx, scenario, kind, run, notes, traced=False)
            if ctx.strace and scenario in TRACED:
                for kind in kinds:
                    rows += _one(ctx, scenario, kind, 1, notes, traced=True)
    except KeyboardInterrupt:
        notes.append(f"interrupted during scenario {scenario}, after {len(rows)} runs: "
                     "the tables show those alone")
        print(f"  {notes[-1]}", file=sys.stderr, flush=True)
    return rows


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through every finally: loadgens and servers stop


@contextlib.contextmanager
def machine_lock(wait: bool) -> Iterator[None]:
    """One full run at a time on this machine: two would share the cores and both be wrong."""
    path = os.path.join(tempfile.gettempdir(), "chattycat-benchmark.lock")
    with open(path, "a+") as lock:
        if wait:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("another full benchmark run is going on: waiting for it to end",
                      file=sys.stderr, flush=True)
                fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _one(ctx: Context, scenario: str, kind: str, run: int, notes: list[str],
         traced: bool) -> list[dict[str, Any]]:
    label = f"{scenario} {kind}{' (strace)' if traced else ''} run {run}"
    print(f"running {label} ...", file=sys.stderr, flush=True)
    try:
        row = measure(ctx, scenario, kind, run, traced)
    except (RuntimeError, OSError) as exc:
        notes.append(f"{label} failed: {str(exc).strip().splitlines()[0] if str(exc) else exc!r}")
        print(f"  {notes[-1]}", file=sys.stderr, flush=True)
        return []
    keys = {"C": ("held", "rss_kib_per_conn", "setup_s"), "D": ("storm_ready_s", "setup_s")}.get(
        scenario, ("deliveries_per_s", "all_p99_ms", "server_cpu_pct", "loadgen_cpu_pct",
                   "frames_per_send"))
    shown = {k: row[k] for k in (*keys, "errors", "closed", "server_errors")
             if row.get(k) is not None}
    print("  " + ", ".join(f"{k} {v:,.2f}" for k, v in shown.items()), file=sys.stderr,
          flush=True)
    if row["complaints"]:
        notes.append(f"{label}: the load generator said: " + " / ".join(row["complaints"]))
        print(f"  {notes[-1]}", file=sys.stderr, flush=True)
    if row["server_errors"]:
        notes.append(f"{label}: the server logged {row['server_errors']} errors, the first: "
                     + " / ".join(row["server_said"]))
        print(f"  {notes[-1]}", file=sys.stderr, flush=True)
    return [row]


def profile_dir(wanted: Path | None, notes: list[str]) -> str | None:
    """Where py-spy profiles go (--profile), if py-spy is there to take them."""
    if wanted is None:
        return None
    if shutil.which("py-spy") is None:
        notes.append("py-spy is not installed: no profiles")
        return None
    wanted.mkdir(parents=True, exist_ok=True)
    return str(wanted)


def document(info: dict[str, Any], meds: list[dict[str, Any]], kinds: Sequence[str],
             notes: Sequence[str]) -> str:
    """The markdown report."""
    head = (f"{info['date']}, {info['cores']} cores ({info['cpu']}), {info['system']}, "
            f"Python {info['python']}, SQLite {info['sqlite']}; server pinned to core "
            f"{info['server_core']}, load generator to core {info['loadgen_core']}; "
            f"RLIMIT_NOFILE {info['nofile']}; load average {info['load_average_start']:.2f} at "
            f"the start, {info['load_average_end']:.2f} at the end; "
            f"{info['runs']} run(s) per scenario and server, medians shown"
            f"{' (smoke test sizes)' if info['quick'] else ''}.")
    parts = ["# ChattyCat benchmark results", head]
    if notes:
        parts.append("Notes:\n\n" + "\n".join(f"- {n}" for n in notes))
    smoke = " Smoke-test sizes: the targets apply to the full run only." if info["quick"] else ""
    if any(m["scenario"] in "ABCDEFG" for m in meds):
        parts += ["## Side by side", summary(meds, kinds) + ("\n\n" + smoke.strip() if smoke
                                                              else "")]
    parts.append("A figure marked ≥ or ≤ was taken with the load generator above 80% of its "
                 "core: the server may do more (a higher rate, a shorter time or latency). On "
                 "IRC a message to a room of N is N-1 deliveries (no echo to the sender), on "
                 "ChattyCat N. See README.md for every column.")
    if cluster := scale_out(meds):
        parts.append(cluster)
    parts += ["## Every figure", details(meds)]
    return "\n\n".join(parts) + "\n"


def prepare(args: argparse.Namespace, chosen: set[str], kinds: list[str], tmp: str,
            info: dict[str, Any], notes: list[str]) -> Context | None:
    """Build the load generator and find what each scenario needs; None if nothing can run.

    ``chosen`` and ``kinds`` lose what cannot run here, and ``notes`` says why.
    """
    loadgen, why = build_loadgen(tmp)
    if loadgen is None:
        print(f"benchmark skipped: {why}", file=sys.stderr)
        return None
    if why:
        notes.append(f"{why}: scenario G is skipped")
        chosen.discard("G")
    ngircd = None
    if "ngircd" in kinds:
        ngircd, why = find_ngircd(install=not args.no_install)
        if ngircd is None:
            notes.append(f"{why}: its columns are empty")
            kinds.remove("ngircd")
    tls = make_cert(tempfile.mkdtemp(dir=tmp)) if "G" in chosen else None
    if "G" in chosen and tls is None:
        notes.append("neither trustme nor openssl is available: scenario G is skipped")
        chosen.discard("G")
    cluster = [k for k in kinds if k in CLUSTER_KINDS]
    if cluster and chosen & set(CLUSTER_RUN_ORDER) and redis_binary() is None:
        notes.append("redis-server is not installed (Debian package redis-server): "
                     "scenarios R-T are skipped")
        chosen -= set(CLUSTER_RUN_ORDER)
        for kind in cluster:
            kinds.remove(kind)
    strace = not (args.quick or args.no_strace) and shutil.which("strace") is not None
    if not (args.quick or args.no_strace or strace):
        notes.append("strace is not installed: frames per send call are not counted")
    sizes = QUICK if args.quick else full_sizes(info["nofile"])
    if args.duration:
        sizes = replace(sizes, duration=args.duration)
    return Context(loadgen, sizes, tmp, info["server_core"], info["loadgen_core"], tls, ngircd,
                   reuse_servers=args.quick, strace=strace,
                   profile_dir=profile_dir(args.profile, notes),
                   t_kinds=tuple(k for k in kinds_for("T") if k in kinds))


def render(paths: Sequence[Path], out: Path | None) -> int:
    """Redo results.md (and, from several files, a merged results.json) from kept runs."""
    saved = [json.loads(path.read_text()) for path in paths]
    latest = {row["scenario"]: i for i, data in enumerate(saved) for row in data["runs"]}
    rows = [row for i, data in enumerate(saved) for row in data["runs"]
            if latest[row["scenario"]] == i]
    info = saved[-1]["machine"]
    notes = [n for i, data in enumerate(saved) for n in data["notes"] if _still_true(n, i, latest)]
    if len(saved) > 1:
        used = [f"{''.join(sorted(s for s, j in latest.items() if j == i))} "
                f"of {data['machine']['date']}"
                for i, data in enumerate(saved) if i in latest.values()]
        notes.append("scenarios merged from separate runs: " + "; ".join(used))
    kinds = [k for k in SERVER_KINDS if any(r["server"] == k for r in rows)]
    meds = medians(rows)
    text = document(info, meds, kinds, notes)
    target = out or paths[0].parent
    target.mkdir(parents=True, exist_ok=True)
    (target / "results.md").write_text(text)
    if len(saved) > 1:
        (target / "results.json").write_text(json.dumps(
            {"machine": info, "notes": notes, "medians": meds, "runs": rows}, indent=1) + "\n")
    print(text)
    return 0


def _still_true(note: str, source: int, latest: dict[str, int]) -> bool:
    """False for a note that a run was cut short in a scenario a later file replaced."""
    cut = re.match(r"interrupted during scenario (\w)", note)
    return cut is None or latest.get(cut.group(1), source) == source


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args.render, args.out)
    signal.signal(signal.SIGTERM, _interrupt)
    with machine_lock(wait=not args.quick):  # a smoke test's figures do not matter
        return measure_all(args)


def measure_all(args: argparse.Namespace) -> int:
    """Measure, print the tables, and write them (see --out)."""
    chosen, kinds = set(args.only or SCENARIOS), list(args.kinds)
    nofile = raise_nofile()
    server_core, loadgen_core = pick_cores()
    print(f"RLIMIT_NOFILE raised to {nofile}; server on core {server_core}, load generator "
          f"on core {loadgen_core}", file=sys.stderr, flush=True)
    if loadgen_core is not None:
        os.sched_setaffinity(0, {loadgen_core})  # keep this process off the server's core
    notes: list[str] = []
    if server_core is None:
        notes.append("fewer than two cores: server and load generator are not pinned")
    info = machine() | {"server_core": server_core, "loadgen_core": loadgen_core,
                        "nofile": nofile, "quick": args.quick}
    tmp = tempfile.mkdtemp(prefix="chattycat-bench-")
    try:
        ctx = prepare(args, chosen, kinds, tmp, info, notes)
        if ctx is None:
            return 3
        runs = args.runs or ctx.sizes.runs
        try:
            rows = run_all(ctx, plan(chosen, kinds), runs, notes)
        finally:
            ctx.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info |= {"runs": runs, "load_average_end": os.getloadavg()[0], "sizes": vars(ctx.sizes)}
    meds = medians(rows)
    text = document(info, meds, kinds, notes)
    print(text)
    out = args.out or (None if args.quick else HERE)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(text)
        (out / "results.json").write_text(json.dumps(
            {"machine": info, "notes": notes, "medians": meds, "runs": rows}, indent=1) + "\n")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
