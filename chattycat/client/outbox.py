"""The client's paced queue of outgoing requests; sans-IO, time is passed in.

Requests leave in the order they were made, through a token bucket a little
slower than the server's default flood control, so that a backlog sent after
a reconnect is paced rather than refused. The refs of requests sent are
remembered (a bounded number of them) so that an ``error`` can be matched to
its request: a ``rate_limited`` refusal puts the request back in its original
place and pauses the queue.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable

from chattycat.protocol.flood import TokenBucket
from chattycat.protocol.messages import Join, Part, Request, Say, WhisperTo

__all__ = [
    "MAX_TRACKED_REFS",
    "RATE_LIMITED_RETRY_S",
    "SEND_BURST",
    "SEND_RATE_PER_S",
    "Outbox",
    "Queued",
]

# Below the server's default flood control (5/s, burst 10), so a backlog sent
# after a reconnect is paced rather than refused.
SEND_RATE_PER_S = 4.0
SEND_BURST = 8
RATE_LIMITED_RETRY_S = 1.0
# Refs of sent requests remembered to match errors; older ones are forgotten.
MAX_TRACKED_REFS = 1000

# A request and its place in the order of creation (lower leaves first).
Queued = tuple[int, Request]


class Outbox:
    """Outgoing requests in creation order, released at the client-side send rate.

    ``is_pending(id)`` says whether a say or whisper still needs sending: one
    acknowledged meanwhile (e.g. inside a resume ``history``) is dropped.
    """

    def __init__(self, now: float, is_pending: Callable[[str], bool]) -> None:
        self._queue: list[Queued] = []  # a heap
        self._sent: OrderedDict[str, Queued] = OrderedDict()
        self._is_pending = is_pending
        self._bucket = TokenBucket(SEND_RATE_PER_S, SEND_BURST, now)
        self._paused_until = 0.0

    def put(self, order: int, request: Request) -> None:
        """Queue ``request`` at its place ``order``."""
        heapq.heappush(self._queue, (order, request))

    def next_request(self, now: float) -> Request | float | None:
        """The next request to write now, or the seconds to wait, or None when empty.

        A request returned is taken as written: its ref is remembered for
        :meth:`take_sent`.
        """
        if now < self._paused_until:
            return self._paused_until - now
        while self._queue:
            order, request = self._queue[0]
            if isinstance(request, Say | WhisperTo) and not (
                request.id is not None and self._is_pending(request.id)
            ):
                heapq.heappop(self._queue)  # acknowledged meanwhile (e.g. by a resume)
                continue
            if not self._bucket.allow(now):
                return 1.0 / SEND_RATE_PER_S
            heapq.heappop(self._queue)
            if isinstance(request.ref, str):
                self._sent[request.ref] = (order, request)
                while len(self._sent) > MAX_TRACKED_REFS:
                    self._sent.popitem(last=False)
            return request
        return None

    def charge(self, now: float) -> None:
        """Count a request written outside the queue against the send rate."""
        self._bucket.allow(now)

    def take_sent(self, ref: str) -> Queued | None:
        """The sent request with this ref (forgotten from now on), if remembered."""
        return self._sent.pop(ref, None)

    def retry_later(self, entry: Queued, now: float) -> float:
        """Put a refused request back in its place and pause; the pause in seconds."""
        # Not carried out by the server: it goes again, in its original place.
        heapq.heappush(self._queue, entry)
        self._paused_until = now + RATE_LIMITED_RETRY_S
        return RATE_LIMITED_RETRY_S

    def restart(self, now: float) -> None:
        """A new connection is up: a fresh token bucket and no pause."""
        self._bucket = TokenBucket(SEND_RATE_PER_S, SEND_BURST, now)
        self._paused_until = 0.0

    def requeue(self, pending: Iterable[Queued]) -> None:
        """After a lost connection: queue ``pending`` again, ahead of what was not sent."""
        # Join/part requests are superseded by the wanted-room set (the client
        # joins those after welcome); pending says and whispers go again in
        # their original order, then the rest.
        superseded = Say | WhisperTo | Join | Part
        others = [(n, r) for n, r in self._queue if not isinstance(r, superseded)]
        self._queue = [*pending, *others]
        heapq.heapify(self._queue)
        self._sent.clear()
