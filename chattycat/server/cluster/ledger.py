"""A cluster node's ledger: no counters of its own, and reads that keep their place among the ops.

On one server the ledger numbers messages and orders reads behind the batch
they must see. On a cluster node, Redis numbers them, so the only writes left
for the ledger's batches are accounts; and a history read must reach Redis
in its place among the node's ops (a join's history before the ``say`` that
follows it), so a read becomes an op (:class:`~chattycat.server.cluster.ops.Fetch`).
"""

from __future__ import annotations

from chattycat.server.cluster.ops import Fetch, Op
from chattycat.server.effects import Read
from chattycat.server.ledger import Ledger

__all__ = ["ClusterLedger"]


class ClusterLedger(Ledger):
    """A :class:`Ledger` whose reads go into the node's list of ops."""

    def __init__(self, ops: list[Op]) -> None:
        super().__init__()
        self._ops = ops

    def read(self, read: Read) -> None:
        """Send ``read`` to Redis after everything decided before it."""
        self._ops.append(Fetch(read))
