"""A cluster node reading Redis's streams: rooms from their last delivered seq, events in order.

:class:`StreamFollower` is the half of a node's wiring that listens. Nothing
it reads is trusted to arrive by itself: a wake-up on ``cc:wake`` (or a
``say``'s own reply) only says that a room's stream or the event stream has
something new, and the follower then reads the stream from where the node
stopped (the room's cursor, the last event id). After a lost connection it
reads every followed room and the event stream the same way, so a lost
wake-up costs a delay and never a message. If the node fell so far behind
that the events it needs were trimmed, it reads the cluster afresh (a
snapshot) and the machine reconciles.

It also keeps the two kinds of stream in step: a request waiting for a
:class:`~chattycat.server.cluster.ops.Settle` and a room's message stored
after an event go on once the events before them are applied (or at once if
the event stream cannot be read), and a part, sign-out or nick is applied
only once the rooms it names are shown as far as they stood then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chattycat.net.redis import RedisClient
from chattycat.protocol.messages import Message
from chattycat.server.cluster import codec
from chattycat.server.cluster.ops import Remote
from chattycat.server.cluster.state import ClusterState
from chattycat.server.effects import Effect

__all__ = ["FETCH_COUNT", "StreamFollower"]

log = logging.getLogger("chattycat.server.redis_follow")

#: Entries read per XRANGE (rooms and events); more are read in turn.
FETCH_COUNT = 1000

Step = Callable[[ClusterState, Any], list[Effect]]


class StreamFollower:
    """Reads the room streams a node follows and the cluster's event stream."""

    def __init__(self, client: RedisClient, machine: ClusterState,
                 input_: Callable[[Step], None], script: Callable[..., list[Any]],
                 last_event: str) -> None:
        self._client = client
        self._machine = machine
        self._input = input_
        self._script = script
        self._last_event = last_event
        self._events_busy = False
        self._events_again = False
        self._fetching: dict[str, int] = {}  # room -> highest seq known to exist
        # Rooms to read once more when their read in flight is answered: it was
        # sent before a catch-up, so it may not have seen what the catch-up is for.
        self._again: set[str] = set()
        # What waits for the event stream to be applied up to an event id: settles,
        # and room messages stored after events not applied yet.
        self._settling: list[tuple[tuple[int, int], Callable[[], None]]] = []
        # Events read but not applied yet: the first waits for rooms' messages
        # from before it (see _apply_events); no more are read meanwhile.
        self._held: list[codec.Entry] = []
        self._more = False  # the last read was full: read on after the held ones

    def arrived(self, room: str, seq: int, message: Message | None,
                after: str = "0-0") -> None:
        """Message ``seq`` of ``room`` exists (``message`` if we have it, stored after
        event ``after``): deliver in order."""
        cursor = self._machine.cursor(room)
        if cursor is None or seq <= cursor:
            return
        if (message is not None and seq == cursor + 1 and room not in self._fetching
                and self._applied(after)):
            self._input(lambda st, now: st.room_messages(room, [message], now))
            return
        self._fetch_room(room, seq)

    def read_on(self, room: str) -> None:
        """Read ``room`` on from its cursor, whatever the wake-ups said: one may have
        gone unheard (before following began, or while the channel was down)."""
        cursor = self._machine.cursor(room)
        if cursor is not None:
            self._fetch_room(room, cursor, again=True)  # nothing known beyond it: read once

    def _fetch_room(self, room: str, seq: int, *, again: bool = False) -> None:
        if room in self._fetching:
            self._fetching[room] = max(self._fetching[room], seq)
            if again:
                self._again.add(room)
            return
        cursor = self._machine.cursor(room)
        if cursor is None:
            return
        self._fetching[room] = seq

        def answered(reply: Any) -> None:
            if isinstance(reply, Exception):
                self._room_read(room, seq, None, full=False)
                return
            messages, after = codec.decode_messages(room, reply)
            full = len(reply) == FETCH_COUNT
            ready = next((i for i, mark in enumerate(after) if not self._applied(mark)),
                         len(messages))
            if ready == len(messages):
                self._room_read(room, seq, messages, full=full)
                return
            # The rest is shown only after the events before it (its sender's
            # sign-in, join or nick), and the room is read no further until then.
            # What may go now does: an event can be waiting for it.
            if ready:
                self._deliver(room, messages[:ready])
            rest = messages[ready:]
            self.when_read(after[-1], lambda: self._room_read(room, seq, rest, full=full))

        self._client.call(["XRANGE", f"cc:room:{room}", f"(0-{cursor}", "+", "COUNT",
                           FETCH_COUNT], answered)

    def _room_read(self, room: str, seq: int, messages: list[Message] | None, *,
                   full: bool) -> None:
        """A read of ``room`` is answered (None: it failed): deliver, and read on if owed."""
        wanted = self._fetching.pop(room, seq)
        again = room in self._again
        self._again.discard(room)
        if messages is None:
            if again:  # asked for since: the link may be back already
                self._fetch_room(room, wanted)
            return  # otherwise caught up on the next wake-up or reconnect
        self._deliver(room, messages)
        now_at = self._machine.cursor(room)
        if now_at is not None and (again or full or wanted > now_at):
            self._fetch_room(room, max(wanted, now_at))  # not now_at + 1: no empty loop

    def _shown(self, room: str) -> float:
        """How far ``room`` is shown here (infinitely far if this node does not follow it)."""
        cursor = self._machine.cursor(room)
        return float("inf") if cursor is None else cursor

    def _deliver(self, room: str, messages: list[Message]) -> None:
        self._input(lambda state, now: state.room_messages(room, messages, now))
        if self._held:
            self._apply_events()

    def woken(self, channel: bytes, data: bytes) -> None:
        """A wake-up from ``cc:wake``: read what it points at."""
        if data == b"e":
            self.fetch_events()
        elif data[:1] == b"r":
            room, _, seq = data[1:].decode().partition(" ")
            if seq.isdigit():
                self.arrived(room, int(seq), None)

    def fetch_events(self) -> None:
        """Read the event stream after the last event seen (a timer calls it too)."""
        if self._events_busy:
            self._events_again = True
            if self._held:
                self._apply_events()  # a room it waits for may have been left since
            return
        if not self._client.connected:
            return
        self._events_busy, self._events_again = True, False
        self._client.call(self._script("events", self._last_event, FETCH_COUNT),
                          self._events_read)

    def when_read(self, event_id: str, then: Callable[[], None]) -> None:
        """Call ``then`` once the event stream is read up to ``event_id``."""
        if self._applied(event_id):
            then()
            return
        self._settling.append((codec.event_order(event_id), then))
        if self._client.connected:
            self.fetch_events()
        else:
            self.release()

    def _applied(self, event_id: str) -> bool:
        """Whether the events up to ``event_id`` are applied here (the usual case,
        nothing newer, costs a string comparison)."""
        return (event_id == self._last_event
                or codec.event_order(event_id) <= codec.event_order(self._last_event))

    def release(self) -> None:
        """Let everything waiting for the event stream go on: it cannot be read now."""
        self._go_on(all_=True)

    def _go_on(self, *, all_: bool = False) -> None:
        if not self._settling:
            return
        read = codec.event_order(self._last_event)
        ready = [then for at, then in self._settling if all_ or at <= read]
        self._settling = [] if all_ else [w for w in self._settling if w[0] > read]
        for then in ready:
            then()

    def _events_read(self, reply: Any) -> None:
        if isinstance(reply, Exception):
            self._events_busy = False
            self.release()
            return
        gap, entries = int(reply[0]), reply[1]
        if gap:
            self._events_busy = False
            log.warning("cluster: this node fell behind the event stream; reading the "
                        "cluster afresh")
            self.resync()
            return
        self._held, self._more = list(entries), len(entries) == FETCH_COUNT
        self._apply_events()

    def _apply_events(self) -> None:
        """Apply the events read, in order, as far as they may go now.

        An event about a user's rooms (a part, a sign-out, a nick) says where
        those rooms stood when it happened. If this node follows one of them
        and has not shown it that far, the event waits: the room is read up to
        there first, so that members here see the user's last messages before
        the user leaves or changes name, as on one server.
        """
        while self._held:
            entry = self._held[0]
            behind = [(room, seq) for room, seq in codec.event_marks(entry)
                      if self._shown(room) < seq]
            if behind:
                self._go_on()
                for room, seq in behind:
                    self._fetch_room(room, seq)
                return  # _deliver comes back here
            del self._held[0]
            self._last_event = entry[0].decode()
            event = codec.decode_event(entry)
            if event is not None:
                self._remote(event)
        self._events_busy = False
        self._go_on()
        if self._events_again or self._more:
            self.fetch_events()

    def _remote(self, event: Remote) -> None:
        self._input(lambda state, now: state.remote(event, now))

    def resync(self) -> None:
        """Read the cluster afresh; the machine reconciles its view with it."""
        self._events_busy = True

        def answered(reply: Any) -> None:
            self._events_busy = False
            if isinstance(reply, Exception):
                self.release()
                return
            last, users, _accounts = codec.decode_snapshot(reply)
            self._last_event, self._held, self._more = last, [], False
            self._input(lambda state, now: state.resync(users, now))
            self._go_on()
            if self._settling or self._events_again:
                self.fetch_events()  # asked for while the snapshot was out: may be newer

        self._client.call(self._script("snapshot"), answered)

    def catch_up(self) -> None:
        """The wake-up channel is (back) up: read whatever was missed meanwhile."""
        self.fetch_events()
        for room in self._machine.cursors():
            self.read_on(room)
