"""The client's outgoing requests: queued, sent, and waiting for acknowledgement; sans-IO.

:class:`Outbox` is the one owner of every request the client has made and
not finished with:

- *queued*: not written yet. Requests leave in the order they were made,
  through a token bucket a little slower than the server's default flood
  control, so that a backlog sent after a reconnect is paced rather than
  refused.
- *sent*: written; their refs are remembered (a bounded number of them) so
  that an ``error`` can be matched to its request. A ``rate_limited``
  refusal puts the request back in its original place and pauses the queue.
- *pending*: says and whispers, from :meth:`Outbox.put` until the server
  acknowledges them (:func:`acknowledged_ids` of a frame) or refuses them.
  After a lost connection they are queued again, with their original ids.

Time is passed in; nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from itertools import count

from chattycat.protocol.flood import TokenBucket
from chattycat.protocol.messages import (
    Frame,
    History,
    Join,
    Message,
    Part,
    Request,
    Say,
    Whisper,
    WhisperTo,
    name_key,
)

__all__ = [
    "MAX_TRACKED_REFS",
    "RATE_LIMITED_RETRY_S",
    "SEND_BURST",
    "SEND_RATE_PER_S",
    "Outbox",
    "Queued",
    "acknowledged_ids",
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


def acknowledged_ids(frame: Frame, me: str) -> list[str]:
    """The ids of says and whispers that ``frame`` acknowledges (``me``: the user's name)."""
    # PROTOCOL section 5: the sender's copy of its message (live, or inside
    # a resume history) is the acknowledgement; for a whisper, its echo.
    if isinstance(frame, Message):
        return [frame.id] if frame.id is not None else []
    if isinstance(frame, History):
        return [m.id for m in frame.messages if m.id is not None]
    if isinstance(frame, Whisper) and frame.id is not None:
        return [frame.id] if name_key(frame.sender) == name_key(me) else []
    return []


class Outbox:
    """Outgoing requests in creation order, released at the client-side send rate."""

    def __init__(self, now: float) -> None:
        self._order = count(1)
        self._queue: list[Queued] = []  # a heap
        self._sent: OrderedDict[str, Queued] = OrderedDict()
        self._pending: OrderedDict[str, Queued] = OrderedDict()  # by message id
        self._bucket = TokenBucket(SEND_RATE_PER_S, SEND_BURST, now)
        self._paused_until = 0.0

    # -- queries ---------------------------------------------------------------

    def pending_count(self) -> int:
        """Says and whispers not yet acknowledged by the server."""
        return len(self._pending)

    def is_pending(self, message_id: str) -> bool:
        """Whether the say or whisper ``message_id`` still waits for its acknowledgement."""
        return message_id in self._pending

    def queued_count(self) -> int:
        """Requests not written yet."""
        return len(self._queue)

    # -- requests in -----------------------------------------------------------

    def put(self, request: Request) -> None:
        """Queue ``request`` behind every earlier one; a say or whisper is pending too."""
        entry = (next(self._order), request)
        heapq.heappush(self._queue, entry)
        if isinstance(request, Say | WhisperTo):
            if request.id is None:
                raise ValueError("a say or whisper needs an id to be acknowledged")
            self._pending[request.id] = entry

    def acknowledge(self, message_id: str) -> bool:
        """The server acknowledged ``message_id``; whether it was pending."""
        return self._pending.pop(message_id, None) is not None

    def take_sent(self, ref: str) -> Queued | None:
        """The sent request with this ref (forgotten from now on), if remembered."""
        return self._sent.pop(ref, None)

    def refused(self, key: str) -> None:
        """The server refused the request with id or ref ``key``: it is not pending any more."""
        self._pending.pop(key, None)

    # -- requests out ----------------------------------------------------------

    def next_request(self, now: float) -> Request | float | None:
        """The next request to write now, or the seconds to wait, or None when empty.

        A request returned is taken as written: its ref is remembered for
        :meth:`take_sent`.
        """
        if now < self._paused_until:
            return self._paused_until - now
        while self._queue:
            order, request = self._queue[0]
            if isinstance(request, Say | WhisperTo) and request.id not in self._pending:
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

    def retry_later(self, entry: Queued, now: float) -> float:
        """Put a refused request back in its place and pause; the pause in seconds."""
        # Not carried out by the server: it goes again, in its original place.
        heapq.heappush(self._queue, entry)
        self._paused_until = now + RATE_LIMITED_RETRY_S
        return RATE_LIMITED_RETRY_S

    # -- connections -----------------------------------------------------------

    def restart(self, now: float) -> None:
        """A new connection is up: a fresh token bucket and no pause."""
        self._bucket = TokenBucket(SEND_RATE_PER_S, SEND_BURST, now)
        self._paused_until = 0.0

    def requeue_after_loss(self) -> None:
        """After a lost connection: pending says and whispers go again, ahead of the rest."""
        # Join/part requests are superseded by the session's wanted rooms (the
        # client resumes or joins those after welcome); pending says and
        # whispers go again in their original order, then the rest.
        superseded = Say | WhisperTo | Join | Part
        others = [(n, r) for n, r in self._queue if not isinstance(r, superseded)]
        self._queue = [*self._pending.values(), *others]
        heapq.heapify(self._queue)
        self._sent.clear()
