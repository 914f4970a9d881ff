"""What the abuse tests share: raw sockets from another loopback address, frames, memory.

Attackers connect from ``127.0.0.2`` (any 127/8 address reaches a server on
127.0.0.1 under Linux) so that per-address limits tell them from the
legitimate client on ``127.0.0.1``, as they would tell two hosts apart.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from pathlib import Path
from typing import Any

ATTACKER = "127.0.0.2"
HEADER = struct.Struct(">I")


def frame(obj: Any) -> bytes:
    """One frame holding ``obj`` as JSON."""
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(payload)) + payload


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid`` in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def connect_from(port: int, source: str = ATTACKER, timeout_s: float = 5.0,
                 rcvbuf_bytes: int | None = None) -> socket.socket:
    """A TCP connection to the server on 127.0.0.1 from ``source``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf_bytes is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
    sock.settimeout(timeout_s)
    sock.bind((source, 0))
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


class FrameReader:
    """Reads whole frames from a raw socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.eof = False

    def next(self, timeout_s: float = 5.0) -> dict[str, Any] | None:
        """The next frame, or None at EOF; TimeoutError when none comes."""
        deadline = time.monotonic() + timeout_s
        while True:
            if len(self.buffer) >= 4:
                (length,) = HEADER.unpack_from(self.buffer)
                if len(self.buffer) >= 4 + length:
                    payload = bytes(self.buffer[4:4 + length])
                    del self.buffer[:4 + length]
                    obj: dict[str, Any] = json.loads(payload)
                    return obj
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.eof = True
            self.buffer += data

    def until(self, kind: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """Frames up to the first of type ``kind``; that one."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.next(max(0.01, deadline - time.monotonic()))
            if got is None:
                raise EOFError(f"closed before a {kind!r} frame")
            if got["type"] == kind:
                return got


def closed_within(sock: socket.socket, timeout_s: float) -> bool:
    """Whether the peer closes ``sock`` within ``timeout_s`` (what it sends is discarded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(1 << 20):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def close_all(socks: list[socket.socket]) -> None:
    """Close every socket, ignoring errors."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
