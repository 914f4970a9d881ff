"""A sans-IO IRC line codec: bytes in, typed messages out, and back.

The grammar is the one modern clients speak (RFC 1459/2812 as refined by the
IRCv3 ``message-tags`` specification)::

    ['@' tags SPACE] [':' source SPACE] command *(SPACE param) [SPACE ':' trailing] CRLF

:class:`LineDecoder` cuts a byte stream into lines the way :mod:`.framing`
cuts frames: fed any split of the stream, it yields the same lines. Lines
end with CRLF, or a bare LF, which real clients send. :func:`parse_line`
turns one line into an :class:`IrcMessage`; a line that is not UTF-8 is
refused *per line* (:class:`~chattycat.errors.RemoteProtocolError` with code
``bad_frame``), so one stray Latin-1 byte does not cost a connection.
:func:`format_line` is the inverse; :func:`split_utf8` cuts text to fit the
512-byte line limit without splitting a character.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from chattycat.errors import ErrorCode, RemoteProtocolError

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_TAGS_BYTES",
    "IrcMessage",
    "LineDecoder",
    "LineTooLong",
    "format_line",
    "parse_line",
    "split_utf8",
    "strip_formatting",
]

# RFC 1459 2.3: 512 bytes including the CRLF, not counting tags.
MAX_LINE_BYTES = 512
# IRCv3 message-tags: the tag section may take 8191 bytes of its own (with '@' and space).
MAX_TAGS_BYTES = 8191
# Formatting a client may use: bold, italics, underline, strikethrough,
# monospace, reverse, reset, and colors (\x03 with up to two numbers, \x04 with hex).
_FORMATTING_RE = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    r"|[\x02\x1d\x1f\x1e\x11\x16\x0f]"
)
_TAG_ESCAPES = {";": r"\:", " ": r"\s", "\\": "\\\\", "\r": r"\r", "\n": r"\n"}
_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class LineTooLong(RemoteProtocolError):
    """A line over the limit: it was dropped, and the stream resumes at the next line."""

    def __init__(self, length: int) -> None:
        super().__init__(ErrorCode.FRAME_TOO_LARGE, f"a line of {length}+ bytes is too long")
        self.length = length


@dataclass(frozen=True, slots=True)
class IrcMessage:
    """One IRC line, parsed: tags, optional source, command (upper case), params."""

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class LineDecoder:
    """Cuts a byte stream into lines; a line over ``max_bytes`` raises once, then is skipped."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES + MAX_TAGS_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._skipping = False  # inside a too-long line: drop up to its end
        self.dropped = 0  # too-long lines next_payload skipped

    def feed(self, data: bytes) -> None:
        """Append bytes received from the peer."""
        self._buffer += data

    def next_line(self) -> bytes | None:
        """The next line without its line ending, None until more bytes come."""
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self.max_bytes:
                    dropped = len(self._buffer)
                    del self._buffer[:]
                    if not self._skipping:
                        self._skipping = True
                        raise LineTooLong(dropped)
                return None
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_bytes:
                raise LineTooLong(len(line))
            return line

    def next_payload(self) -> bytes | None:
        """:meth:`next_line` for a framed transport protocol: a line over the limit is
        counted in ``dropped`` (for the caller to answer) instead of raised."""
        while True:
            try:
                return self.next_line()
            except LineTooLong:
                self.dropped += 1

    def lines(self) -> Iterator[bytes]:
        """Every complete line buffered now (stops at the first too-long one, raising)."""
        while (line := self.next_line()) is not None:
            yield line


def _unescape_tag(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append(_TAG_UNESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def _escape_tag(value: str) -> str:
    return "".join(_TAG_ESCAPES.get(char, char) for char in value)


def _parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if item:
            key, _, value = item.partition("=")
            tags[key] = _unescape_tag(value)
    return tags


def parse_line(line: bytes) -> IrcMessage | None:
    """One line (no line ending) as a message; None for a blank line (ignored, per RFC).

    Raises RemoteProtocolError ``bad_frame`` for bytes that are not UTF-8 or
    contain NUL, CR or LF.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "lines must be UTF-8") from None
    if any(c in text for c in "\0\r\n"):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "NUL, CR and LF end no line here")
    rest = text.lstrip(" ")
    tags: dict[str, str] = {}
    source: str | None = None
    if rest.startswith("@"):
        tag_text, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(tag_text)
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing: str | None = None
    head, sep, tail = rest.partition(" :")
    if sep:
        trailing = tail
    elif rest.startswith(":"):
        head, trailing = "", rest[1:]
    words = [word for word in head.split(" ") if word]  # only SPACE separates (RFC 1459)
    if not words:
        return None
    params = words[1:] + ([trailing] if trailing is not None else [])
    return IrcMessage(words[0].upper(), tuple(params), source, tags)


def format_line(message: IrcMessage) -> bytes:
    """``message`` as one wire line, CRLF included.

    The last parameter is sent as a trailing one (after ``:``) when it must
    be (empty, has a space, or starts with ``:``); earlier ones must not.
    """
    parts: list[str] = []
    if message.tags:
        parts.append("@" + ";".join(
            key if value == "" else f"{key}={_escape_tag(value)}"
            for key, value in message.tags.items()
        ))
    if message.source is not None:
        parts.append(":" + message.source)
    parts.append(message.command)
    params = list(message.params)
    if params:
        last = params.pop()
        parts.extend(params)
        parts.append(":" + last if last == "" or " " in last or last.startswith(":") else last)
    return (" ".join(parts) + "\r\n").encode("utf-8")


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """``text`` cut into pieces of at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    if max_bytes < 4:
        raise ValueError("max_bytes must hold a character")
    data = text.encode("utf-8")
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        # Back off continuation bytes (10xxxxxx): the cut must fall before a lead byte.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


def strip_formatting(text: str) -> str:
    """``text`` without IRC formatting codes (bold, colors, ...), as native clients want it."""
    return _FORMATTING_RE.sub("", text)
