"""How a pass's frames are handed to an audience (``chattycat.server.app._Run``).

A room's run of frames is joined once and handed to every member as one
buffer: the kernel and ``sendmsg`` pay per buffer, per recipient. A run for a
single connection is never copied for nothing.
"""

from __future__ import annotations

from chattycat.protocol.codec import encode
from chattycat.protocol.messages import Message
from chattycat.server.app import _Run


def _message(seq: int) -> Message:
    return Message("lobby", seq, "ann", "#e06c75", f"text {seq}", 1000.0 + seq, None, False)


def test_a_run_for_many_is_joined_once_and_shared() -> None:
    first = _message(1)
    run = _Run(first, encode(first), fanout=100)
    for seq in (2, 3):
        run.add(_message(seq), encode(_message(seq)))
    chunks = run.chunks()
    assert chunks == [b"".join(encode(_message(seq)) for seq in (1, 2, 3))]
    assert run.chunks() is chunks  # joined once for the whole audience
    assert run.size == len(chunks[0])


def test_a_run_for_one_connection_or_of_one_frame_is_not_copied() -> None:
    first = _message(1)
    alone = _Run(first, encode(first), fanout=1)
    alone.add(_message(2), encode(_message(2)))
    assert alone.chunks() is alone.data
    single = _Run(first, encode(first), fanout=100)
    assert single.chunks() is single.data
