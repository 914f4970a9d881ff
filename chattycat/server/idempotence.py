"""Idempotence windows: the ids of the last messages each session sent.

PROTOCOL section 5: a ``say`` whose ``id`` matches one of the last 1000 that
the same session sent to that room is not stored again; the original is
resent. Windows belong to sessions, not names: a renamed user keeps its
window, and someone who takes a name that was free does not inherit the
previous holder's (whose ids, like ``c-2``, would otherwise swallow the
newcomer's messages). A window is filled from the store the first time it is
needed (after a restart the client's retries must still be recognised) and
then kept up to date here, so the store is read once per session and room.

Both kinds of window are bounded in total, not only each: thousands of
throwaway names each filling a window must not grow the server without end.
Say windows are a cache of the store (the least recently used go, and are
read again if needed); whisper windows, which nothing stores, keep only what
answering a retry needs (the recipient and the time), never the text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from chattycat.protocol.messages import Message

__all__ = ["IdWindows", "SentWhisper", "WhisperWindows"]

Window = OrderedDict[str, int]  # client id -> seq, oldest first

# Ids held in all say windows together (~100 bytes each): about 20 MB at most.
MAX_SAY_IDS_TOTAL = 200_000
# Whisper ids remembered per session, and in all sessions together.
WHISPER_WINDOW = 100
MAX_WHISPER_IDS_TOTAL = 100_000


class IdWindows:
    """Say windows by (session digest, room), each at most ``size`` ids, ``total`` in all."""

    def __init__(self, size: int, total: int = MAX_SAY_IDS_TOTAL) -> None:
        self.size = size
        self.total = max(total, size)
        self._windows: OrderedDict[tuple[str, str], Window] = OrderedDict()  # LRU first
        self._count = 0

    def get(self, session: str, room: str) -> Window | None:
        """The window of ``session`` in ``room``; None until it has been loaded."""
        window = self._windows.get((session, room))
        if window is not None:
            self._windows.move_to_end((session, room))
        return window

    def load(self, session: str, room: str, stored: Iterable[Message]) -> Window:
        """Install the window read from the store (messages oldest first)."""
        window: Window = OrderedDict((m.id, m.seq) for m in stored if m.id is not None)
        self._trim(window)
        self._drop((session, room))
        self._windows[(session, room)] = window
        self._count += len(window)
        self._evict()
        return window

    def remember(self, window: Window, message_id: str, seq: int) -> None:
        """``message_id`` was just numbered ``seq``."""
        self._count += message_id not in window
        window[message_id] = seq
        self._trim(window)
        self._evict()

    def forget_above(self, room: str, seq: int) -> None:
        """Messages of ``room`` above ``seq`` were never stored after all."""
        for (_key, window_room), window in self._windows.items():
            if window_room == room:
                for message_id in [i for i, s in window.items() if s > seq]:
                    del window[message_id]
                    self._count -= 1

    def forget(self, session: str) -> None:
        """Drop every window of ``session``: it is over (expired, or ended for good)."""
        for pair in [pair for pair in self._windows if pair[0] == session]:
            self._drop(pair)

    def id_count(self) -> int:
        """Ids held in all windows."""
        return self._count

    def _drop(self, pair: tuple[str, str]) -> None:
        window = self._windows.pop(pair, None)
        if window is not None:
            self._count -= len(window)

    def _trim(self, window: Window) -> None:
        while len(window) > self.size:
            window.popitem(last=False)
            self._count -= 1

    def _evict(self) -> None:
        # The least recently used windows go; the store still has their ids,
        # so a later say from that session reads them again.
        while self._count > self.total and len(self._windows) > 1:
            _pair, window = self._windows.popitem(last=False)
            self._count -= len(window)


@dataclass(frozen=True, slots=True)
class SentWhisper:
    """What answering a retried whisper needs: the retry carries the text itself."""

    to: str
    ts: float


class WhisperWindows:
    """Whisper ids by session digest: ``size`` per session, ``total`` in all."""

    def __init__(self, size: int = WHISPER_WINDOW, total: int = MAX_WHISPER_IDS_TOTAL) -> None:
        self.size = size
        self.total = max(total, size)
        self._sessions: OrderedDict[str, OrderedDict[str, SentWhisper]] = OrderedDict()
        self._count = 0

    def get(self, session: str, whisper_id: str) -> SentWhisper | None:
        """The whisper ``session`` sent with ``whisper_id``, if still remembered."""
        window = self._sessions.get(session)
        return None if window is None else window.get(whisper_id)

    def remember(self, session: str, whisper_id: str, sent: SentWhisper) -> None:
        """``session`` just sent ``whisper_id``."""
        window = self._sessions.setdefault(session, OrderedDict())
        self._sessions.move_to_end(session)
        self._count += whisper_id not in window
        window[whisper_id] = sent
        while len(window) > self.size:
            window.popitem(last=False)
            self._count -= 1
        while self._count > self.total and len(self._sessions) > 1:
            _session, oldest = self._sessions.popitem(last=False)  # least recently active
            self._count -= len(oldest)

    def forget(self, session: str) -> None:
        """``session`` is over: its window goes with it."""
        window = self._sessions.pop(session, None)
        if window is not None:
            self._count -= len(window)

    def id_count(self) -> int:
        """Ids held in all windows."""
        return self._count
