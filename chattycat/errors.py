"""One exception hierarchy for ChattyCat; protocol errors carry their wire error code.

The split follows h11: a :class:`RemoteProtocolError` is the *peer's* fault and
is answered with an ``error`` frame (the exception carries everything that
frame needs); a :class:`LocalProtocolError` is a bug in the code using the
library and is never sent anywhere.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ChattyCatError",
    "ConfigError",
    "ConnectFailed",
    "ErrorCode",
    "FrameTooLarge",
    "LocalProtocolError",
    "ProtocolError",
    "RedisConnectionError",
    "RedisError",
    "RedisReplyError",
    "RemoteProtocolError",
    "StoreError",
]

Ref = str | int | None


class ErrorCode(StrEnum):
    """The error codes of PROTOCOL section 6, exactly as they appear on the wire."""

    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    UNKNOWN_TYPE = "unknown_type"
    BAD_REQUEST = "bad_request"
    HELLO_REQUIRED = "hello_required"
    BAD_STATE = "bad_state"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    BAD_NAME = "bad_name"
    NAME_TAKEN = "name_taken"
    BAD_ROOM = "bad_room"
    NOT_IN_ROOM = "not_in_room"
    NO_SUCH_ROOM = "no_such_room"
    NO_SUCH_USER = "no_such_user"
    RATE_LIMITED = "rate_limited"
    SLOW_CONSUMER = "slow_consumer"
    REPLACED = "replaced"
    INTERNAL = "internal"
    AUTH_FAILED = "auth_failed"


class ChattyCatError(Exception):
    """Base class of every error ChattyCat raises on purpose."""


class ProtocolError(ChattyCatError):
    """A violation of the wire protocol, with the code and text of the reply.

    ``ref`` is the request's ``ref`` (PROTOCOL section 1: every error sent in
    direct reply to a request echoes it). ``fatal`` means the connection cannot
    continue after the reply (the stream is out of sync).
    """

    def __init__(
        self, code: ErrorCode, message: str, *, ref: Ref = None, fatal: bool = False
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref
        self.fatal = fatal

    def with_ref(self, ref: Ref) -> ProtocolError:
        """The same error echoing ``ref`` (set once the request's ``ref`` is known)."""
        self.ref = ref
        return self


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class FrameTooLarge(RemoteProtocolError):
    """A frame header announced more than ``max_frame`` bytes; the stream is lost."""

    def __init__(self, length: int, max_frame: int) -> None:
        super().__init__(
            ErrorCode.FRAME_TOO_LARGE,
            f"frame of {length} bytes exceeds the maximum of {max_frame}",
            fatal=True,
        )
        self.length = length
        self.max_frame = max_frame


class LocalProtocolError(ProtocolError, ValueError):
    """This side built a frame the protocol does not allow (a bug in the calling code).

    Raised when the frame is built, like h11's, so the bug shows where it was
    made rather than as a peer's error later. It is also a ValueError, which is
    what a bad argument has always raised, so callers that already guard their
    input that way need not know about frames.
    """


class ConnectFailed(ChattyCatError):
    """A client could not reach or keep its server."""


class StoreError(ChattyCatError):
    """The history store cannot be opened or written (unwritable, corrupt, too new)."""


class ConfigError(ChattyCatError):
    """A setting given by the user cannot be used (bad TLS files, bad values)."""


class RedisError(ChattyCatError):
    """A Redis command did not succeed (see the two kinds below)."""


class RedisReplyError(RedisError):
    """Redis answered a command with an error reply (``-ERR ...``); the connection is fine.

    ``message`` is the reply as Redis wrote it; ``code`` its first word
    (``ERR``, ``WRONGTYPE``, ``NOSCRIPT``, ...), which is what a caller tests.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """The error's kind: the first word of the reply."""
        return self.message.split(" ", 1)[0]


class RedisConnectionError(RedisError):
    """There is no usable connection to Redis: not up yet, lost, timed out, or closed.

    A command that fails this way may or may not have been carried out.
    """
