"""ChattyCat frames as IRC lines, for one connection (what it negotiated, who it is).

:func:`render_frame` is the table from frame type to renderer. A frame that
answers a request finds it through ``ref`` (or a say's ``id``) in the
session's pending requests; what a labeled command caused is held on that
command until its barrier releases it as one labeled response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chattycat.protocol.irc import IrcMessage
from chattycat.protocol.messages import (
    Error,
    Frame,
    History,
    Joined,
    Message,
    Notice,
    Parted,
    Ping,
    Pong,
    Renamed,
    RoomList,
    Roster,
    Welcome,
    Whisper,
    name_key,
)
from chattycat.server.irc_history import batch_lines, message_lines
from chattycat.server.irc_info import welcome_lines, who_line
from chattycat.server.irc_model import IrcUser, Pending, Registration
from chattycat.server.irc_replies import irc_time, names_lines, nick_of, room_of, text_lines

if TYPE_CHECKING:
    from chattycat.server.irc_session import IrcSession

__all__ = ["render_frame"]

Lines = list[IrcMessage]
# Errors after which the machine closes the connection: IRC says ERROR.
_FATAL = frozenset({"replaced", "slow_consumer", "frame_too_large"})
# A refused sign-in: RFC 2812 464 ERR_PASSWDMISMATCH, then the connection ends.
_AUTH_FAILED = "auth_failed"
# PROTOCOL error code -> numeric, per kind of request (params after the nick).
_NUMERICS: dict[tuple[str, str], tuple[str, str]] = {
    ("hello", "name_taken"): ("433", "Nickname is already in use"),
    ("nick", "name_taken"): ("433", "Nickname is already in use"),
    ("hello", "bad_name"): ("432", "Erroneous nickname"),
    ("nick", "bad_name"): ("432", "Erroneous nickname"),
    ("join", "bad_room"): ("403", "No such channel"),
    ("part", "not_in_room"): ("442", "You're not on that channel"),
    ("say", "not_in_room"): ("404", "Cannot send to channel"),
    ("say", "no_such_user"): ("401", "No such nick/channel"),
    ("say", "bad_room"): ("403", "No such channel"),
}


def _is_me(session: IrcSession, name: str) -> bool:
    return session.name is not None and name_key(name) == name_key(session.name)


def _find(session: IrcSession, kind: str, target: str) -> tuple[int, Pending] | None:
    """The oldest pending request of ``kind`` for ``target`` (compared case-insensitively)."""
    for ref, pending in session.pending.items():
        if pending.kind == kind and pending.target.lower() == target.lower():
            return ref, pending
    return None


def _settle(session: IrcSession, kind: str, target: str) -> Pending | None:
    found = _find(session, kind, target)
    if found is None:
        return None
    return session.pending.pop(found[0])


def _done(session: IrcSession, ref: object) -> None:
    """The request ``ref`` named has had its last reply."""
    if isinstance(ref, int):
        session.pending.pop(ref, None)


def _welcome(session: IrcSession, frame: Welcome, pending: Pending | None) -> Lines:
    session.registered(frame.name, frame.session)
    return welcome_lines(session, frame.server)


def _joined(session: IrcSession, frame: Joined, pending: Pending | None) -> Lines:
    line = IrcMessage("JOIN", ("#" + frame.room,), session.source_of(frame.name))
    if _is_me(session, frame.name) and _find(session, "autopart", "#" + frame.room):
        return []  # the default room, which this door's users leave at once
    if _is_me(session, frame.name):
        session.channels[frame.room] = {name_key(frame.name): frame.name}
    elif frame.room in session.channels:
        session.channels[frame.room][name_key(frame.name)] = frame.name
    if "server-time" in session.caps:
        line = IrcMessage(line.command, line.params, line.source, {"time": irc_time(frame.ts)})
    return [line]


def _parted(session: IrcSession, frame: Parted, pending: Pending | None) -> Lines:
    source, channel = session.source_of(frame.name), "#" + frame.room
    if _is_me(session, frame.name):
        left = session.channels.pop(frame.room, None)
        return [] if left is None else [IrcMessage("PART", (channel,), source)]
    key = name_key(frame.name)
    if frame.reason == "part":
        session.channels.get(frame.room, {}).pop(key, None)
        return [IrcMessage("PART", (channel,), source)]
    # A user who leaves the server leaves every room, one parted frame each;
    # IRC says so once, with QUIT.
    seen = [members for members in session.channels.values() if key in members]
    for members in seen:
        members.pop(key, None)
    reason = {"quit": "Quit", "disconnected": "Connection closed"}.get(frame.reason, frame.reason)
    return [IrcMessage("QUIT", (reason,), source)] if seen else []


def _roster(session: IrcSession, frame: Roster, pending: Pending | None) -> Lines:
    channel = "#" + frame.room
    kind = pending.kind if pending is not None else "names"
    if kind == "hello" and session.door.leave_room == frame.room:
        return []
    if kind == "topic":
        if not frame.more and frame.ref is not None:
            _done(session, frame.ref)
            return [session.numeric("331", pending.target if pending else channel,
                                    "No topic is set")]
        return []
    if frame.room in session.channels and kind != "who":
        session.channels[frame.room].update({name_key(m.name): m.name for m in frame.members})
    if kind == "who":
        users = session.door.users
        lines = [who_line(session, channel, m.name,
                          users.get(name_key(m.name)) or IrcUser(m.name, m.name))
                 for m in frame.members]
        end = session.numeric("315", pending.target if pending else channel, "End of WHO list")
    else:
        shown = (session.source_of(m.name) if "userhost-in-names" in session.caps
                 else nick_of(m.name) for m in frame.members)
        lines = names_lines(session.server_name, session.nick, channel, shown)
        end = session.numeric("366", channel, "End of /NAMES list")
    if frame.more:
        return lines
    if kind in ("names", "who") and frame.ref is not None:
        _done(session, frame.ref)
    return [*lines, end]


def _history(session: IrcSession, frame: History, pending: Pending | None) -> Lines:
    if pending is None:
        return []
    pending.gathered.extend(frame.messages)
    if frame.more:
        return []
    _done(session, frame.ref)
    if pending.kind == "hello" and session.door.leave_room == frame.room:
        return []
    if pending.kind == "chathistory":
        chosen = pending.select(pending.gathered) if pending.select else pending.gathered
        return batch_lines(session, pending.target, chosen)
    # JOIN playback: only for clients that can tell old lines from new (server-time).
    if "server-time" not in session.caps or not pending.gathered:
        return []
    return batch_lines(session, "#" + frame.room, pending.gathered)


def _message(session: IrcSession, frame: Message, pending: Pending | None) -> Lines:
    if _is_me(session, frame.sender) and "echo-message" not in session.caps:
        return []
    lines = message_lines(session, frame)
    if pending is not None and pending.kind == "notice":
        # The echo of a NOTICE is a NOTICE; others see a message (ChattyCat has
        # no notices from users).
        return [IrcMessage("NOTICE", m.params, m.source, m.tags) for m in lines]
    return lines


def _whisper(session: IrcSession, frame: Whisper, pending: Pending | None) -> Lines:
    tags = {"time": irc_time(frame.ts)} if "server-time" in session.caps else {}
    copies = 1
    if _is_me(session, frame.sender):
        # To oneself, it is both received and (with echo-message) echoed.
        copies = ("echo-message" in session.caps) + _is_me(session, frame.to)
    verb = "NOTICE" if pending is not None and pending.kind == "notice" else "PRIVMSG"
    lines = text_lines(session.source_of(frame.sender), verb, nick_of(frame.to), frame.text,
                       frame.action)
    return [IrcMessage(m.command, m.params, m.source, tags) for m in lines] * copies


def _renamed(session: IrcSession, frame: Renamed, pending: Pending | None) -> Lines:
    line = IrcMessage("NICK", (nick_of(frame.new),), session.source_of(frame.old))
    old_key = name_key(frame.old)
    if _is_me(session, frame.old):
        session.renamed(frame.new)
    for members in session.channels.values():
        if members.pop(old_key, None) is not None:
            members[name_key(frame.new)] = frame.new
    return [line]


def _notice(session: IrcSession, frame: Notice, pending: Pending | None) -> Lines:
    return [IrcMessage("NOTICE", (session.nick, frame.text), session.server_name)]


def _ping(session: IrcSession, frame: Ping, pending: Pending | None) -> Lines:
    return [IrcMessage("PING", (str(frame.token),), session.server_name)]


def _pong(session: IrcSession, frame: Pong, pending: Pending | None) -> Lines:
    return []  # a barrier's answer: the lines it holds are released by render_frame


def _room_list(session: IrcSession, frame: RoomList, pending: Pending | None) -> Lines:
    wanted = {room_of(c) for c in pending.target.split(",")} if pending and pending.target else None
    lines = [session.numeric("322", "#" + info.room, str(info.members), "")
             for info in frame.rooms if wanted is None or info.room in wanted]
    if frame.more:
        return lines
    if frame.ref is not None:
        _done(session, frame.ref)
    return [*lines, session.numeric("323", "End of /LIST")]


def _error(session: IrcSession, frame: Error, pending: Pending | None) -> Lines:
    if pending is None:
        if frame.code in _FATAL or session.registration is not Registration.ACTIVE:
            return [IrcMessage("ERROR", (frame.message,))]
        return [IrcMessage("NOTICE", (session.nick, frame.message), session.server_name)]
    kind = "say" if pending.kind == "notice" else pending.kind
    if pending.kind == "hello":
        session.registration, session.name = Registration.REGISTERING, None
        if frame.code == _AUTH_FAILED:
            session.close_now = True
            return [session.numeric("464", f"Password incorrect: {frame.message}"),
                    IrcMessage("ERROR", ("Closing link: password incorrect",))]
    if pending.kind == "quit":
        session.close_now = True
        return []
    if pending.kind == "autopart":
        return []  # the hello failed (433): the part had nothing to do
    if pending.kind == "topic":
        return [session.numeric("403", pending.target, "No such channel")]
    if pending.kind == "notice":
        return []  # RFC 2812 3.3.2: never answer a NOTICE
    if frame.code == "rate_limited":
        return [session.numeric("263", pending.command.name, "Please wait a while and try again")]
    if pending.kind == "chathistory":
        return [IrcMessage("FAIL", ("CHATHISTORY", "INVALID_TARGET", pending.target,
                                    frame.message), session.server_name)]
    if pending.kind in ("names", "who"):
        if pending.kind == "names":
            return [session.numeric("366", pending.target, "End of /NAMES list")]
        return [session.numeric("315", pending.target, "End of WHO list")]
    numeric = _NUMERICS.get((kind, frame.code))
    if numeric is None:
        return [IrcMessage("NOTICE", (session.nick, frame.message), session.server_name)]
    return [session.numeric(numeric[0], pending.target, numeric[1])]


_RENDERERS: dict[type[Frame], Callable[[IrcSession, Any, Pending | None], Lines]] = {
    Welcome: _welcome, Joined: _joined, Parted: _parted, Roster: _roster, History: _history,
    Message: _message, Whisper: _whisper, Renamed: _renamed, Notice: _notice, Ping: _ping,
    Pong: _pong, RoomList: _room_list, Error: _error,
}


def _request_of(session: IrcSession, frame: Frame) -> Pending | None:
    """The pending request ``frame`` answers, if any (settling those that end here)."""
    ref = getattr(frame, "ref", None)
    if isinstance(ref, int) and ref in session.pending:
        pending = session.pending[ref]
        if isinstance(frame, Error) or pending.kind in ("barrier", "quit"):
            del session.pending[ref]
        return pending
    msg_id = getattr(frame, "id", None)
    mine = isinstance(frame, Error) or (
        isinstance(frame, Message | Whisper) and _is_me(session, frame.sender))
    if mine and msg_id in session.said:
        return session.said.pop(msg_id)
    if isinstance(frame, Joined) and _is_me(session, frame.name):
        found = _find(session, "join", "#" + frame.room)
        return found[1] if found else None
    if isinstance(frame, Parted) and _is_me(session, frame.name):
        return (_settle(session, "part", "#" + frame.room)
                or _settle(session, "autopart", "#" + frame.room))
    if isinstance(frame, Renamed) and _is_me(session, frame.old):
        return _settle(session, "nick", nick_of(frame.new))
    return None


def render_frame(session: IrcSession, frame: Frame) -> Lines:
    """The lines ``frame`` becomes for this client, labeled responses held or released."""
    pending = _request_of(session, frame)
    renderer = _RENDERERS.get(type(frame))
    lines = renderer(session, frame, pending) if renderer is not None else []
    if pending is None:
        return lines
    command = pending.command
    if pending.kind == "barrier":
        return session.finish(command)
    if command.label is None:
        return lines
    if isinstance(frame, Whisper) and _is_me(session, frame.to) and len(lines) > 1:
        # A labeled message to oneself: the echo carries the label, the copy
        # received does not (IRCv3 labeled-response).
        half = len(lines) // 2
        command.lines.extend(lines[:half])
        return lines[half:]
    command.lines.extend(lines)
    return []
