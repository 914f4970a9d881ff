"""A token bucket for flood control (PROTOCOL section 8); time is passed in."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows ``burst`` requests at once and ``rate_per_s`` sustained; rate 0 allows all."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._stamp = now

    def allow(self, now: float) -> bool:
        """Take one token if there is one; False means the request is over the limit."""
        if self.rate_per_s <= 0:
            return True
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def charge(self, cost: float, now: float) -> None:
        """Take ``cost`` more tokens for work already allowed, going into debt if need be.

        A request whose cost grows with its size (a resume naming many rooms)
        is carried out once, then the requests after it wait until the debt
        is paid back at ``rate_per_s``.
        """
        if self.rate_per_s > 0:
            self._refill(now)
            self._tokens -= cost

    def _refill(self, now: float) -> None:
        # A clock that steps backwards refills nothing rather than going negative.
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)
