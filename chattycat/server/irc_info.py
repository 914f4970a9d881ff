"""IRC commands that ask about the server, users and rooms, and the replies they share.

Registration's welcome burst (001-005, LUSERS, MOTD) is here too, as are
``WHO``, ``WHOIS``, ``NAMES``, ``LIST``, ``MODE``, ``TOPIC``, ``AWAY``,
``USERHOST`` and ``TIME``. Handlers have the shape of those in
:mod:`.irc_commands`, whose table lists them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chattycat.protocol.irc import IrcMessage
from chattycat.protocol.messages import Request, Rooms, Who
from chattycat.protocol.names import name_key
from chattycat.server.irc_model import Command, IrcUser, Pending
from chattycat.server.irc_replies import ISUPPORT, name_of, nick_of, room_of

if TYPE_CHECKING:
    from chattycat.server.irc_session import IrcSession

__all__ = ["motd_lines", "need_params", "welcome_lines", "who_line"]

def need_params(session: IrcSession, command: Command, params: tuple[str, ...],
                count: int) -> bool:
    """Whether ``params`` has ``count`` parameters; if not, 461 is the answer."""
    if len(params) >= count:
        return True
    command.local.append(session.numeric("461", command.name, "Not enough parameters"))
    return False


def welcome_lines(session: IrcSession, server_version: str) -> list[IrcMessage]:
    """RPL_WELCOME to RPL_ISUPPORT, then the MOTD: what a client waits for to be in."""
    me, host = session.nick, session.server_name
    lines = [
        session.numeric("001", f"Welcome to ChattyCat, {me}"),
        session.numeric("002", f"Your host is {host}, running {server_version}"),
        session.numeric("003", "This server speaks ChattyCat and IRC"),
        # No user modes exist ("-"); every room is +n: only members may speak in it.
        session.numeric("004", host, server_version, "-", "n"),
    ]
    for start in range(0, len(ISUPPORT), 12):
        lines.append(session.numeric("005", *ISUPPORT[start:start + 12],
                                     "are supported by this server"))
    return lines + lusers_lines(session) + motd_lines(session)


def _motd(session: IrcSession) -> tuple[str, ...]:
    room = session.door.leave_room
    where = ("Everyone, IRC users too, starts in the server's default room." if room is None
             else f"IRC users start in no channel; others start in #{room}.")
    return (
        "This is a ChattyCat server. Rooms are channels: room lobby is #lobby.",
        where,
        "Messages are stored: CHATHISTORY scrolls back, and JOIN plays the latest",
        "ones back to clients that negotiated server-time.",
    )


def lusers_lines(session: IrcSession) -> list[IrcMessage]:
    """RPL_LUSERCLIENT, RPL_LUSERME, RPL_LOCALUSERS, RPL_GLOBALUSERS: one server, everyone."""
    users = session.door.count_users()
    return [
        session.numeric("251", f"There are {users} users and 0 invisible on 1 servers"),
        session.numeric("255", f"I have {users} clients and 0 servers"),
        session.numeric("265", f"Current local users: {users}"),
        session.numeric("266", f"Current global users: {users}"),
    ]


def on_lusers(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    command.local.extend(lusers_lines(session))
    return []


def motd_lines(session: IrcSession) -> list[IrcMessage]:
    """RPL_MOTDSTART, the lines, RPL_ENDOFMOTD."""
    lines = [session.numeric("375", f"- {session.server_name} Message of the day -")]
    lines += [session.numeric("372", f"- {text}") for text in _motd(session)]
    return [*lines, session.numeric("376", "End of /MOTD command.")]


def on_names(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not params:
        command.local.append(session.numeric("366", "*", "End of /NAMES list"))
        return []
    requests: list[Request] = []
    for channel in params[0].split(","):
        room = room_of(channel)
        if room is None:
            command.local.append(session.numeric("366", channel, "End of /NAMES list"))
        else:
            ref = session.new_ref(Pending("names", command, channel))
            requests.append(Who(room, ref=ref))
    return requests


def on_who(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    mask = params[0] if params else "*"
    room = room_of(mask)
    if room is not None:
        return [Who(room, ref=session.new_ref(Pending("who", command, mask)))]
    name = name_of(mask)
    found = session.door.lookup(name) if name is not None else None
    if found is not None:
        command.local.append(who_line(session, "*", *found))
    command.local.append(session.numeric("315", mask, "End of WHO list"))
    return []


def who_line(session: IrcSession, channel: str, name: str, user: IrcUser) -> IrcMessage:
    """RPL_WHOREPLY for ``name``: H(ere) or G(one, away); nobody is an operator."""
    flags = "G" if user.away is not None else "H"
    return session.numeric("352", channel, user.username, session.host, session.server_name,
                           nick_of(name), flags, f"0 {user.realname}")


def on_whois(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not params:
        command.local.append(session.numeric("431", "No nickname given"))
        return []
    nick = params[-1]
    name = name_of(nick)
    found = session.door.lookup(name) if name is not None else None
    if found is None:
        command.local.append(session.numeric("401", nick, "No such nick/channel"))
    else:
        online, user = found
        shown, reply = nick_of(online), command.local.append
        reply(session.numeric("311", shown, user.username, session.host, "*", user.realname))
        shared = [f"#{room}" for room, members in session.channels.items()
                  if name_key(online) in members]
        if shared:
            reply(session.numeric("319", shown, " ".join(shared)))
        reply(session.numeric("312", shown, session.server_name, "ChattyCat"))
        if user.away is not None:
            reply(session.numeric("301", shown, user.away))
    command.local.append(session.numeric("318", nick, "End of /WHOIS list"))
    return []


def on_list(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    wanted = params[0] if params and params[0].startswith("#") else ""
    return [Rooms(ref=session.new_ref(Pending("list", command, wanted)))]


def on_mode(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not need_params(session, command, params, 1):
        return []
    target, changes = params[0], params[1:]
    reply = command.local.append
    if target.startswith("#"):
        if room_of(target) is None:
            reply(session.numeric("403", target, "No such channel"))
        elif not changes:
            reply(session.numeric("324", target, "+n"))  # only members speak in a room
        elif changes[0].lstrip("+") == "b" and len(changes) == 1:
            reply(session.numeric("368", target, "End of channel ban list"))
        else:
            reply(session.numeric("482", target, "Rooms have no modes or operators"))
    elif name_of(target) is None or session.door.online_name(name_of(target) or "") is None:
        reply(session.numeric("401", target, "No such nick/channel"))
    elif name_key(name_of(target) or "") != name_key(session.name or ""):
        reply(session.numeric("502", "Can't change mode for other users"))
    elif changes:
        reply(session.numeric("501", "Unknown MODE flag"))
    else:
        reply(session.numeric("221", "+"))
    return []


def on_topic(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not need_params(session, command, params, 1):
        return []
    room = room_of(params[0])
    if room is None:
        command.local.append(session.numeric("403", params[0], "No such channel"))
    elif len(params) > 1:
        command.local.append(session.numeric("482", params[0], "Rooms have no topics"))
    else:  # 331 for a room that exists, 403 for one that does not: the machine knows
        return [Who(room, ref=session.new_ref(Pending("topic", command, params[0])))]
    return []


def on_away(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    # Only IRC users see it (WHOIS, WHO, 301 on a private message): native
    # clients have no notion of away.
    if params and params[0]:
        session.user.away = params[0][:200]
        command.local.append(session.numeric("306", "You have been marked as being away"))
    else:
        session.user.away = None
        command.local.append(session.numeric("305", "You are no longer marked as being away"))
    return []


def on_time(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    now = time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(session.door.clock()))
    command.local.append(session.numeric("391", session.server_name, now))
    return []


def on_userhost(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not need_params(session, command, params, 1):
        return []
    replies = []
    for nick in params[:5]:
        name = name_of(nick)
        found = session.door.lookup(name) if name is not None else None
        if found is not None:
            online, user = found
            state = "-" if user.away is not None else "+"
            replies.append(f"{nick_of(online)}={state}{user.username}@{session.host}")
    command.local.append(session.numeric("302", " ".join(replies)))
    return []


def on_motd(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    command.local.extend(motd_lines(session))
    return []
