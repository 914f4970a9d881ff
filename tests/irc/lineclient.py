"""A blocking raw IRC client for tests: lines out, lines in, every wait bounded.

It parses with nothing from the package: a conformance test should check the
server against the IRC grammar, not against the server's own codec.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

DEFAULT_TIMEOUT_S = 5.0


def words(line: str) -> tuple[str, list[str]]:
    """A line as (command, params), tags and source dropped."""
    rest = line
    if rest.startswith("@"):
        rest = rest.split(" ", 1)[1]
    if rest.startswith(":"):
        rest = rest.split(" ", 1)[1]
    head, _, trailing = rest.partition(" :")
    parts = head.split(" ")
    return parts[0], parts[1:] + ([trailing] if _ else [])


class IrcLineClient:
    """One IRC connection driven line by line."""

    def __init__(self, host: str, port: int, *, context: ssl.SSLContext | None = None) -> None:
        raw = socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT_S)
        self.sock = context.wrap_socket(raw, server_hostname=host) if context else raw
        self._buffer = b""
        self.eof = False

    def send(self, *lines: str | bytes) -> None:
        data = b"".join(line if isinstance(line, bytes) else line.encode() + b"\r\n"
                        for line in lines)
        self.sock.sendall(data)

    def register(self, nick: str, caps: str = "") -> list[str]:
        """Register as ``nick`` (with ``caps``); returns the lines up to the end of NAMES."""
        if caps:
            self.send("CAP LS 302", f"CAP REQ :{caps}")
        self.send(f"NICK {nick}", "USER u 0 * :Test")
        if caps:
            self.send("CAP END")
        return self.until(lambda line: words(line)[0] == "366")

    def line(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while b"\r\n" not in self._buffer:
            if self.eof:
                raise ConnectionError("the server closed the connection")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line; buffered {self._buffer!r}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.eof = not data
            self._buffer += data
        raw, self._buffer = self._buffer.split(b"\r\n", 1)
        return raw.decode()

    def until(self, match: Callable[[str], bool], timeout_s: float = DEFAULT_TIMEOUT_S
              ) -> list[str]:
        """Every line up to and including the first that matches."""
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []
        while True:
            try:
                seen.append(self.line(max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                raise TimeoutError(f"no matching line; got {seen}") from None
            if match(seen[-1]):
                return seen

    def ping_sync(self, token: str = "sync") -> list[str]:
        """Lines until the PONG for a PING sent now: everything the server sent before it."""
        self.send(f"PING :{token}")
        return self.until(lambda line: words(line) == ("PONG", ["irc.chattycat", token]))[:-1]

    def close(self) -> None:
        self.sock.close()
