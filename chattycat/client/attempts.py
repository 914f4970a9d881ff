"""Sans-IO choice of where the client connects next, and how long it waits first.

A client may know several addresses of one chat service (cluster nodes,
``chattycat join --server a:9999 --server b:9999``). It tries them in
order; when a connection fails or is lost it moves on to the next one, round
robin. Moving on costs nothing: a node that died should cost the user one
reconnect, so there is no pause before trying the *next* address. Only once
every address has failed since the last welcome does the client back off
(:func:`~chattycat.client.liveness.retry_delay_s`), so a service that is down
altogether is not hammered. With one address every failure ends a round, which
is the single-server behaviour: a pause before each retry.

Nothing here reads a clock, a socket or a random number: the caller reports
what happened and passes the jitter in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chattycat.client.liveness import retry_delay_s

__all__ = ["DEFAULT_PORT", "Address", "Attempts", "NextAttempt", "parse_address"]

DEFAULT_PORT = 9999


@dataclass(frozen=True, slots=True)
class Address:
    """A server's TCP address."""

    host: str
    port: int

    def __str__(self) -> str:
        # An IPv6 literal is bracketed, as in a URL, so the port stays readable.
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """``host:port``, ``host``, ``[v6]:port`` or ``[v6]`` -> Address (ValueError if malformed)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host or (rest and not rest.startswith(":")):
            raise ValueError(f"bad server address {text!r}: write IPv6 as [::1]:9999")
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:
        raise ValueError(f"bad server address {text!r}: write IPv6 as [::1]:9999")
    else:
        host, _sep, port_text = text.partition(":")
        if _sep and not port_text:
            raise ValueError(f"bad server address {text!r}: no port after ':'")
    if not host:
        raise ValueError(f"bad server address {text!r}: no host")
    if not port_text:
        return Address(host, default_port)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"bad server address {text!r}: the port is a number from 1 to 65535")
    return Address(host, int(port_text))


@dataclass(frozen=True, slots=True)
class NextAttempt:
    """What to do after a failure: connect to ``address`` after ``delay_s`` seconds.

    ``round_failed`` says every address has now failed since the last
    welcome (or since the start): a client that was never welcomed gives up
    then instead of retrying.
    """

    address: Address
    delay_s: float
    round_failed: bool


class Attempts:
    """Which address to try next and how long to wait: round robin, backoff per round."""

    def __init__(self, addresses: Sequence[Address]) -> None:
        if not addresses:
            raise ValueError("a client needs at least one server address")
        self.addresses = tuple(addresses)
        self._index = 0
        self._failed_in_round = 0
        self._failed_rounds = 0  # since the last welcome: the backoff exponent
        self.attempt = 0  # connection attempts since the last welcome
        # Why each address failed in the current round, for the final error.
        self.failures: list[tuple[Address, str]] = []

    @property
    def current(self) -> Address:
        """The address being tried (or, once welcomed, the one connected to)."""
        return self.addresses[self._index]

    def welcomed(self) -> None:
        """The server at :attr:`current` welcomed us: the next failure starts afresh."""
        self._failed_in_round = 0
        self._failed_rounds = 0
        self.attempt = 0
        self.failures.clear()

    def failed(self, reason: str, jitter: float) -> NextAttempt:
        """The current address failed (or its connection was lost); where and when next.

        ``jitter`` (0.5-1.0) scales the pause after a whole round, so that
        clients of a restarted service do not all return in the same instant.
        """
        if self._failed_in_round == 0:
            self.failures.clear()
        self.failures.append((self.current, reason))
        self._index = (self._index + 1) % len(self.addresses)
        self._failed_in_round += 1
        self.attempt += 1
        if self._failed_in_round < len(self.addresses):
            return NextAttempt(self.current, 0.0, round_failed=False)
        self._failed_in_round = 0
        delay = retry_delay_s(self._failed_rounds, jitter)
        self._failed_rounds += 1
        return NextAttempt(self.current, delay, round_failed=True)

    def describe_failures(self) -> str:
        """``a:1: refused; b:2: timed out``: why each address of the last round failed."""
        return "; ".join(f"{address}: {reason}" for address, reason in self.failures)
