"""A transport :class:`~chattycat.net.transport.Protocol` that speaks in frames, not bytes.

The server's connection and the client's link both turn a byte stream into
frame payloads and stop at the first oversized frame; :class:`FramedProtocol`
does that once. Subclasses implement :meth:`~FramedProtocol.payload_received`
and :meth:`~FramedProtocol.frame_too_large`.

Why the decoder is passed in: the arrows go ``server -> protocol, net`` and
``client -> protocol, net``, so ``net`` may not import
:mod:`chattycat.protocol.framing`. Moving the length-prefix codec down into
``net`` would not do either: ``protocol`` stays sans-IO and must not import a
package that opens sockets. So the caller, which sees both layers, hands in
its decoder (``FrameDecoder(max_frame)`` for ChattyCat); this module only needs
its shape (:class:`PayloadDecoder`) and the package-wide
:class:`~chattycat.errors.FrameTooLarge` it raises. Any other framing with
the same shape (a line codec, say) works too.
"""

from __future__ import annotations

import typing
from typing import Generic, TypeVar

from chattycat.errors import FrameTooLarge
from chattycat.net.transport import Protocol, Transport

__all__ = ["FramedProtocol", "PayloadDecoder"]


class PayloadDecoder(typing.Protocol):
    """What :class:`FramedProtocol` needs of a sans-IO frame decoder."""

    def feed(self, data: bytes) -> None:
        """Append bytes received from the peer."""

    def next_payload(self) -> bytes | None:
        """The next complete payload, None until more bytes come; FrameTooLarge if oversized."""


D = TypeVar("D", bound=PayloadDecoder)


class FramedProtocol(Protocol, Generic[D]):
    """Feeds received bytes to ``decoder`` and hands each complete payload on."""

    def __init__(self, decoder: D) -> None:
        self.decoder = decoder
        self.transport: Transport | None = None
        self._broken = False  # an oversized frame was seen: the stream cannot resync

    def payload_received(self, payload: bytes) -> None:
        """One complete frame payload arrived."""

    def frame_too_large(self, length: int) -> None:
        """The peer announced a frame of ``length`` bytes, over the limit; nothing follows."""

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        self.decoder.feed(data)
        try:
            while (payload := self.decoder.next_payload()) is not None:
                self.payload_received(payload)
        except FrameTooLarge as exc:
            self._broken = True
            self.frame_too_large(exc.length)

    def eof_received(self) -> bool | None:
        # A frame cut short by EOF is simply never delivered: close our side too.
        return False
