"""One connection attempt from the client to the server: bytes in, frame payloads out.

:class:`ServerLink` is the :class:`~chattycat.net.framed.FramedProtocol` of
one attempt: it forwards frame payloads to the client and turns every way the
connection can end into one short reason for the user. A link the client
has given up on is marked ``stale``: from then on it forwards nothing, so a
late callback from an old connection can never disturb the current one.

A TLS mismatch is named as such: a TLS client meeting a plain server fails its
handshake on the server's plain bytes ("the server does not speak TLS"); a
plain client meeting a TLS server either reads a TLS record header as a frame
length, or is hung up on without a byte, since OpenSSL sends no alert for a
first record that is not TLS at all ("the server expects TLS").
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from chattycat.errors import FrameTooLarge
from chattycat.net.contexts import SSLCertVerificationError, SSLError
from chattycat.net.framed import FramedProtocol
from chattycat.net.transport import Transport
from chattycat.protocol.framing import FrameDecoder

__all__ = [
    "EXPECTS_TLS",
    "NOT_TLS",
    "PRE_WELCOME_MAX_FRAME_BYTES",
    "ServerLink",
    "describe_failure",
    "describe_too_large",
    "looks_like_tls_record",
]

# Before welcome we do not know the server's max_frame; accept anything sane.
PRE_WELCOME_MAX_FRAME_BYTES = 16 * 1024 * 1024

NOT_TLS = "the server does not speak TLS"
EXPECTS_TLS = "the server expects TLS (use --tls)"
SILENT_HANGUP = "the server hung up without a word; it probably expects TLS (use --tls)"

# What OpenSSL reports when the peer's first bytes are not a TLS record (a
# ChattyCat frame header starts with 0x00; an HTTP server answers in text).
_NOT_TLS_REASONS = frozenset({
    "WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST",
})
# TLS record content types (RFC 8446 section 5.1): change_cipher_spec,
# alert, handshake, application_data.
_TLS_CONTENT_TYPES = frozenset({0x14, 0x15, 0x16, 0x17})


class ServerLink(FramedProtocol[FrameDecoder]):
    """One connection attempt; forwards to its owner's callbacks until it is stale."""

    def __init__(
        self,
        on_made: Callable[[ServerLink], None],
        on_payload: Callable[[ServerLink, bytes], None],
        on_lost: Callable[[ServerLink, str], None],
    ) -> None:
        super().__init__(FrameDecoder(PRE_WELCOME_MAX_FRAME_BYTES))
        self.stale = False
        self.heard_from_server = False  # any byte at all (see describe_hangup)
        self._on_made = on_made
        self._on_payload = on_payload
        self._on_lost = on_lost

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        if self.stale:
            transport.abort()
            return
        self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if not self.stale:
            self.heard_from_server = True
            super().data_received(data)

    def payload_received(self, payload: bytes) -> None:
        if not self.stale:
            self._on_payload(self, payload)

    def frame_too_large(self, length: int) -> None:
        # The stream is lost: nothing after the oversized header can be trusted.
        if not self.stale:
            self._on_lost(self, describe_too_large(length, self.decoder.max_frame))

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.stale:
            self._on_lost(self, describe_failure(exc) if exc else self.describe_hangup())

    def connection_failed(self, exc: BaseException) -> None:
        if not self.stale:
            self._on_lost(self, describe_failure(exc))

    def describe_hangup(self) -> str:
        """Why the server closed the connection, as far as can be told."""
        plain = self.transport is not None and self.transport.get_extra_info("ssl_object") is None
        # A ChattyCat server always answers a hello; silence from the first
        # byte on is what a TLS server does with a plain hello.
        return SILENT_HANGUP if plain and not self.heard_from_server else "connection closed"


def looks_like_tls_record(header: bytes) -> bool:
    """Whether ``header`` (a stream's first bytes) starts a TLS record, not a frame."""
    # A record starts with its content type and protocol version 3.x; read as
    # a frame length that is over 335 MB, which no ChattyCat server sends.
    return len(header) >= 2 and header[0] in _TLS_CONTENT_TYPES and header[1] == 0x03


def describe_too_large(length: int, max_frame: int) -> str:
    """Why a frame header announcing ``length`` bytes ends the connection."""
    if looks_like_tls_record(length.to_bytes(4, "big")):
        return EXPECTS_TLS  # a TLS server's alert record, read as a frame header
    return f"bad data from the server ({FrameTooLarge(length, max_frame).message})"


def describe_failure(exc: BaseException) -> str:
    """A short lower-case reason: 'connection refused', 'timed out', ..."""
    if isinstance(exc, SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, SSLError) and exc.reason in _NOT_TLS_REASONS:
        return NOT_TLS
    if isinstance(exc, SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in errno.errorcode:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
