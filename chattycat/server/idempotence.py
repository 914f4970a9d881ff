"""Idempotence windows: the ids of the last messages each session sent to each room.

PROTOCOL section 5: a ``say`` whose ``id`` matches one of the last 1000 that
the same session sent to that room is not stored again; the original is
resent. Windows belong to sessions, not names: a renamed user keeps its
window, and someone who takes a name that was free does not inherit the
previous holder's (whose ids, like ``c-2``, would otherwise swallow the
newcomer's messages). A window is filled from the store the first time it is
needed (after a restart the client's retries must still be recognised) and
then kept up to date here, so the store is read once per session and room.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from chattycat.protocol.messages import Message

__all__ = ["IdWindows"]

Window = OrderedDict[str, int]  # client id -> seq, oldest first


class IdWindows:
    """Windows by (session digest, room), each at most ``size`` ids."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._windows: dict[tuple[str, str], Window] = {}

    def get(self, session: str, room: str) -> Window | None:
        """The window of ``session`` in ``room``; None until it has been loaded."""
        return self._windows.get((session, room))

    def load(self, session: str, room: str, stored: Iterable[Message]) -> Window:
        """Install the window read from the store (messages oldest first)."""
        window: Window = OrderedDict((m.id, m.seq) for m in stored if m.id is not None)
        self._trim(window)
        self._windows[(session, room)] = window
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

    def forget(self, session: str) -> None:
        """Drop every window of ``session``: it is over (expired, or ended for good)."""
        for pair in [pair for pair in self._windows if pair[0] == session]:
            del self._windows[pair]

    def _trim(self, window: Window) -> None:
        while len(window) > self.size:
            window.popitem(last=False)
