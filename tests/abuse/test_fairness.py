"""Finding 2: floods flood control never charged for do not starve a quiet client.

The figure for docs/security.md (p99 under 50 ms) comes from
``benchmarks/fairness.py``; this test asserts a looser bound so that a busy CI
machine does not fail it.
"""

from __future__ import annotations

import pytest

from tests.abuse.flood import FLOODS, percentile, under_flood
from tests.conftest import StartServer

pytestmark = pytest.mark.timeout(60)

P99_BOUND_S = 0.25


@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_a_quiet_client_is_served_while_eight_connections_flood(
    server_process: StartServer, kind: str,
) -> None:
    server = server_process("--db", ":memory:")
    times, _connects = under_flood(server.port, kind, connections=8, seconds=2.0)
    assert len(times) >= 20
    assert percentile(times, 0.99) < P99_BOUND_S, (
        f"p99 {percentile(times, 0.99) * 1000:.1f} ms under a {kind} flood")
    assert server.proc.poll() is None
