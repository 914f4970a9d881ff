"""Split ``history``, ``roster`` and ``room_list`` replies into frames within ``max_frame``.

PROTOCOL section 1: the server never sends a frame larger than ``max_frame``;
a ``history`` or ``roster`` that would not fit becomes consecutive frames of
the same type, every part but the last carrying ``"more": true``. The
protocol names no rule for ``room_list``; it is split the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from chattycat.errors import Ref
from chattycat.protocol.messages import (
    MAX_REF_CHARS,
    History,
    Member,
    Message,
    RoomInfo,
    RoomList,
    Roster,
    to_payload,
)

__all__ = ["HISTORY_ENVELOPE_BYTES", "fit_history", "fit_room_list", "fit_roster"]

_T = TypeVar("_T", Message, Member, RoomInfo)

# The largest history frame around its messages: longest room name and ref,
# both flags. A message must fit in max_frame minus this to be deliverable.
HISTORY_ENVELOPE_BYTES = len(
    to_payload(History("r" * 32, (), more=True, truncated=True, ref="r" * MAX_REF_CHARS))
)


def _json_size(item: Message | Member | RoomInfo) -> int:
    return len(to_payload(item))


def _chunks(items: Sequence[_T], sizes: Sequence[int], empty_size: int,
            max_frame: int) -> list[Sequence[_T]]:
    """Greedy runs of items whose frame (``empty_size`` + items + commas) fits."""
    chunks: list[Sequence[_T]] = []
    start, size = 0, empty_size
    for index, item_size in enumerate(sizes):
        item_size += 1 if index > start else 0
        if index > start and size + item_size > max_frame:
            chunks.append(items[start:index])
            start, size = index, empty_size
            item_size -= 1
        size += item_size
    chunks.append(items[start:])
    return chunks


def _fit(
    items: Sequence[_T], max_frame: int, build: Callable[[Sequence[_T], bool], Any],
    sizes: Sequence[int] | None = None,
) -> list[Any]:
    """``items`` in frames within ``max_frame``; ``sizes`` (each item's encoded
    length) when the caller knows them, so that nothing is encoded twice."""
    whole = build(items, False)
    if sizes is None:
        if len(to_payload(whole)) <= max_frame:
            return [whole]  # the common case: measured once, no per-item sizing
        sizes = [_json_size(item) for item in items]
    # An item's JSON is the same alone and inside the list, so sizes add up.
    elif len(to_payload(build((), False))) + sum(sizes) + max(0, len(sizes) - 1) <= max_frame:
        return [whole]
    # Measure an empty part that says "more": the largest possible envelope.
    empty_size = len(to_payload(build((), True)))
    chunks = _chunks(items, sizes, empty_size, max_frame)
    return [build(chunk, i < len(chunks) - 1) for i, chunk in enumerate(chunks)]


def fit_history(
    room: str, messages: Sequence[Message], max_frame: int, *, ref: Ref = None,
    truncated: bool = False,
) -> list[History]:
    """``history`` frames carrying ``messages`` in order, each within ``max_frame``."""
    return _fit(
        messages, max_frame,
        lambda part, more: History(room, tuple(part), more=more, truncated=truncated, ref=ref),
    )


def fit_roster(
    room: str, members: Sequence[Member], max_frame: int, *, ref: Ref = None,
    sizes: Sequence[int] | None = None,
) -> list[Roster]:
    """``roster`` frames carrying ``members`` in order, each within ``max_frame``
    (``sizes``: each member's encoded length, if known)."""
    return _fit(
        members, max_frame, lambda part, more: Roster(room, tuple(part), more=more, ref=ref),
        sizes,
    )


def fit_room_list(rooms: Sequence[RoomInfo], max_frame: int, *, ref: Ref = None) -> list[RoomList]:
    """``room_list`` frames carrying ``rooms`` in order, each within ``max_frame``."""
    return _fit(rooms, max_frame, lambda part, more: RoomList(tuple(part), more=more, ref=ref))
