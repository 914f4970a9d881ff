"""Who is signed in, and who is in which room: the machine's users and rooms.

Membership changes are announced here as they happen (``joined``,
``parted``, ``renamed``), into the machine's output queue, so the frames
and the change they announce can never drift apart.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from typing import Any

from chattycat.protocol.messages import (
    Joined,
    Member,
    Parted,
    Renamed,
    RoomInfo,
    name_key,
    to_payload,
)
from chattycat.server.effects import ConnId
from chattycat.server.fit import fit_room_list, fit_roster
from chattycat.server.model import REMOTE, Room, User
from chattycat.server.output import OutputQueue

__all__ = ["Directory"]

# A roster entry: (name key, name, the Member, its encoded size in bytes); the
# first two are the sort key (unique in a room: Members are never compared).
_Entry = tuple[str, str, Member, int]
# Rooms this large keep their roster entries sorted between joins; smaller ones
# build them per roster (cheap), so a room per idle connection costs no more.
ROSTER_KEPT_FROM = 32
ROSTER_DROPPED_BELOW = 16


class Directory:
    """Signed-in users by name key and rooms with members, announcing every change."""

    def __init__(self, out: OutputQueue, max_frame: int) -> None:
        self._out = out
        self._max_frame = max_frame
        self._users: dict[str, User] = {}
        self._rooms: dict[str, Room] = {}
        # Large rooms' roster entries, kept sorted as members come and go: a join
        # storm sends N rosters of up to N members, and building, sorting and
        # sizing N Members for each would cost more than encoding them.
        self._rosters: dict[str, list[_Entry]] = {}

    # -- users -----------------------------------------------------------------

    def user(self, name: str) -> User | None:
        """The signed-in user called ``name`` (any case)."""
        return self._users.get(name_key(name))

    def users(self) -> Iterator[User]:
        """Everyone signed in."""
        return iter(self._users.values())

    def add(self, user: User) -> None:
        """``user`` signed in (its name is free: the caller checked)."""
        self._users[user.key] = user

    def remove(self, user: User, reason: str) -> None:
        """``user`` signs out: each of its rooms sees it leave with ``reason``."""
        for room in list(user.rooms):
            self.leave(user, room, reason, include_self=False)
        del self._users[user.key]

    def move(self, user: User, conn: ConnId) -> None:
        """``user`` continues on connection ``conn`` (a takeover: nothing is announced)."""
        user.conn = conn
        for room in user.rooms:
            self._rooms[room].changed()

    def rename(self, user: User, new_name: str) -> None:
        """``user`` is now ``new_name``; it and everyone sharing a room with it are told."""
        old, old_key, new_key = user.name, user.key, name_key(new_name)
        del self._users[old_key]
        for room in user.rooms:
            members = self._rooms[room].members
            del members[old_key]
            members[new_key] = user
            self._unlist(room, (old_key, old))
        user.name = new_name
        for room in user.rooms:
            if room in self._rosters:
                insort(self._rosters[room], _entry(user))
        self._users[new_key] = user
        own = [user.conn] if user.conn != REMOTE else []
        audience = own + [c for r in user.rooms for c in self._rooms[r].conns()]
        self._out.send(tuple(dict.fromkeys(audience)), Renamed(old, new_name, user.color))

    # -- rooms -----------------------------------------------------------------

    def has_members(self, room: str) -> bool:
        """Whether anyone is in ``room``."""
        return room in self._rooms

    def conns(self, room: str) -> tuple[ConnId, ...]:
        """The connections of ``room``'s members."""
        found = self._rooms.get(room)
        return () if found is None else found.conns()

    def members(self, room: str) -> list[str]:
        """Names of ``room``'s members (empty for a room nobody is in)."""
        found = self._rooms.get(room)
        return [] if found is None else [user.name for user in found.members.values()]

    def enter(self, user: User, room_name: str, ts: float) -> None:
        """``user`` joins ``room_name``; every member, the joiner included, is told."""
        room = self._rooms.get(room_name)
        if room is None:
            room = self._rooms[room_name] = Room(room_name)
        room.members[user.key] = user
        room.changed()
        if room_name in self._rosters:
            insort(self._rosters[room_name], _entry(user))
        elif len(room.members) >= ROSTER_KEPT_FROM:
            self._rosters[room_name] = sorted(map(_entry, room.members.values()))
        user.rooms[room_name] = None
        self._out.send(room.conns(), Joined(room_name, user.name, user.color, ts))

    def leave(self, user: User, room_name: str, reason: str, *, include_self: bool) -> None:
        """``user`` leaves; the others (and the leaver too if ``include_self``) are told."""
        room = self._rooms[room_name]
        if include_self:
            self._out.send(room.conns(), Parted(room_name, user.name, reason))
        del room.members[user.key]
        del user.rooms[room_name]
        room.changed()
        self._unlist(room_name, (user.key, user.name))
        if not include_self and room.members:
            self._out.send(room.conns(), Parted(room_name, user.name, reason))
        if not room.members:
            del self._rooms[room_name]

    def colors_in(self, rooms: Iterable[str]) -> list[str]:
        """The colors of everyone in ``rooms``."""
        return [
            user.color for room in rooms if room in self._rooms
            for user in self._rooms[room].members.values()
        ]

    # -- replies that list things ------------------------------------------------

    def send_roster(self, conn: ConnId, room: str, ref: Any) -> None:
        """``roster`` of ``room`` to ``conn``, sorted by name, split to fit."""
        entries = self._rosters.get(room)
        if entries is None:
            found = self._rooms.get(room)
            entries = [] if found is None else sorted(map(_entry, found.members.values()))
        members = [entry[2] for entry in entries]
        sizes = [entry[3] for entry in entries]
        for frame in fit_roster(room, members, self._max_frame, ref=ref, sizes=sizes):
            self._out.send((conn,), frame)

    def send_room_list(self, conn: ConnId, ref: Any) -> None:
        """``room_list`` of rooms with members to ``conn``, sorted by name, split to fit."""
        rooms = [RoomInfo(name, len(self._rooms[name].members)) for name in sorted(self._rooms)]
        for frame in fit_room_list(rooms, self._max_frame, ref=ref):
            self._out.send((conn,), frame)


    def _unlist(self, room: str, sort_key: tuple[str, str]) -> None:
        entries = self._rosters.get(room)
        if entries is None:
            return
        # The sort key alone sorts just before the entry that starts with it.
        index = bisect_left(entries, sort_key)
        if index < len(entries) and entries[index][:2] == sort_key:
            del entries[index]
        if len(entries) < ROSTER_DROPPED_BELOW:
            del self._rosters[room]


def _entry(user: User) -> _Entry:
    member = Member(user.name, user.color)
    return (user.key, user.name, member, len(to_payload(member)))
