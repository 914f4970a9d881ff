"""A few Redis commands run to completion, blocking: for a process's start and stop only.

A cluster node reads the cluster once before it serves anyone and says goodbye
after it has stopped serving; nothing waits on the loop then, so a plain
blocking round trip (redis-py's client, with its own timeouts) is the simple
and honest tool. Everything while serving goes through :mod:`chattycat.net.redis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from chattycat.errors import RedisConnectionError, RedisReplyError
from chattycat.net.resp import Arg, RedisAddress

__all__ = ["run_blocking"]


def run_blocking(address: RedisAddress, commands: Sequence[Sequence[Arg]], *,
                 timeout_s: float = 10.0) -> list[Any]:
    """Run ``commands`` in order on one connection and return their replies.

    Raises :class:`RedisConnectionError` if Redis cannot be reached or stops
    answering, :class:`RedisReplyError` on the first error reply.
    """
    client = redis.Redis(host=address.host, port=address.port, db=address.db,
                         username=address.username, password=address.password,
                         socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    replies = []
    try:
        with client:
            for command in commands:
                replies.append(client.execute_command(*command))  # type: ignore[no-untyped-call]
    except redis.ConnectionError as exc:
        raise RedisConnectionError(f"cannot reach Redis at {address}: {exc}") from None
    except redis.TimeoutError as exc:
        raise RedisConnectionError(f"Redis at {address} did not answer: {exc}") from None
    except redis.ResponseError as exc:
        raise RedisReplyError(str(exc)) from None
    return replies
