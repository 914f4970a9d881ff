"""Run a ChatState against a store that answers at once, as the wiring does, minus sockets.

:class:`Driven` takes plain float times (both clocks at one value) and carries
out the machine's store work after every input, so a test reads like the
machine had a synchronous store: it sends a request and gets every effect
that follows, acknowledgements included.
"""

from __future__ import annotations

from collections.abc import Callable

from chattycat.errors import ProtocolError, StoreError
from chattycat.protocol.messages import Request
from chattycat.server.effects import ConnId, Effect, Now, Read, StoredState, WriteBatch
from chattycat.server.model import ConnState
from chattycat.server.state import ChatState
from chattycat.server.store import ReadResult, SyncStore


def run_store_work(state: ChatState, store: SyncStore, now: Now,
                   effects: list[Effect]) -> list[Effect]:
    """``effects``, then everything the store's answers release, until the store is idle."""
    out = list(effects)

    def written(batch: WriteBatch, error: StoreError | None) -> None:
        if error is None:
            out.extend(state.committed(batch.id, now))
        else:
            out.extend(state.commit_failed(batch.id, now))

    def read_done(read: Read, result: ReadResult | StoreError) -> None:
        if isinstance(result, StoreError):
            out.extend(state.load_failed(read.read, now))
        else:
            out.extend(state.loaded(read.read, result.messages, result.truncated, now))

    while state.has_store_work():
        work = state.take_store_work()
        if work.batch is not None:
            store.submit(work.batch, written)
        for read in work.reads:
            store.fetch(read, read_done)
    return out


class Driven:
    """A :class:`ChatState` whose inputs take float times and whose store work is done at once."""

    def __init__(self, machine: ChatState, store: SyncStore) -> None:
        self.machine = machine
        self.store = store
        self.config = machine.config

    def _run(self, at: float, call: Callable[[Now], list[Effect]]) -> list[Effect]:
        now = Now(at, at)
        return run_store_work(self.machine, self.store, now, call(now))

    def restore(self, at: float, *, sessions: bool = True) -> None:
        """Load the store's counters (and sessions) into the machine."""
        stored = self.store.load_state()
        if not sessions:
            stored = StoredState(stored.last_seqs)
        self.machine.restore(stored, Now(at, at))

    def connect(self, conn: ConnId, at: float) -> list[Effect]:
        return self._run(at, lambda now: self.machine.connect(conn, now))

    def receive(self, conn: ConnId, request: Request, at: float) -> list[Effect]:
        return self._run(at, lambda now: self.machine.receive(conn, request, now))

    def receive_payload(self, conn: ConnId, payload: bytes, at: float) -> list[Effect]:
        return self._run(at, lambda now: self.machine.receive_payload(conn, payload, now))

    def reject(self, conn: ConnId, exc: ProtocolError, at: float) -> list[Effect]:
        return self._run(at, lambda now: self.machine.reject(conn, exc, now))

    def disconnected(self, conn: ConnId, at: float) -> list[Effect]:
        return self._run(at, lambda now: self.machine.disconnected(conn, now))

    def drop_slow_consumer(self, conn: ConnId, at: float) -> list[Effect]:
        return self._run(at, lambda now: self.machine.drop_slow_consumer(conn, now))

    def tick(self, at: float) -> list[Effect]:
        return self._run(at, lambda now: self.machine.tick(now))

    def shutdown(self) -> list[Effect]:
        return run_store_work(self.machine, self.store, Now(0.0, 0.0), self.machine.shutdown())

    # -- queries pass through ------------------------------------------------------

    def state_of(self, conn: ConnId) -> ConnState:
        return self.machine.state_of(conn)

    def user_names(self) -> list[str]:
        return self.machine.user_names()

    def members(self, room: str) -> list[str]:
        return self.machine.members(room)

    def last_seq(self, room: str) -> int:
        return self.machine.last_seq(room)
