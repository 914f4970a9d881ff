"""A blocking, raw-protocol test client: frames in, frames out, every wait bounded.

:class:`WireClient` deliberately shares no code with ``chattycat.protocol.framing`` or
``chattycat.protocol.messages``: it is written from PROTOCOL.md alone, so a conformance
test built on it checks the server against the spec, not against itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_TIMEOUT_S", "ConnectionClosed", "Frame", "WireClient", "frame_bytes"]

DEFAULT_TIMEOUT_S = 5.0
HEADER = struct.Struct(">I")

Frame = dict[str, Any]


class ConnectionClosed(Exception):
    """The server closed the connection (EOF or reset) before the expected frame came."""


def frame_bytes(payload: bytes) -> bytes:
    """``payload`` with its 4-byte big-endian length header."""
    return HEADER.pack(len(payload)) + payload


class WireClient:
    """One connection to a ChattyCat server, driven frame by frame from a test."""

    def __init__(
        self, host: str, port: int, *, timeout_s: float = DEFAULT_TIMEOUT_S,
        ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
        rcvbuf_bytes: int | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        raw = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf_bytes is not None:
            # Before connect(), so the TCP window is small from the start: a
            # client that stops reading then holds little in the kernel.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        raw.settimeout(timeout_s)
        try:
            raw.connect((host, port))
        except OSError:
            raw.close()
            raise
        if ssl_context is not None:
            raw = ssl_context.wrap_socket(raw, server_hostname=server_hostname or host)
        self.sock: socket.socket = raw
        self._buffer = bytearray()
        self._frames: deque[Frame] = deque()
        self.eof = False
        self.welcome: Frame | None = None
        self.join_frames: list[Frame] = []

    # -- sending --------------------------------------------------------------

    def send(self, obj: Frame) -> None:
        """Send one frame holding ``obj`` as compact UTF-8 JSON."""
        self.send_payload(json.dumps(obj, separators=(",", ":")).encode())

    def send_payload(self, payload: bytes) -> None:
        """Send one frame with exactly these payload bytes."""
        self.send_raw(frame_bytes(payload))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (headers, partial frames, garbage)."""
        self.sock.sendall(data)

    # -- receiving ------------------------------------------------------------

    def recv(self, timeout_s: float | None = None) -> Frame:
        """The next frame; TimeoutError if none comes in time, ConnectionClosed at EOF."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while not self._frames:
            if self.eof:
                raise ConnectionClosed("the server closed the connection")
            self._read_some(deadline)
        return self._frames.popleft()

    def recv_until(
        self, type_: str, timeout_s: float | None = None,
        where: Callable[[Frame], bool] | None = None,
    ) -> Frame:
        """Skip frames until one of ``type_`` (matching ``where``) arrives; return it."""
        return self.recv_all_until(type_, timeout_s, where)[-1]

    def recv_all_until(
        self, type_: str, timeout_s: float | None = None,
        where: Callable[[Frame], bool] | None = None,
    ) -> list[Frame]:
        """Every frame up to and including the first of ``type_`` (matching ``where``)."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        seen: list[Frame] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {type_!r} frame; received {_summary(seen)}")
            try:
                frame = self.recv(remaining)
            except TimeoutError:
                raise TimeoutError(f"no {type_!r} frame; received {_summary(seen)}") from None
            except ConnectionClosed:
                raise ConnectionClosed(
                    f"closed before a {type_!r} frame; received {_summary(seen)}"
                ) from None
            seen.append(frame)
            if frame.get("type") == type_ and (where is None or where(frame)):
                return seen

    def recv_error(self, timeout_s: float | None = None) -> Frame:
        """The next ``error`` frame (other frames are skipped)."""
        return self.recv_until("error", timeout_s)

    def expect_no_frame(self, timeout_s: float = 0.3) -> None:
        """Assert that nothing at all arrives within ``timeout_s``."""
        try:
            frame = self.recv(timeout_s)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame}")

    def expect_eof(self, timeout_s: float | None = None) -> list[Frame]:
        """Read until the server closes the connection; the frames received before."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        frames: list[Frame] = []
        while True:
            try:
                frames.append(self.recv(max(0.0, deadline - time.monotonic())))
            except ConnectionClosed:
                return frames
            except TimeoutError:
                raise AssertionError(
                    f"connection still open; received {_summary(frames)}"
                ) from None

    def drain(self, quiet_s: float = 0.2) -> list[Frame]:
        """Every frame that arrives until the connection has been quiet for ``quiet_s``."""
        frames: list[Frame] = []
        while True:
            try:
                frames.append(self.recv(quiet_s))
            except (TimeoutError, ConnectionClosed):
                return frames

    def _read_some(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame within the timeout")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no frame within the timeout") from None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            data = b""
        except ssl.SSLError as exc:
            # A server that closes without close_notify ends the stream here.
            if "EOF" in str(exc) or "shutdown" in str(exc):
                data = b""
            else:
                raise
        if not data:
            self.eof = True
            return
        self._buffer += data
        self._split_frames()

    def _split_frames(self) -> None:
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + length:
                return
            payload = bytes(self._buffer[HEADER.size : HEADER.size + length])
            del self._buffer[: HEADER.size + length]
            frame = json.loads(payload.decode("utf-8"))
            assert isinstance(frame, dict), f"server sent a non-object frame: {payload!r}"
            frame["_size"] = length  # payload bytes, for max_frame checks
            self._frames.append(frame)

    # -- protocol helpers ---------------------------------------------------------

    def hello(self, name: str, *, wait_joined: bool = True, **extra: Any) -> Frame:
        """Say hello as ``name``; returns ``welcome`` (AssertionError on an error reply).

        With ``wait_joined`` the frames of the initial join (up to the last
        ``history``) are read too and kept in ``self.join_frames``.
        """
        self.send({"type": "hello", "name": name, "protocol": 1, **extra})
        reply = self.recv()
        assert reply["type"] == "welcome", f"hello as {name} failed: {reply}"
        self.welcome = reply
        self.join_frames = []
        if wait_joined:
            rooms = extra.get("resume", {}).get("rooms") or {None: 0}
            for _ in rooms:
                self.join_frames += self.recv_all_until("history", where=_last_part)
        return reply

    def say(self, room: str, text: str, **extra: Any) -> None:
        """Send a ``say``."""
        self.send({"type": "say", "room": room, "text": text, **extra})

    def say_all(
        self, room: str, texts: list[str], *, window: int = 8, timeout_s: float = 20.0,
    ) -> list[Frame]:
        """Send ``texts`` with ids, at most ``window`` unacknowledged, reading as it goes.

        Returns the acknowledgements (this sender's own ``message`` frames) in
        order. A sender that writes a burst and only then reads would hold
        every copy of its own messages unread, and a server with a small
        ``--max-outbuf`` rightly drops it as a slow consumer.
        """
        deadline = time.monotonic() + timeout_s
        me = self.welcome["name"]
        acks: list[Frame] = []
        ids = [f"all{n}-{len(texts)}" for n in range(len(texts))]
        sent = 0
        while len(acks) < len(texts):
            while sent < len(texts) and sent - len(acks) < window:
                self.say(room, texts[sent], id=ids[sent])
                sent += 1
            want = ids[len(acks)]
            acks.append(self.recv_until(
                "message", timeout_s=max(0.0, deadline - time.monotonic()),
                where=lambda m, want=want: (
                    m.get("id") == want and m.get("room") == room and m.get("from") == me)))
        return acks

    def close(self) -> None:
        """Close the socket (abruptly, as a vanished client would)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_part(frame: Frame) -> bool:
    return not frame.get("more")


def _summary(frames: list[Frame]) -> str:
    shown = [
        {k: v for k, v in f.items() if k not in ("messages", "members")} for f in frames[-5:]
    ]
    return f"{len(frames)} frame(s), last: {shown}"
