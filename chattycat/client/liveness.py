"""Sans-IO timing of the client's connection: retry backoff and the heartbeat watchdog.

Nothing here reads a clock or draws a random number: the caller passes
``now`` and the jitter in, so the rules can be tested without waiting.
"""

from __future__ import annotations

from enum import Enum, auto

__all__ = ["RETRY_CAP_S", "RETRY_FIRST_S", "Verdict", "Watchdog", "retry_delay_s"]

RETRY_FIRST_S = 1.0
RETRY_CAP_S = 30.0


def retry_delay_s(attempt: int, jitter: float) -> float:
    """Seconds before retry ``attempt`` (0, 1, ...): doubling up to a cap, times ``jitter``."""
    # The jitter (0.5-1.0) spreads clients out after a server restart, so they
    # do not all come back in the same instant.
    # The exponent is capped too: 2.0**1100 overflows a float after a long outage.
    delay: float = min(RETRY_CAP_S, RETRY_FIRST_S * 2.0 ** min(attempt, 32))
    return round(delay * jitter, 2)


class Verdict(Enum):
    """What the watchdog makes of the server's silence."""

    ALIVE = auto()
    PING = auto()  # quiet for a heartbeat: ask the server for a sign of life
    LOST = auto()  # quiet for two heartbeats: the connection is dead


class Watchdog:
    """Judges how long the server has been silent against its heartbeat interval."""

    def __init__(self) -> None:
        self.heartbeat_s = 0.0  # from the server's welcome; 0 means no heartbeats
        self._last_heard = 0.0
        self._ping_out = False

    @property
    def check_every_s(self) -> float:
        """How often :meth:`check` should run: often enough to catch two missed beats."""
        return max(0.05, min(1.0, self.heartbeat_s / 4))

    def heard(self, now: float) -> None:
        """Data arrived from the server (or a connection was just made)."""
        self._last_heard = now
        self._ping_out = False

    def silent_s(self, now: float) -> float:
        """Seconds since the server was last heard."""
        return now - self._last_heard

    def check(self, now: float) -> Verdict:
        """Whether the connection is alive, needs a ping from us, or is lost."""
        silent_s = self.silent_s(now)
        if silent_s >= 2 * self.heartbeat_s:
            return Verdict.LOST
        if silent_s >= self.heartbeat_s and not self._ping_out:
            # The server pings only when *we* are silent; ask ourselves too.
            self._ping_out = True
            return Verdict.PING
        return Verdict.ALIVE
