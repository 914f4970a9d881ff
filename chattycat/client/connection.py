"""One connection attempt from the client to the server: bytes in, frame payloads out.

:class:`ServerLink` is the transport :class:`~chattycat.net.transport.Protocol`
of one attempt. It splits the stream into frame payloads and turns every way
the connection can end into one short reason for the user. A link the client
has given up on is marked ``stale``: from then on it forwards nothing, so a
late callback from an old connection can never disturb the current one.
"""

from __future__ import annotations

import errno
import os
import ssl
from collections.abc import Callable

from chattycat.errors import RemoteProtocolError
from chattycat.net.transport import Protocol, Transport
from chattycat.protocol.framing import FrameDecoder

__all__ = ["PRE_WELCOME_MAX_FRAME_BYTES", "ServerLink", "describe_failure"]

# Before welcome we do not know the server's max_frame; accept anything sane.
PRE_WELCOME_MAX_FRAME_BYTES = 16 * 1024 * 1024


class ServerLink(Protocol):
    """One connection attempt; forwards to its owner's callbacks until it is stale."""

    def __init__(
        self,
        on_made: Callable[[ServerLink], None],
        on_payload: Callable[[ServerLink, bytes], None],
        on_lost: Callable[[ServerLink, str], None],
    ) -> None:
        self.transport: Transport | None = None
        self.decoder = FrameDecoder(PRE_WELCOME_MAX_FRAME_BYTES)
        self.stale = False
        self._on_made = on_made
        self._on_payload = on_payload
        self._on_lost = on_lost

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        if self.stale:
            transport.abort()
            return
        self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.stale:
            return
        self.decoder.feed(data)
        try:
            for payload in self.decoder:
                if self.stale:
                    return
                self._on_payload(self, payload)
        except RemoteProtocolError as exc:  # an oversized frame: the stream is lost
            self._on_lost(self, f"bad data from the server ({exc.message})")

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.stale:
            self._on_lost(self, describe_failure(exc) if exc else "connection closed")

    def connection_failed(self, exc: BaseException) -> None:
        if not self.stale:
            self._on_lost(self, describe_failure(exc))


def describe_failure(exc: BaseException) -> str:
    """A short lower-case reason: 'connection refused', 'timed out', ..."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in errno.errorcode:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
