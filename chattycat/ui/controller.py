"""The controller all three front ends share: typed lines to client calls, events to lines.

:class:`ChatController` is sans-IO: it holds the UI state every front end
has (the current room, the rooms joined, the user's name, whether the client
is online) and turns each submitted line into calls on a :class:`ClientCalls`
and each client event into :class:`~chattycat.ui.describe.DisplayLine` objects.
The front ends (``plain``, ``interactive``, ``gui_model``) keep only their
output form and their I/O.

The current room is UI state, not protocol state: it is the room a plain
line is said to and the room ``/who`` and ``/history`` act on.

- It starts as the first requested room, else the first room the server
  joins us to.
- ``/join ROOM`` makes ROOM current once our own ``joined`` arrives (the join
  may still fail, e.g. with ``rate_limited``); at once if already joined.
- ``/room ROOM`` switches to a joined room at once.
- Leaving the current room (``/part``, or the server parting us) switches to
  another joined room, or to none.

The controller tracks rooms and the oldest message seen from the events
themselves instead of asking the client: the desktop client runs the client
on another thread, where reading its state would race.
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
)
from chattycat.protocol.messages import (
    DEFAULT_HISTORY_LIMIT,
    History,
    Joined,
    Message,
    Parted,
    Renamed,
    name_key,
)
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


class ChatController:
    """Current-room state, command handling and event description; see the module docstring.

    ``on_quit`` runs for ``/quit`` (each front end has its own way to leave);
    ``help_extra`` lines follow the command list in ``/help``. With
    ``note_offline`` a message typed while offline gets a note that it is
    queued. With ``join_switches_at_once`` ``/join`` makes the room current
    without waiting for the server (for scripts, whose next line is already
    meant for that room).
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
        join_switches_at_once: bool = False,
        clock: Callable[[], float] = time.time,
        member_color: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.client = client
        self.me = me
        self.rooms: list[str] = list(dict.fromkeys(rooms))  # joined, in join order
        self.current_room: str | None = self.rooms[0] if self.rooms else None
        self.online = False
        # Rooms whose roster the user asked for with /who (and not yet got).
        self.rosters_asked: set[str] = set()
        self.describer = EventDescriber(clock=clock, member_color=member_color)
        self._on_quit = on_quit
        self._help_extra = tuple(help_extra)
        self._note_offline = note_offline
        self._join_switches_at_once = join_switches_at_once
        self._switch_on_join: str | None = None
        self._oldest_seq: dict[str, int] = {}
        self._out: list[DisplayLine] = []

    # -- events -----------------------------------------------------------------------

    def handle(self, event: ClientEvent) -> list[DisplayLine]:
        """The lines that show ``event``; updates the state it changes."""
        # Described first: "you are now known as" needs the name from before.
        lines = self.describer.describe(event, self.me)
        self._follow(event)
        return lines

    def _follow(self, event: ClientEvent) -> None:
        if isinstance(event, Connected):
            self.me = event.welcome.name
            self.online = True
        elif isinstance(event, ConnectionLost | Reconnecting | Failed | Closed):
            self.online = False
        elif isinstance(event, Renamed) and self.is_me(event.old):
            self.me = event.new
        elif isinstance(event, Joined) and self.is_me(event.name):
            self._joined(event.room)
        elif isinstance(event, Parted) and self.is_me(event.name):
            self._leave(event.room)
        elif isinstance(event, Message):
            self._note_seq(event)
        elif isinstance(event, History):
            for message in event.messages:
                self._note_seq(message)

    def is_me(self, name: str) -> bool:
        """Whether ``name`` is the user's own name (names compare case-insensitively)."""
        return name_key(name) == name_key(self.me)

    def _joined(self, room: str) -> None:
        if room not in self.rooms:
            self.rooms.append(room)
        if self.current_room is None or room == self._switch_on_join:
            self._switch_on_join = None
            self.current_room = room

    def _leave(self, room: str) -> None:
        if room not in self.rooms:
            return
        self.rooms.remove(room)
        self._oldest_seq.pop(room, None)
        if room == self.current_room:
            self.current_room = self.rooms[0] if self.rooms else None

    def _note_seq(self, message: Message) -> None:
        oldest = self._oldest_seq.get(message.room)
        if oldest is None or message.seq < oldest:
            self._oldest_seq[message.room] = message.seq

    # -- user actions -----------------------------------------------------------------

    def switch_room(self, room: str) -> bool:
        """Make joined ``room`` the current room; False if not joined."""
        if room not in self.rooms:
            return False
        self.current_room = room
        return True

    def submit(self, line: str) -> list[DisplayLine]:
        """Act on one typed line (a message or a /command); the lines to show about it."""
        command = cmd.parse_line(line)
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
        if command.room in self.rooms or self._join_switches_at_once:
            self.current_room = command.room
        else:
            self._switch_on_join = command.room

    def _part(self, command: cmd.PartRoom) -> None:
        room = command.room or self._need_room()
        if room is None:
            return
        if room not in self.rooms:
            self._error(f"you are not in #{room}")
            return
        self.client.part(room)
        # Left at once: offline, no "parted" will come to confirm it.
        self._leave(room)

    def _switch(self, command: cmd.SwitchRoom) -> None:
        if self.switch_room(command.room):
            self._info(f"now talking in #{command.room}")
        else:
            self._error(f"you are not in #{command.room}: /join {command.room}")

    def _nick(self, command: cmd.NickCmd) -> None:
        self.client.nick(command.name)

    def _who(self, command: cmd.WhoCmd) -> None:
        room = command.room or self._need_room()
        if room is not None:
            self.client.who(room)
            self.rosters_asked.add(room)

    def _list_rooms(self, command: cmd.ListRooms) -> None:
        self.client.list_rooms()

    def _history(self, command: cmd.HistoryCmd) -> None:
        room = self._need_room()
        if room is not None:
            before = self._oldest_seq.get(room)
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
    cmd.WhoCmd: ChatController._who,
    cmd.ListRooms: ChatController._list_rooms,
    cmd.HistoryCmd: ChatController._history,
    cmd.QuitCmd: ChatController._quit,
    cmd.Help: ChatController._help,
    cmd.Hint: ChatController._hint,
}
