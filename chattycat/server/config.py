"""What ``chattycat serve`` can set, and where the server reads the time."""

from __future__ import annotations

import time
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field

from chattycat.net.contexts import SSLContext
from chattycat.net.loop import EventLoop
from chattycat.server.effects import Now
from chattycat.server.model import RoomsConfig

__all__ = ["Clock", "RedisSettings", "ServerConfig", "SystemClock"]

# With heartbeats off, how long pending output may stand still (see ServerConfig).
STALL_TIMEOUT_WITHOUT_HEARTBEAT_S = 60.0


class Clock(typing.Protocol):
    """Where the server reads the time: both clocks at once."""

    def now(self) -> Now:
        """The current instant."""
        ...


class SystemClock:
    """The loop's monotonic clock for deadlines, the system clock for timestamps."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop

    def now(self) -> Now:
        """The current instant."""
        return Now(self._loop.time(), time.time())


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where a cluster node keeps its shared state, and how safely."""

    url: str
    # "everysec": Redis's AOF is fsynced once a second; "always": a message is
    # acknowledged only once Redis reports it on disk.
    durability: str = "everysec"
    # Names this node to the others (heartbeats, name ownership); "" means
    # the server picks one (host name and pid).
    node_name: str = ""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``chattycat serve`` can set."""

    host: str | Sequence[str] | None = None
    port: int = 9999
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    max_outbuf_bytes: int = 1024 * 1024
    max_connections: int | None = None
    backlog: int = 1024
    ssl_context: SSLContext | None = None
    retain_days: float | None = None
    # Per address (IPv6: per /64): connections, and of those not yet past hello.
    max_per_ip: int | None = 100
    max_unwelcomed_per_ip: int | None = 10
    # New connections per second per address (twice as many at once); 0: no limit.
    ip_open_rate_per_s: float = 20.0
    # Drop a connection whose pending output has not moved for this long even
    # while it keeps pinging; None: two heartbeats.
    stall_timeout_s: float | None = None
    # Join the cluster kept in this Redis database instead of a local store.
    redis: RedisSettings | None = None
    # Share the listening port with sibling processes (``serve --workers``).
    reuse_port: bool = False

    def stall_timeout(self) -> float:
        """Seconds a connection's pending output may stand still before it is dropped."""
        if self.stall_timeout_s is not None:
            return self.stall_timeout_s
        heartbeat = self.rooms.heartbeat_s
        return 2 * heartbeat if heartbeat > 0 else STALL_TIMEOUT_WITHOUT_HEARTBEAT_S
