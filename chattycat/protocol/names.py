"""The naming rules of PROTOCOL section 2, written once for every layer.

The server enforces them on the wire (``bad_name``, ``bad_room``); the client,
the commands and the command line check them before sending, so a user who
types a bad name is told the rule at once instead of waiting for an error
frame. Every one of those places quotes :data:`NAME_RULE` or
:data:`ROOM_RULE`, so the rule a user reads is the rule the server applies.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_NAME_CHARS",
    "NAME_RULE",
    "ROOM_RULE",
    "is_valid_name",
    "is_valid_room",
    "name_key",
]

MAX_NAME_CHARS = 32

#: The user-name rule in words, for error messages (the wire text of ``bad_name``).
NAME_RULE = f"names are 1-{MAX_NAME_CHARS} characters from A-Z a-z 0-9 _ -"
#: The room-name rule in words, for error messages (the wire text of ``bad_room``).
ROOM_RULE = f"room names are 1-{MAX_NAME_CHARS} characters from a-z 0-9 _ -"

# Rooms are lower case only so that "Dev" and "dev" can never be two rooms;
# user names keep their case for display and compare by name_key instead.
_NAME_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_NAME_CHARS}}}")
_ROOM_RE = re.compile(rf"[a-z0-9_-]{{1,{MAX_NAME_CHARS}}}")


def is_valid_name(name: str) -> bool:
    """True for a user name that follows :data:`NAME_RULE`."""
    return _NAME_RE.fullmatch(name) is not None


def is_valid_room(room: str) -> bool:
    """True for a room name that follows :data:`ROOM_RULE`."""
    return _ROOM_RE.fullmatch(room) is not None


def name_key(name: str) -> str:
    """The case-insensitive identity of a user name (names are ASCII, so lower() suffices)."""
    key = name.lower()
    # An already lower-case name is its own key: the server keeps a key per
    # user in several maps, and one shared string beats a copy in each.
    return name if key == name else key
