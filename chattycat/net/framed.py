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

Fairness: one loop pass hands on at most :attr:`FramedProtocol.payloads_per_pass`
payloads per connection. A peer that sends thousands of small frames in one
burst would otherwise keep the loop inside its ``data_received`` while every
other connection waits; instead its remaining bytes stay in the decoder,
reading from its socket is paused (so TCP flow control pushes back on it, not
our memory), and decoding goes on in the next pass, after everyone else had
a turn.
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


#: Payloads one connection may hand on per loop pass (see the module docstring).
PAYLOADS_PER_PASS = 32
_NO_HOLDS: frozenset[str] = frozenset()


class FramedProtocol(Protocol, Generic[D]):
    """Feeds received bytes to ``decoder`` and hands each complete payload on."""

    payloads_per_pass: int = PAYLOADS_PER_PASS
    # A server holds one per connection; a subclass without __slots__ gets a dict.
    __slots__ = ("_broken", "_holds", "decoder", "transport")

    def __init__(self, decoder: D) -> None:
        self.decoder = decoder
        self.transport: Transport | None = None
        self._broken = False  # an oversized frame was seen: the stream cannot resync
        # Why reading is paused: "backlog" (this pass's budget is spent) and/or
        # whatever a subclass holds it for (its output piling up, say). Reading
        # resumes only when no reason is left. Frozen, so that every connection
        # that holds nothing (most of them) shares one empty set.
        self._holds: frozenset[str] = _NO_HOLDS

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
        if "backlog" not in self._holds:  # else the scheduled pass decodes it
            self._decode()

    def hold_reading(self, reason: str) -> None:
        """Stop reading from the peer until :meth:`release_reading` of every reason."""
        self._holds = self._holds | {reason}
        if self.transport is not None:
            self.transport.pause_reading()

    def release_reading(self, reason: str) -> None:
        """Drop one reason to hold reading; reading resumes when none is left."""
        self._holds = self._holds - {reason}
        if not self._holds and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _decode(self) -> None:
        # Without a transport there is no loop to come back on: decode it all.
        budget = self.payloads_per_pass if self.transport is not None else -1
        try:
            while budget != 0 and (payload := self.decoder.next_payload()) is not None:
                budget -= 1
                self.payload_received(payload)
        except FrameTooLarge as exc:
            self._broken = True
            self.frame_too_large(exc.length)
            return
        if budget == 0 and self.transport is not None and not self.transport.is_closing():
            # Maybe more is buffered: the rest waits for the next pass.
            self.hold_reading("backlog")
            self.transport.loop.call_soon(self._next_pass)
        elif "backlog" in self._holds:
            self.release_reading("backlog")

    def _next_pass(self) -> None:
        if self._broken or self.transport is None or self.transport.is_closing():
            return
        self._decode()

    def eof_received(self) -> bool | None:
        # A frame cut short by EOF is simply never delivered: close our side too.
        return False
