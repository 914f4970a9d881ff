"""A blocking WebSocket client for tests, over a plain socket: wsproto frames, our handshake.

The handshake is written by hand so that tests can send any request head
(foreign origins, missing headers, oversized headers); frames go through
``wsproto`` as a client, which masks them as RFC 6455 requires, and
:meth:`WsClient.send_raw` can send bytes no client library would.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage

TIMEOUT_S = 5.0


def http_exchange(port: int, request: bytes, timeout_s: float = TIMEOUT_S) -> bytes:
    """Send ``request`` and read until the server closes (or the timeout); the bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(request)
        return read_until_closed(sock, timeout_s)


def read_until_closed(sock: socket.socket, timeout_s: float = TIMEOUT_S) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def upgrade_request(port: int, *, origin: str | None = "same", path: str = "/ws",
                    extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin == "same":
        lines.append(f"Origin: http://127.0.0.1:{port}")
    elif origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


class WsClient:
    """One WebSocket connection to the web door."""

    def __init__(self, port: int, **request: Any) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.sock.sendall(upgrade_request(port, **request))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ", 2)[1]) if self.head else 0
        self.ws = Connection(ConnectionType.CLIENT)
        self.events: list[Event] = []
        self.closed_by_peer = False

    def send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def send_frame(self, obj: dict[str, Any]) -> None:
        self.send(TextMessage(data=json.dumps(obj)))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_event(self, timeout_s: float = TIMEOUT_S) -> Event:
        """The next event, answering nothing by itself; AssertionError on timeout."""
        deadline = time.monotonic() + timeout_s
        while not self.events:
            for event in self.ws.events():
                self.events.append(event)
            if self.events:
                break
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no WebSocket event in time"
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            self.ws.receive_data(data or None)
        return self.events.pop(0)

    def frame(self, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        """The next complete text message, decoded (pings answered, fragments joined)."""
        parts: list[str] = []
        while True:
            event = self.next_event(timeout_s)
            if isinstance(event, Ping):
                self.send(event.response())
                continue
            assert isinstance(event, TextMessage), f"expected a text message, got {event!r}"
            parts.append(event.data)
            if event.message_finished:
                return dict(json.loads("".join(parts)))

    def frame_of(self, type_: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        """Skip frames until one of ``type_``."""
        while True:
            frame = self.frame(timeout_s)
            if frame["type"] == type_:
                return frame

    def close_event(self, timeout_s: float = TIMEOUT_S) -> CloseConnection:
        """Skip messages until the peer's close frame (or the socket's end: code 1006)."""
        while True:
            event = self.next_event(timeout_s)
            if isinstance(event, CloseConnection):
                return event
            assert isinstance(event, TextMessage | BytesMessage | Ping | Pong)

    def hello(self, name: str) -> dict[str, Any]:
        self.send_frame({"type": "hello", "name": name, "protocol": 1})
        welcome = self.frame_of("welcome")
        self.frame_of("history")
        return welcome

    def close(self) -> None:
        self.sock.close()


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame by hand (masked, short payloads), for bytes wsproto would refuse to send."""
    mask = os.urandom(4)
    assert len(payload) < 126
    head = bytes(((0x80 if fin else 0) | opcode, 0x80 | len(payload))) + mask
    return head + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
