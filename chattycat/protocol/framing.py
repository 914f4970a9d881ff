"""Sans-IO length-prefixed framing (PROTOCOL section 1).

A frame is a 4-byte unsigned big-endian payload length followed by that many
payload bytes. :class:`FrameDecoder` is fed bytes in whatever pieces the
network delivers and hands back complete payloads; it never reads a socket.

    decoder = FrameDecoder(max_frame=65536)
    decoder.feed(chunk)
    for payload in decoder:
        ...

The size limit is enforced from the header alone: a frame announcing more
than ``max_frame`` bytes raises :class:`~chattycat.errors.FrameTooLarge`
before a single byte of its payload is buffered, so a peer cannot make the
server hold a 4 GiB frame in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from chattycat.errors import FrameTooLarge

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "HEADER_BYTES", "FrameDecoder", "encode_frame"]

HEADER = struct.Struct(">I")
HEADER_BYTES = HEADER.size
DEFAULT_MAX_FRAME_BYTES = 65536
# The header is 32 bits, so no frame can be longer than this whatever the limit.
LARGEST_FRAME_BYTES = 2**32 - 1


def encode_frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its length header."""
    if len(payload) > LARGEST_FRAME_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Turns a byte stream into payloads; iterate it to take the complete ones."""

    __slots__ = ("_broken", "_buffer", "_offset", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if not 0 <= max_frame <= LARGEST_FRAME_BYTES:
            raise ValueError(f"max_frame must be 0..{LARGEST_FRAME_BYTES}")
        self.max_frame = max_frame
        self._buffer = bytearray()
        # Consumed bytes are skipped with an offset and dropped in bulk, so a
        # buffer holding many small frames is not shifted once per frame.
        self._offset = 0
        self._broken: FrameTooLarge | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        if self._broken is None:
            self._buffer += data

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as part of a payload."""
        return len(self._buffer) - self._offset

    def next_payload(self) -> bytes | None:
        """The next complete payload, or None until more bytes arrive.

        Raises FrameTooLarge (and keeps raising it) once an oversized header
        is seen: after that the stream cannot be resynchronised.
        """
        if self._broken is not None:
            raise self._broken
        available = len(self._buffer) - self._offset
        if available < HEADER_BYTES:
            self._compact()
            return None
        (length,) = HEADER.unpack_from(self._buffer, self._offset)
        if length > self.max_frame:
            self._broken = FrameTooLarge(length, self.max_frame)
            self._buffer = bytearray()
            self._offset = 0
            raise self._broken
        if available < HEADER_BYTES + length:
            self._compact()
            return None
        start = self._offset + HEADER_BYTES
        payload = bytes(self._buffer[start : start + length])
        self._offset = start + length
        return payload

    def __iter__(self) -> Iterator[bytes]:
        while (payload := self.next_payload()) is not None:
            yield payload

    def _compact(self) -> None:
        if self._offset == len(self._buffer):
            # All consumed: a fresh buffer, as deleting the front would keep the
            # old one's memory (an idle connection's decoder holds nothing).
            self._buffer = bytearray()
            self._offset = 0
        elif self._offset:
            del self._buffer[: self._offset]
            self._offset = 0
