"""Fairness under floods (docs/security.md, finding 2): a quiet client's ping round trip.

Starts ``chattycat serve`` (default limits, in-memory history), signs in one
quiet client on 127.0.0.1 that pings every 60 ms, and for each kind of flood
(pings, frames before hello, malformed frames, says over the flood limit)
runs 8 flooding connections from 127.0.0.2 while it measures. Prints p50,
p99 and the worst round trip per kind. The abuse test
(``tests/abuse/test_fairness.py``) runs the same floods for less time and
asserts a looser bound.

    python benchmarks/fairness.py [--seconds 10] [--connections 8] [--python PYTHON]

``--python`` runs the server under another interpreter (another checkout's
virtualenv, say, for a before/after comparison).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.abuse.flood import FLOODS, percentile, under_flood  # noqa: E402

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def start_server(python: str) -> tuple[subprocess.Popen[str], int]:
    """A server on a free port; returns it and its port."""
    proc = subprocess.Popen(
        [python, "-m", "chattycat", "serve", "--host", "127.0.0.1", "--port", "0",
         "--db", ":memory:"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = LISTENING.search(line)
        if match:
            # Keep reading its log in the background so that it never blocks on it.
            subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
            return proc, int(match.group(1))
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    print(f"{'flood':<10} {'pings':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'connects':>9}")
    for kind in ["none", *sorted(FLOODS)]:
        proc, port = start_server(args.python)
        try:
            flooders = 0 if kind == "none" else args.connections
            times, connects = under_flood(port, kind if flooders else "ping", flooders,
                                          args.seconds)
        finally:
            proc.terminate()
            proc.wait(10)
        print(f"{kind:<10} {len(times):>6} {percentile(times, 0.5) * 1e3:>8.2f} "
              f"{percentile(times, 0.99) * 1e3:>8.2f} {max(times) * 1e3:>8.2f} {connects:>9}")


if __name__ == "__main__":
    main()
