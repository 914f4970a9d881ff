"""The machine's output, in the order it was decided, held back behind what the store owes.

A ``message`` frame is its sender's acknowledgement, so it may leave only once
its batch is committed; and since every member must see a room's events in
the order the server decided them, nothing decided *after* that message may
overtake it either. A history page is the same: the frames a join produced
before asking for history, the history, then what came after.

So the queue holds two kinds of placeholder among the effects: a *barrier*
for a batch not yet committed, and a *slot* for a history read not yet
answered. :meth:`OutputQueue.take` hands out the prefix up to the first
placeholder still open. With a store that answers in the same pass (SQLite,
memory) the whole queue leaves at the end of every pass; with a remote store
output waits one round trip, and is never reordered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from chattycat.protocol.messages import Frame
from chattycat.server.effects import Close, ConnId, Effect, Send

__all__ = ["OutputQueue"]


class _Placeholder:
    """An open place in the queue: a batch to commit or a read to answer."""

    __slots__ = ("done", "effects", "key")

    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.done = False
        self.effects: list[Effect] = []


class OutputQueue:
    """Effects in decision order; those behind an open placeholder wait for it."""

    def __init__(self) -> None:
        self._ready: list[Effect] = []
        self._waiting: deque[Effect | _Placeholder] = deque()
        self._open: dict[tuple[str, int], _Placeholder] = {}
        # Connections that ended while effects for them were waiting: those
        # effects are dropped on the way out rather than sent into the void.
        self._gone: set[ConnId] = set()

    def send(self, conns: tuple[ConnId, ...], frame: Frame) -> None:
        """Queue ``frame`` for ``conns``."""
        if conns:
            (self._waiting if self._waiting else self._ready).append(Send(conns, frame))

    def close(self, conn: ConnId) -> None:
        """Queue the closing of ``conn``, after everything queued for it before."""
        (self._waiting if self._waiting else self._ready).append(Close(conn))

    def barrier(self, batch: int) -> None:
        """Hold back everything queued from now on until ``batch`` is committed."""
        self._place(("batch", batch))

    def slot(self, read: int) -> None:
        """Keep a place for the frames that answer ``read``."""
        self._place(("read", read))

    def _place(self, key: tuple[str, int]) -> None:
        placeholder = _Placeholder(key)
        self._open[key] = placeholder
        self._waiting.append(placeholder)

    def committed(self, batch: int) -> None:
        """``batch`` is durable: what waited for it may go."""
        self._resolve(("batch", batch), [])

    def fill(self, read: int, effects: list[Effect]) -> None:
        """``read`` is answered: ``effects`` take its place in the queue."""
        self._resolve(("read", read), effects)

    def _resolve(self, key: tuple[str, int], effects: list[Effect]) -> None:
        placeholder = self._open.pop(key, None)
        if placeholder is not None:
            placeholder.done, placeholder.effects = True, effects

    def has_barriers(self) -> bool:
        """Whether some batch has yet to be committed."""
        return any(kind == "batch" for kind, _ in self._open)

    def rewrite(self, replace: Callable[[Send], Iterable[Effect]]) -> None:
        """Pass every waiting :class:`Send` through ``replace`` (a failed batch's messages)."""
        rewritten: deque[Effect | _Placeholder] = deque()
        for item in self._waiting:
            if isinstance(item, Send):
                rewritten.extend(replace(item))
            else:
                if isinstance(item, _Placeholder):
                    item.effects = [e for s in item.effects for e in _rewrite_one(s, replace)]
                rewritten.append(item)
        self._waiting = rewritten

    def release_batches(self) -> None:
        """Open every batch barrier (after a failure has rewritten what they held)."""
        for key in [key for key in self._open if key[0] == "batch"]:
            self._resolve(key, [])

    def gone(self, conn: ConnId) -> None:
        """``conn`` has ended: drop what still waits for it."""
        if self._waiting:
            self._gone.add(conn)

    def take(self) -> list[Effect]:
        """Everything that may leave now, in order."""
        waiting = self._waiting
        while waiting:
            head = waiting[0]
            if isinstance(head, _Placeholder):
                if not head.done:
                    break
                self._ready.extend(head.effects)
            else:
                self._ready.append(head)
            waiting.popleft()
        out, self._ready = self._ready, []
        if self._gone:
            out = [kept for e in out if (kept := self._without_gone(e)) is not None]
            if not waiting:
                self._gone.clear()
        return out

    def _without_gone(self, effect: Effect) -> Effect | None:
        gone = self._gone
        if isinstance(effect, Close):
            return None if effect.conn in gone else effect
        conns = tuple(c for c in effect.conns if c not in gone)
        if len(conns) == len(effect.conns):
            return effect
        return Send(conns, effect.frame) if conns else None


def _rewrite_one(effect: Effect, replace: Callable[[Send], Iterable[Effect]]) -> Iterable[Effect]:
    return replace(effect) if isinstance(effect, Send) else (effect,)
