"""The TCP door: PROTOCOL's own length-prefixed frames, and what every door's peer is."""

from __future__ import annotations

import logging
import typing

from chattycat.errors import FrameTooLarge
from chattycat.net.framed import FramedProtocol
from chattycat.net.transport import Transport
from chattycat.protocol.framing import FrameDecoder
from chattycat.protocol.messages import Frame, encode
from chattycat.server.effects import ConnId

if typing.TYPE_CHECKING:
    from chattycat.server.app import ChatServer

__all__ = ["FramedPeer", "Peer"]

log = logging.getLogger("chattycat.server.app")


class Peer(typing.Protocol):
    """One client connection, through any front door, as the server sees it.

    The TCP door (:class:`FramedPeer`) is one; a WebSocket or IRC door has the same few
    things: an id, its transport, how a frame is put on its wire, and the
    reply allowance the server keeps for it. The door calls the server's
    ``opened``, ``received``, ``rejected``, ``drained``, ``slow_consumer``
    and ``closed`` as its transport reports events.
    """

    id: ConnId
    transport: Transport | None
    reply_allowance: int

    def encode_frame(self, frame: Frame) -> bytes:
        """``frame`` as this door's wire carries it."""
        ...

    def close(self, timeout_s: float) -> None:
        """Close the connection the door's way (a WebSocket sends its close frame first)."""
        ...


class FramedPeer(FramedProtocol[FrameDecoder]):
    """A peer of the TCP door: length-prefixed JSON frames (PROTOCOL section 1)."""

    # The TCP wire is PROTOCOL's own framing: the server's one shared encoding.
    encode_frame = staticmethod(encode)
    __slots__ = ("id", "reply_allowance", "server")  # one per connection

    def __init__(self, server: ChatServer) -> None:
        super().__init__(FrameDecoder(server.config.rooms.max_frame))
        self.server = server
        self.id: ConnId = next(server.ids)
        self.reply_allowance = 0

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.server.opened(self)

    def payload_received(self, payload: bytes) -> None:
        self.server.received(self, payload)

    def frame_too_large(self, length: int) -> None:
        log.info("connection %d sent a frame of %d bytes: closing", self.id, length)
        self.server.rejected(self, FrameTooLarge(length, self.decoder.max_frame))

    def pause_writing(self) -> None:
        # Output to this client is piling up: stop reading its requests, each of
        # which would only add more output, until the backlog drains.
        self.hold_reading("output")

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.server.drained(self)
        self.release_reading("output")

    def close(self, timeout_s: float) -> None:
        if self.transport is not None:
            self.transport.close(timeout_s=timeout_s)

    def write_buffer_overflow(self) -> bool | None:
        # The server closes it after a last slow_consumer error (best effort).
        self.server.slow_consumer(self)
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        if exc is not None:
            log.debug("connection %d lost: %s", self.id, exc)
        self.server.closed(self)
