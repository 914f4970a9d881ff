"""Sans-IO parsing of what the user types into the client: a line -> a command.

Both the interactive and the scripted (plain) client feed each input line to
:func:`parse_line` and act on the typed object it returns. Nothing here
touches a socket or the terminal, so every rule is tested without either.

- An empty line is :class:`Ignore`.
- A line not starting with ``/`` is :class:`SayText` to the current room.
- ``//text`` sends ``/text`` literally (how to start a message with a slash).
- A known command with bad arguments, or an unknown one, is a :class:`Hint`:
  a one-line explanation, never a message sent to the room by mistake.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from chattycat.protocol.messages import MAX_HISTORY_LIMIT, MAX_TEXT_CHARS
from chattycat.protocol.names import NAME_RULE, ROOM_RULE, is_valid_name, is_valid_room

__all__ = [
    "COMMANDS",
    "Command",
    "Help",
    "Hint",
    "HistoryCmd",
    "Ignore",
    "JoinRoom",
    "ListRooms",
    "Me",
    "Msg",
    "NickCmd",
    "PartRoom",
    "QuitCmd",
    "RegisterCmd",
    "SayText",
    "SwitchRoom",
    "WhoCmd",
    "help_lines",
    "parse_line",
]


@dataclass(frozen=True, slots=True)
class SayText:
    """A plain chat line for the current room."""

    text: str


@dataclass(frozen=True, slots=True)
class Me:
    """``/me TEXT``: an emote in the current room."""

    text: str


@dataclass(frozen=True, slots=True)
class Msg:
    """``/msg NAME TEXT``: a whisper."""

    to: str
    text: str


@dataclass(frozen=True, slots=True)
class JoinRoom:
    """``/join ROOM``: join it and make it the current room."""

    room: str


@dataclass(frozen=True, slots=True)
class PartRoom:
    """``/part [ROOM]``: leave ROOM (None: the current room)."""

    room: str | None


@dataclass(frozen=True, slots=True)
class SwitchRoom:
    """``/room ROOM``: make a joined room the current room."""

    room: str


@dataclass(frozen=True, slots=True)
class NickCmd:
    """``/nick NAME``: change one's name."""

    name: str


@dataclass(frozen=True, slots=True)
class WhoCmd:
    """``/who [ROOM]``: the members of ROOM (None: the current room)."""

    room: str | None


@dataclass(frozen=True, slots=True)
class ListRooms:
    """``/rooms``: the rooms that have members."""


@dataclass(frozen=True, slots=True)
class HistoryCmd:
    """``/history [N]``: N older messages of the current room (None: the default)."""

    limit: int | None


@dataclass(frozen=True, slots=True)
class QuitCmd:
    """``/quit [REASON]``."""

    reason: str | None


@dataclass(frozen=True, slots=True)
class Help:
    """``/help``."""


@dataclass(frozen=True, slots=True)
class Hint:
    """The line was not understood; ``text`` is a one-line explanation for the user."""

    text: str


