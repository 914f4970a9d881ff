"""The cluster's users and rooms as one node sees them: its own users and everyone else's.

A node keeps every signed-in user of the cluster in its
:class:`~chattycat.server.directory.Directory`, so rosters, room lists, name
checks and colors work as on one server. A user held by another node is a
:class:`~chattycat.server.model.User` with no connection (``REMOTE``) and
that node's name; frames for a room go only to the members connected here.

:class:`ClusterDirectory` also tells the cluster what this node's own users
do: each join, part and sign-out becomes an op for Redis, in the order it
happened, so the other nodes' replicas see the same changes.
"""

from __future__ import annotations

from collections.abc import Callable

from chattycat.server.cluster.ops import Enter, Leave, Op, SignOut
from chattycat.server.directory import Directory
from chattycat.server.model import REMOTE, User
from chattycat.server.output import OutputQueue

__all__ = ["ClusterDirectory", "remote_user"]


def remote_user(name: str, color: str, node: str) -> User:
    """A user held by ``node``: known here for rosters and names, reached through ``node``."""
    return User(name, color, "", REMOTE, session_key="-", node=node)


class ClusterDirectory(Directory):
    """A :class:`Directory` that hands its own users' membership changes to ``publish``.

    ``local_rooms_changed(room)`` is called whenever a room may have lost its
    last member connected here (the node then stops following its stream).
    """

    def __init__(self, out: OutputQueue, max_frame: int, publish: Callable[[Op], None],
                 local_rooms_changed: Callable[[str], None]) -> None:
        super().__init__(out, max_frame)
        self._publish = publish
        self._changed = local_rooms_changed
        self._quiet = False  # while a sign-out parts its rooms: one SignOut says it all
        self.signed_out_at = 0.0

    def enter(self, user: User, room_name: str, ts: float) -> None:
        super().enter(user, room_name, ts)
        if user.conn != REMOTE:
            self._publish(Enter(user.key, room_name, ts))

    def leave(self, user: User, room_name: str, reason: str, *, include_self: bool) -> None:
        super().leave(user, room_name, reason, include_self=include_self)
        if user.conn != REMOTE:
            if not self._quiet:
                self._publish(Leave(user.key, room_name, reason))
            self._changed(room_name)

    def remove(self, user: User, reason: str) -> None:
        local = user.conn != REMOTE
        self._quiet = local
        try:
            super().remove(user, reason)
        finally:
            self._quiet = False
        if local:
            self._publish(SignOut(user.key, user.session_key, user.color, reason,
                                  self.signed_out_at))

    def hand_over(self, user: User, node: str) -> None:
        """``user`` now lives on ``node`` (taken over there): nothing is announced."""
        rooms = list(user.rooms)
        self.move(user, REMOTE)
        user.node, user.session, user.session_key = node, "", "-"
        for room in rooms:
            self._changed(room)

    def has_local_members(self, room: str) -> bool:
        """Whether a member of ``room`` is connected to this node."""
        return bool(self.conns(room))
