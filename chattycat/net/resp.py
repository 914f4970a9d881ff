"""The pure half of the Redis client: ``redis://`` URLs and RESP command encoding.

No sockets here; replies are parsed by ``hiredis.Reader`` in
:mod:`chattycat.net.redis`. Commands are RESP arrays of bulk strings, the only
form Redis accepts from clients (the "unified request protocol").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_PORT", "Arg", "RedisAddress", "encode_command", "parse_redis_url"]

DEFAULT_PORT = 6379
Arg: TypeAlias = bytes | str | int | float


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a Redis is and how to log in to it (from ``redis://[[user]:password@]host[:port][/db]``)."""

    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    # Kept out of repr: addresses end up in logs and error messages.
    password: str | None = field(default=None, repr=False)
    username: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse ``redis://[[user]:password@]host[:port][/db]``; ValueError with a one-line reason."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad Redis URL {_shown(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "rediss":
        raise ValueError(f"bad Redis URL {_shown(url)}: rediss:// (TLS) is not supported yet; "
                         "use redis:// on a trusted network or a TLS tunnel")
    if scheme != "redis":
        raise ValueError(f"bad Redis URL {_shown(url)}: it must start with redis://")
    if not parts.hostname:
        raise ValueError(f"bad Redis URL {_shown(url)}: no host")
    if parts.query or parts.fragment:
        raise ValueError(f"bad Redis URL {_shown(url)}: options (?...) are not supported")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        # redis://name@host is ambiguous (old clients read it as a password); say so.
        raise ValueError(f"bad Redis URL {_shown(url)}: give a password as "
                         "redis://user:password@host or redis://:password@host")
    return RedisAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORT,
        db=_database(parts.path, url),
        password=password or None,
        username=username,
    )


def _database(path: str, url: str) -> int:
    number = path.lstrip("/")
    if not number:
        return 0
    if not number.isascii() or not number.isdigit():
        raise ValueError(f"bad Redis URL {_shown(url)}: the database must be a number, "
                         f"not {number!r}")
    return int(number)


def _shown(url: str) -> str:
    # Error messages reach logs and terminals: never echo a password.
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    return repr(url)


def encode_command(*args: Arg) -> bytes:
    """One command as a RESP array of bulk strings (ints and floats in decimal)."""
    if not args:
        raise ValueError("a Redis command needs at least its name")
    chunks = [b"*%d\r\n" % len(args)]
    for value in _as_bytes(args):
        chunks.append(b"$%d\r\n" % len(value))
        chunks.append(value)
        chunks.append(b"\r\n")
    return b"".join(chunks)


def _as_bytes(args: Iterable[Arg]) -> Iterable[bytes]:
    for arg in args:
        if isinstance(arg, bytes):
            yield arg
        elif isinstance(arg, str):
            yield arg.encode()
        elif isinstance(arg, bool):
            # True would go out as 1 and come back as b"1": refuse, like redis-py.
            raise TypeError("a Redis argument cannot be a bool; send 1/0 or a string")
        elif isinstance(arg, int):
            yield b"%d" % arg
        elif isinstance(arg, float):
            yield repr(arg).encode()  # repr round-trips exactly; Redis parses "1e+100"
        else:
            raise TypeError(f"a Redis argument must be bytes, str, int or float, "
                            f"not {type(arg).__name__}")
