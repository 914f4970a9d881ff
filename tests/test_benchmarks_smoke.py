"""The benchmark still runs: ``benchmarks/run.py --quick`` end to end, in seconds.

Timings are not asserted (the machine is shared); what is asserted is that
every scenario ran against ChattyCat and produced its figures without errors,
so the harness cannot rot unnoticed.
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
        assert row["errors"] == 0, row
        if row["scenario"] in ("A", "B", "E", "G"):
            assert row["deliveries_per_s"], row
        if row["scenario"] == "C":
            assert row["held"] == row["clients"], row
        if row["scenario"] == "D":
            assert row["storm_ready_s"] is not None, row
    assert "## Side by side" in (tmp_path / "results.md").read_text()
