"""The benchmark still runs: ``benchmarks/run.py --quick`` end to end, in seconds.

Timings are not asserted (the machine is shared); what is asserted is that
every scenario ran against ChattyCat and produced its figures without errors,
on either side (the server's log is read for ERROR lines too), so the harness
cannot rot unnoticed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"


@pytest.mark.timeout(300)
def test_quick_benchmark_runs_every_scenario(tmp_path: Path) -> None:
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler to build the load generator")
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--servers", "chattycat,chattycat-sqlite",
         "--no-install", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=280, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    rows = [r for r in results["runs"] if not r.get("traced")]
    scenarios = {r["scenario"] for r in rows}
    tls_skipped = any("scenario G is skipped" in note for note in results["notes"])
    expected = {"A", "B", "C", "D", "E"} | (set() if tls_skipped else {"G"})
    assert expected <= scenarios, (scenarios, results["notes"])
    for row in rows:
        assert row["errors"] == 0 and row["server_errors"] == 0, row
        if row["scenario"] in ("A", "B", "E", "G"):
            assert row["deliveries_per_s"], row
        if row["scenario"] == "C":
            assert row["held"] == row["clients"], row
        if row["scenario"] == "D":
            assert row["storm_ready_s"] is not None, row
    assert "## Side by side" in (tmp_path / "results.md").read_text()


CLUSTER_SERVERS = ("chattycat,chattycat-sqlite,chattycat-redis,chattycat-redis-always,"
                   "chattycat-redis-w1,chattycat-redis-w2,chattycat-redis-w4")


@pytest.mark.timeout(300)
def test_quick_benchmark_runs_the_cluster_scenarios(tmp_path: Path) -> None:
    """R, S and T (ChattyCat on Redis) run end to end and record their Redis figures."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler to build the load generator")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "R", "--only", "S", "--only", "T",
         "--servers", CLUSTER_SERVERS, "--no-install", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=280, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    ran = {(r["scenario"], r["server"]) for r in results["runs"]}
    assert ran == {(s, k) for s, kinds in (
        ("R", ("chattycat", "chattycat-redis", "chattycat-redis-w1", "chattycat-redis-w2",
               "chattycat-redis-w4")),
        ("S", ("chattycat-sqlite", "chattycat-redis", "chattycat-redis-always")),
        ("T", ("chattycat", "chattycat-redis"))) for k in kinds}, results["notes"]
    for row in results["runs"]:
        assert row["errors"] == 0 and row["undelivered"] == 0, row
        assert row["server_errors"] == 0, row  # nothing the server logged as an error
        assert row["messages_per_s"] and row["deliveries_per_s"], row
        if row["server"].startswith("chattycat-redis"):
            assert row["redis_cpu_pct"] is not None, row  # Redis's CPU was read
            assert row["mode"] in ("node", "workers", "nodes"), row
            # every client was seen connected to one of the cluster's processes
            assert sum(row["clients_per_process"]) == row["clients"], row
    assert "## Scale-out on Redis" in (tmp_path / "results.md").read_text()
