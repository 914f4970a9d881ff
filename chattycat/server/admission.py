"""Who may connect: per-address limits, sans-IO, for every front door.

One address (a NAT'd classroom, or one attacker) must not hold every slot of
the server (``--max-connections``), and connections that never say ``hello``
are the cheapest way to try. So each address, counted for IPv6 per /64 (one
customer's prefix, which a host can fill with addresses at will), may hold at
most ``max_per_address`` connections, of which at most
``max_unwelcomed_per_address`` have not completed ``hello``, and may open new
ones at ``opens_per_s`` sustained (``opens_burst`` at once), which bounds how
fast one address can mint new names. The class does no I/O and reads no
clock: a door reports ``opened``/``welcomed``/``closed`` with the time.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from chattycat.protocol.flood import TokenBucket

__all__ = ["AddressLimits", "Admission", "LogThrottle", "address_key"]

IPV6_PREFIX_BITS = 64
# Addresses with no connection whose open rate is still remembered (so that
# closing everything does not reset it); the oldest are forgotten first.
MAX_IDLE_ADDRESSES = 10_000


def address_key(peer: object) -> str:
    """The key an address is counted under: IPv4 as is, IPv6 by its /64."""
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    if not isinstance(host, str):
        return "?"  # a Unix socket or unknown peer: one shared key
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX_BITS}", strict=False))
    return str(address)


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to a new connection: admitted, or why not."""

    admitted: bool
    reason: str = ""


@dataclass(slots=True)
class _Address:
    connections: int
    unwelcomed: int
    opens: TokenBucket


class AddressLimits:
    """Connection counts per address key; None for a limit means no limit."""

    def __init__(self, max_per_address: int | None = 100,
                 max_unwelcomed_per_address: int | None = 10,
                 opens_per_s: float = 20.0, opens_burst: int = 40) -> None:
        self.max_per_address = max_per_address
        self.max_unwelcomed = max_unwelcomed_per_address
        self.opens_per_s = opens_per_s
        self.opens_burst = opens_burst
        self._addresses: dict[str, _Address] = {}
        self._unwelcomed: dict[object, str] = {}  # connection -> key, until welcomed
        self._welcomed: dict[object, str] = {}
        self._idle: OrderedDict[str, TokenBucket] = OrderedDict()

    def opened(self, conn: object, key: str, now: float) -> Admission:
        """A new connection from ``key``: count it, or say why it is refused."""
        entry = self._addresses.get(key)
        if entry is None:
            opens = self._idle.pop(key, None)
            if opens is None:
                opens = TokenBucket(self.opens_per_s, self.opens_burst, now)
            entry = _Address(0, 0, opens)
        if self.max_per_address is not None and entry.connections >= self.max_per_address:
            return Admission(False, f"too many connections from {key}")
        if self.max_unwelcomed is not None and entry.unwelcomed >= self.max_unwelcomed:
            return Admission(False, f"too many connections from {key} without hello")
        if not entry.opens.allow(now):
            if entry.connections == 0:
                self._forget(key, entry)
            return Admission(False, f"connections from {key} opened too fast")
        entry.connections += 1
        entry.unwelcomed += 1
        self._addresses[key] = entry
        self._unwelcomed[conn] = key
        return Admission(True)

    def is_unwelcomed(self, conn: object) -> bool:
        """Whether ``conn`` was admitted and has not completed hello."""
        return conn in self._unwelcomed

    def welcomed(self, conn: object) -> None:
        """``conn`` completed hello: it no longer counts as unwelcomed."""
        key = self._unwelcomed.pop(conn, None)
        if key is not None:
            self._addresses[key].unwelcomed -= 1
            self._welcomed[conn] = key

    def closed(self, conn: object) -> None:
        """``conn`` is gone."""
        key = self._unwelcomed.pop(conn, None)
        if key is not None:
            self._addresses[key].unwelcomed -= 1
        else:
            key = self._welcomed.pop(conn, None)
        if key is None:
            return
        entry = self._addresses[key]
        entry.connections -= 1
        if entry.connections == 0:
            del self._addresses[key]
            self._forget(key, entry)

    def _forget(self, key: str, entry: _Address) -> None:
        self._idle[key] = entry.opens
        self._idle.move_to_end(key)
        while len(self._idle) > MAX_IDLE_ADDRESSES:
            self._idle.popitem(last=False)

    def counts(self, key: str) -> tuple[int, int]:
        """(connections, of which not yet welcomed) from ``key``."""
        entry = self._addresses.get(key)
        return (0, 0) if entry is None else (entry.connections, entry.unwelcomed)


class LogThrottle:
    """At most one log line per ``interval_s`` for an event; the rest are counted.

    ``should_log(now)`` says whether to log now and how many were held back
    since the last line, so the line can summarise them.
    """

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._last: float | None = None
        self._held_back = 0

    def should_log(self, now: float) -> tuple[bool, int]:
        """(log this one?, how many were held back before it)."""
        if self._last is not None and now - self._last < self.interval_s:
            self._held_back += 1
            return False, 0
        self._last, held_back, self._held_back = now, self._held_back, 0
        return True, held_back
