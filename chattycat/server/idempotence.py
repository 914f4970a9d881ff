"""Idempotence windows: the ids of the last messages each user sent to each room.

PROTOCOL section 5: a ``say`` whose ``id`` matches one of the sender's last
1000 in that room is not stored again; the original is resent. A window is
filled from the store the first time it is needed (after a restart the
client's retries must still be recognised) and then kept up to date here,
so the store is read once per user and room, not per message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from chattycat.protocol.messages import Message

__all__ = ["IdWindows"]

Window = OrderedDict[str, int]  # client id -> seq, oldest first


class IdWindows:
    """Windows by (sender name key, room), each at most ``size`` ids."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._windows: dict[tuple[str, str], Window] = {}

    def get(self, key: str, room: str) -> Window | None:
        """The window of ``key`` in ``room``; None until it has been loaded."""
        return self._windows.get((key, room))

    def load(self, key: str, room: str, stored: Iterable[Message]) -> Window:
        """Install the window read from the store (messages oldest first)."""
        window: Window = OrderedDict((m.id, m.seq) for m in stored if m.id is not None)
        self._trim(window)
        self._windows[(key, room)] = window
        return window

    def remember(self, window: Window, message_id: str, seq: int) -> None:
        """``message_id`` was just numbered ``seq``."""
        window[message_id] = seq
        self._trim(window)

    def forget_above(self, room: str, seq: int) -> None:
        """Messages of ``room`` above ``seq`` were never stored after all."""
        for (_key, window_room), window in self._windows.items():
            if window_room == room:
                for message_id in [i for i, s in window.items() if s > seq]:
                    del window[message_id]

    def move(self, old_key: str, new_key: str) -> None:
        """Carry a user's windows over a rename.

        A client resending after a reconnect uses the ids it chose before a
        /nick, so the windows follow the user. What the new name's previous
        holder left in memory is replaced: those ids were never this user's.
        """
        for pair in [pair for pair in self._windows if pair[0] == old_key]:
            self._windows[(new_key, pair[1])] = self._windows.pop(pair)

    def forget(self, key: str) -> None:
        """Drop every window of ``key`` (its session is over); reloaded if it returns."""
        for pair in [pair for pair in self._windows if pair[0] == key]:
            del self._windows[pair]

    def _trim(self, window: Window) -> None:
        while len(window) > self.size:
            window.popitem(last=False)