@dataclass(frozen=True, slots=True)
class RegisterCmd:
    """``/register [PASSWORD]``: register one's name; without it, the next line is the password."""

    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do (an empty line)."""


Command = (
    SayText | Me | Msg | JoinRoom | PartRoom | SwitchRoom | NickCmd | WhoCmd | ListRooms
    | HistoryCmd | QuitCmd | Help | Hint | Ignore | RegisterCmd
)

# name -> (usage, one-line description); also the source of /help and Tab completion.
COMMANDS: dict[str, tuple[str, str]] = {
    "join": ("/join ROOM", "join a room and make it the current one"),
    "part": ("/part [ROOM]", "leave a room (default: the current one)"),
    "room": ("/room ROOM", "switch the current room"),
    "msg": ("/msg NAME TEXT", "whisper to one user"),
    "me": ("/me TEXT", "emote: '* you TEXT'"),
    "nick": ("/nick NAME", "change your name"),
    "register": ("/register", "register your name with a password (asked next, hidden)"),
    "who": ("/who [ROOM]", "who is in a room"),
    "rooms": ("/rooms", "list the rooms that have members"),
    "history": ("/history [N]", "show N older messages of the current room"),
    "quit": ("/quit [REASON]", "leave the chat"),
    "help": ("/help", "this list"),
}

def help_lines() -> list[str]:
    """The /help text, one command per line."""
    width = max(len(usage) for usage, _ in COMMANDS.values())
    lines = [f"{usage.ljust(width)}  {text}" for usage, text in COMMANDS.values()]
    lines.append(f"{'//TEXT'.ljust(width)}  send a message that starts with '/'")
    return lines


def parse_line(line: str) -> Command:
    """Turn one input line (without its newline) into a command."""
    if not line.strip():
        return Ignore()
    if line.startswith("//"):
        return _say(line[1:])
    if not line.startswith("/"):
        return _say(line)
    name, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    parser = _PARSERS.get(name.lower())
    if parser is None:
        return Hint(_unknown(name))
    return parser(rest)


def _say(text: str) -> Command:
    return _too_long(text) or SayText(text)


def _too_long(text: str) -> Hint | None:
    if len(text) > MAX_TEXT_CHARS:
        return Hint(f"message too long ({len(text)} characters; at most {MAX_TEXT_CHARS})")
    return None


def _usage(name: str, rule: str | None = None) -> Hint:
    # With the naming rule when what was typed is not a name at all: "usage"
    # alone does not say why "/join Bad Room!" is wrong.
    usage = COMMANDS[name][0]
    return Hint(f"usage: {usage} ({rule})" if rule else f"usage: {usage}")


def _unknown(name: str) -> str:
    if not name:
        return "a command name must follow '/'; to send a '/' message type '//'; see /help"
    close = [c for c in COMMANDS if c.startswith(name.lower())]
    close = close or difflib.get_close_matches(name.lower(), COMMANDS, n=1, cutoff=0.6)
    if close:
        return f"unknown command /{name}; did you mean {COMMANDS[close[0]][0]}? (/help lists all)"
    return f"unknown command /{name}; /help lists the commands, '//' sends a '/' message"


def _text_arg(name: str, rest: str, make: Callable[[str], Command]) -> Command:
    if not rest:
        return _usage(name)
    return _too_long(rest) or make(rest)


def _room_arg(name: str, rest: str, *, optional: bool) -> str | Hint | None:
    if not rest:
        return None if optional else _usage(name)
    if " " in rest:
        return _usage(name, ROOM_RULE)
    if not is_valid_room(rest):
        return Hint(f"bad room name {rest!r}: {ROOM_RULE}")
    return rest


def _parse_join(rest: str) -> Command:
    room = _room_arg("join", rest, optional=False)
    return room if isinstance(room, Hint) else JoinRoom(str(room))


def _parse_part(rest: str) -> Command:
    room = _room_arg("part", rest, optional=True)
    return room if isinstance(room, Hint) else PartRoom(room)


def _parse_room(rest: str) -> Command:
    room = _room_arg("room", rest, optional=False)
    return room if isinstance(room, Hint) else SwitchRoom(str(room))


def _parse_who(rest: str) -> Command:
    room = _room_arg("who", rest, optional=True)
    return room if isinstance(room, Hint) else WhoCmd(room)


def _parse_msg(rest: str) -> Command:
    to, _, text = rest.partition(" ")
    text = text.strip()
    if not to or not text:
        return _usage("msg")
    if not is_valid_name(to):
        return Hint(f"bad name {to!r}: {NAME_RULE}")
    return _text_arg("msg", text, lambda t: Msg(to, t))


def _parse_nick(rest: str) -> Command:
    if not rest:
        return _usage("nick")
    if " " in rest:
        return _usage("nick", NAME_RULE)
    if not is_valid_name(rest):
        return Hint(f"bad name {rest!r}: {NAME_RULE}")
    return NickCmd(rest)


def _parse_history(rest: str) -> Command:
    if not rest:
        return HistoryCmd(None)
    if not rest.isdigit() or not 1 <= int(rest) <= MAX_HISTORY_LIMIT:
        return Hint(f"usage: /history [N] with N from 1 to {MAX_HISTORY_LIMIT}")
    return HistoryCmd(int(rest))


def _no_args(name: str, command: Command) -> Callable[[str], Command]:
    return lambda rest: _usage(name) if rest else command


_PARSERS: dict[str, Callable[[str], Command]] = {
    "join": _parse_join,
    "part": _parse_part,
    "room": _parse_room,
    "msg": _parse_msg,
    "me": lambda rest: _text_arg("me", rest, Me),
    "nick": _parse_nick,
    "register": lambda rest: RegisterCmd(rest or None),
    "who": _parse_who,
    "rooms": _no_args("rooms", ListRooms()),
    "history": _parse_history,
    "quit": lambda rest: QuitCmd(rest or None),
    "help": lambda rest: Help(),
}
