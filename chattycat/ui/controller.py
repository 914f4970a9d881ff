"""The controller all three front ends share: typed lines to client calls, events to lines.

:class:`ChatController` is sans-IO: it turns each submitted line into calls
on a :class:`ClientCalls` and each client event into
:class:`~chattycat.ui.describe.DisplayLine` objects. The front ends (scripted,
terminal, desktop) keep only their output form and their I/O.

What the chat is (the user's name, the rooms, their members, the oldest
message loaded) belongs to the client's session; the controller renders the
latest :class:`~chattycat.client.events.SessionChanged` snapshot it was given
and keeps no copy of its own. The snapshot is immutable, so the desktop
client can hand it over from the loop thread as it is. What the controller
owns is UI state: whether the client is online, the rosters the user asked
for, and the current room.

The current room is the room a plain line is said to and the room ``/who``
and ``/history`` act on.

- It starts as the first requested room, else the first room the session
  lists (the server's default room).
- ``/join ROOM`` makes ROOM current at once: the next line is meant for it,
  and the client sends it after the join. (Until the session lists ROOM,
  e.g. while the desktop client's loop thread has not seen the join yet,
  a snapshot without it does not switch away.)
- ``/room ROOM`` switches to a room of the session at once.
- Leaving the current room (``/part``, or the server parting us, or a
  refused join) switches to another room, or to none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from chattycat.client.events import (
    ClientEvent,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    Reconnecting,
    RoomState,
    SessionChanged,
)
from chattycat.protocol.messages import DEFAULT_HISTORY_LIMIT, Member, name_key
from chattycat.ui import commands as cmd
from chattycat.ui.describe import DisplayLine, EventDescriber

__all__ = ["DEFAULT_HISTORY_PAGE", "ChatController", "ClientCalls"]

DEFAULT_HISTORY_PAGE = DEFAULT_HISTORY_LIMIT  # the protocol's own default


class ClientCalls(Protocol):
    """What the controller asks of the client; :class:`~chattycat.client.client.Client` fits."""

    def say(self, room: str, text: str, *, action: bool = False) -> object: ...
    def whisper(self, to: str, text: str) -> object: ...
    def join(self, room: str) -> None: ...
    def part(self, room: str) -> None: ...
    def who(self, room: str) -> None: ...
    def list_rooms(self) -> None: ...
    def history(self, room: str, *, before: int | None = None, limit: int = 50) -> None: ...
    def nick(self, name: str) -> None: ...
    def register(self, password: str) -> None: ...


class ChatController:
    """Current-room state, command handling and event description; see the module docstring.

    ``me`` and ``rooms`` stand for the session until its first snapshot
    arrives. ``on_quit`` runs for ``/quit`` (each front end has its own way
    to leave); ``help_extra`` lines follow the command list in ``/help``.
    With ``note_offline`` a message typed while offline gets a note that it
    is queued.
    """

    def __init__(
        self,
        client: ClientCalls,
        me: str,
        *,
        rooms: Iterable[str] = (),
        on_quit: Callable[[str | None], None],
        help_extra: Sequence[str] = (),
        note_offline: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.session = SessionChanged(me, tuple(
            RoomState(room, False, (), None) for room in dict.fromkeys(rooms)
        ))
        self.current_room: str | None = next(iter(self.session.room_names), None)
        self.online = False
        # Rooms whose roster the user asked for with /who (and not yet got).
        self.rosters_asked: set[str] = set()
        self.describer = EventDescriber(clock=clock, member_color=self._member_color)
        self._on_quit = on_quit
        self._help_extra = tuple(help_extra)
        self._note_offline = note_offline
        self._awaited: str | None = None  # made current by /join, not in a snapshot yet
        # After a bare /register the next line is the password, not a message.
        self.awaiting_password = False
        self._out: list[DisplayLine] = []

    # -- the session, as the latest snapshot tells it ---------------------------------

    @property
    def me(self) -> str:
        """The user's name."""
        return self.session.me

    @property
    def rooms(self) -> list[str]:
        """The rooms the user is in or joining, in join order."""
        return list(self.session.room_names)

    def members(self, room: str | None = None) -> tuple[Member, ...]:
        """Members of ``room`` (default: the current room), sorted case-insensitively."""
        room = room if room is not None else self.current_room
        return () if room is None else self.session.members(room)

    def is_me(self, name: str) -> bool:
        """Whether ``name`` is the user's own name (names compare case-insensitively)."""
        return name_key(name) == name_key(self.me)

    def _member_color(self, room: str, name: str) -> str | None:
        # "parted" carries no color; the member list knows it (the snapshot
        # still lists the member: it follows the event that changes it).
        key = name_key(name)
        return next((m.color for m in self.session.members(room) if name_key(m.name) == key),
                    None)

    # -- events -----------------------------------------------------------------------

    def handle(self, event: ClientEvent) -> list[DisplayLine]:
        """The lines that show ``event``; follows the session and the connection."""
        # Events come before the snapshot they lead to: "you are now known as"
        # is described with the name from before.
        lines = self.describer.describe(event, self.me)
        if isinstance(event, SessionChanged):
            self._follow_session(event)
        elif isinstance(event, Connected):
            self.online = True
        elif isinstance(event, ConnectionLost | Reconnecting | Failed | Closed):
            self.online = False
        return lines

    def _follow_session(self, snapshot: SessionChanged) -> None:
        self.session = snapshot
        rooms = snapshot.room_names
        if self._awaited in rooms:
            self._awaited = None  # from now on it is an ordinary room of the session
        if self.current_room is None or (
            self.current_room not in rooms and self.current_room != self._awaited
        ):
            self._switch_away()

    def room_after(self, leaving: str | None) -> str | None:
        """The room that becomes current when the current room ``leaving`` goes (None: none)."""
        return next((room for room in self.session.room_names if room != leaving), None)

    def _switch_away(self) -> None:
        self.current_room = self.room_after(self.current_room)
        self._awaited = None

    # -- user actions -----------------------------------------------------------------

    def switch_room(self, room: str) -> bool:
        """Make joined ``room`` the current room; False if not joined."""
        if room not in self.session.room_names:
            return False
        self.current_room = room
        self._awaited = None
        return True

    def submit(self, line: str) -> list[DisplayLine]:
        """Act on one typed line (a message or a /command); the lines to show about it."""
        command: Any = cmd.parse_line(line)
        if self.awaiting_password:
            # Never parsed as a command, never echoed: an empty line cancels.
            self.awaiting_password = False
            command = cmd.RegisterCmd(line) if line else cmd.Hint("/register cancelled")
        handler = _COMMANDS.get(type(command))
        if handler is not None:
            try:
                handler(self, command)
            except (ValueError, RuntimeError) as exc:
                # The client refuses what it cannot send (a closed client, a
                # bad name it checks itself): one line for the user, not a traceback.
                self._error(str(exc))
        lines, self._out = self._out, []
        return lines

    def info(self, text: str) -> DisplayLine:
        """A local, dim line (command feedback)."""
        return self.describer.info(text)

    def local_error(self, text: str) -> DisplayLine:
        """A local error line (a bad command, a refused action)."""
        return self.describer.local_error(text)

    # -- commands ---------------------------------------------------------------------

    def _info(self, text: str) -> None:
        self._out.append(self.info(text))

    def _error(self, text: str) -> None:
        self._out.append(self.local_error(text))

    def _need_room(self) -> str | None:
        if self.current_room is None:
            self._error("you are in no room: /join ROOM first")
        return self.current_room

    def _note_if_offline(self) -> None:
        if self._note_offline and not self.online:
            self._info("not connected: will be sent once reconnected")

    def _say(self, command: cmd.SayText | cmd.Me) -> None:
        room = self._need_room()
        if room is not None:
            self.client.say(room, command.text, action=isinstance(command, cmd.Me))
            self._note_if_offline()

    def _whisper(self, command: cmd.Msg) -> None:
        self.client.whisper(command.to, command.text)
        self._note_if_offline()

    def _join(self, command: cmd.JoinRoom) -> None:
        # Joining a room one is in re-sends its roster and history: the
        # reminder of who is there is what a user switching back wants.
        self.client.join(command.room)
        self.current_room = command.room
        self._awaited = None if command.room in self.session.room_names else command.room

    def _part(self, command: cmd.PartRoom) -> None:
        room = command.room or self._need_room()
        if room is None:
            return
        # The client decides whether we are in it (a join on its way counts).
        self.client.part(room)
        if room == self.current_room:
            self._switch_away()

    def _switch(self, command: cmd.SwitchRoom) -> None:
        if self.switch_room(command.room):
            self._info(f"now talking in #{command.room}")
        else:
            self._error(f"you are not in #{command.room}: /join {command.room}")

    def _nick(self, command: cmd.NickCmd) -> None:
        self.client.nick(command.name)

    def _register(self, command: cmd.RegisterCmd) -> None:
        if command.password is None:
            self.awaiting_password = True
            self._info("type the password for your name on the next line (empty: cancel)")
            return
        self.client.register(command.password)
        self._info(f"registering {self.me}...")

    def _who(self, command: cmd.WhoCmd) -> None:
        room = command.room or self._need_room()
        if room is not None:
            self.client.who(room)
            self.rosters_asked.add(room)

    def _list_rooms(self, command: cmd.ListRooms) -> None:
        self.client.list_rooms()

    def _history(self, command: cmd.HistoryCmd) -> None:
        room = self._need_room()
        if room is None:
            return
        state = self.session.room(room)
        before = state.oldest_seq if state is not None else None
        if before == 1:  # seqs start at 1 (PROTOCOL section 5): nothing is older
            self._info(f"no older messages in #{room}")
            return
        self.client.history(room, before=before, limit=command.limit or DEFAULT_HISTORY_PAGE)

    def _quit(self, command: cmd.QuitCmd) -> None:
        self._on_quit(command.reason)

    def _help(self, command: cmd.Help) -> None:
        for text in [*cmd.help_lines(), *self._help_extra]:
            self._info(text)

    def _hint(self, command: cmd.Hint) -> None:
        self._error(command.text)


# What each parsed line does; cmd.Ignore (an empty line) does nothing.
_COMMANDS: dict[type[Any], Callable[[ChatController, Any], None]] = {
    cmd.SayText: ChatController._say,
    cmd.Me: ChatController._say,
    cmd.Msg: ChatController._whisper,
    cmd.JoinRoom: ChatController._join,
    cmd.PartRoom: ChatController._part,
    cmd.SwitchRoom: ChatController._switch,
    cmd.NickCmd: ChatController._nick,
    cmd.RegisterCmd: ChatController._register,
    cmd.WhoCmd: ChatController._who,
    cmd.ListRooms: ChatController._list_rooms,
    cmd.HistoryCmd: ChatController._history,
    cmd.QuitCmd: ChatController._quit,
    cmd.Help: ChatController._help,
    cmd.Hint: ChatController._hint,
}
