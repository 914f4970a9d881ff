"""IRC commands, each a small function from one client line to ChattyCat requests.

Every handler takes the session, the :class:`Command` being answered and
the line's parameters, and returns the requests for the state machine;
lines it can answer itself go to ``command.local`` (they leave behind the
session's barrier, in order). :data:`COMMANDS` is the table; which commands
are allowed before registration is :data:`PRE_REGISTRATION`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from chattycat.protocol.irc import IrcMessage, strip_formatting
from chattycat.protocol.messages import Join, Nick, Part, Pong, Request, Say, WhisperTo
from chattycat.protocol.names import NAME_RULE, ROOM_RULE
from chattycat.server.irc_history import chathistory
from chattycat.server.irc_info import (
    need_params,
    on_away,
    on_list,
    on_lusers,
    on_mode,
    on_motd,
    on_names,
    on_time,
    on_topic,
    on_userhost,
    on_who,
    on_whois,
)
from chattycat.server.irc_model import Command, Pending, Registration
from chattycat.server.irc_replies import SUPPORTED_CAPS, name_of, nick_of, room_of

if TYPE_CHECKING:
    from chattycat.server.irc_session import IrcSession

__all__ = ["COMMANDS", "PRE_REGISTRATION"]

Handler = Callable[["IrcSession", Command, tuple[str, ...]], list[Request]]
PRE_REGISTRATION = frozenset({"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})
# Control characters other than tab never reach a native client (a terminal
# would act on them); formatting codes are stripped before this.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


# -- registration -------------------------------------------------------------


def on_cap(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not need_params(session, command, params, 1):
        return []
    sub = params[0].upper()
    reply = command.local.append
    if sub == "LS":
        if len(params) > 1 and params[1].isdigit() and int(params[1]) >= 302:
            session.caps.add("cap-notify")  # implied by CAP LS 302
        if session.registration is not Registration.ACTIVE:
            session.cap_negotiating = True
        reply(IrcMessage("CAP", (session.nick, "LS", " ".join(SUPPORTED_CAPS)),
                         session.server_name))
    elif sub == "LIST":
        reply(IrcMessage("CAP", (session.nick, "LIST", " ".join(sorted(session.caps))),
                         session.server_name))
    elif sub == "REQ":
        _cap_req(session, command, params[1] if len(params) > 1 else "")
    elif sub == "END":
        session.cap_negotiating = False
        return session.registered_if_ready(command)
    else:
        reply(session.numeric("410", params[0], "Invalid CAP command"))
    return []


def _cap_req(session: IrcSession, command: Command, wanted: str) -> None:
    if session.registration is not Registration.ACTIVE:
        session.cap_negotiating = True
    names = wanted.split()
    known = all(n.removeprefix("-") in SUPPORTED_CAPS for n in names)
    verdict = "ACK" if known and names else "NAK"
    if verdict == "ACK":
        for name in names:
            if name.startswith("-"):
                session.caps.discard(name[1:])
            else:
                session.caps.add(name)
    command.local.append(IrcMessage("CAP", (session.nick, verdict, wanted), session.server_name))


def on_pass(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    # IRC has one password: it goes into the hello both as the server password
    # and as the account password. Each is ignored where the server asks for
    # none (no server password; a name without an account on an open server).
    if session.registration is not Registration.REGISTERING:
        command.local.append(session.numeric("462", "You may not reregister"))
    elif not params or not params[0]:
        command.local.append(session.numeric("461", "PASS", "Not enough parameters"))
    else:
        session.password = params[0]
    return []


def on_nick(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not params or not params[0]:
        command.local.append(session.numeric("431", "No nickname given"))
        return []
    name = name_of(params[0])
    if name is None:
        command.local.append(session.numeric("432", params[0], f"Erroneous nickname: {NAME_RULE}"))
        return []
    if session.registration is Registration.ACTIVE:
        if name == session.name:
            return []
        return [Nick(name, ref=session.new_ref(Pending("nick", command, params[0])))]
    session.name = name
    return session.registered_if_ready(command)


def on_user(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if session.registration is not Registration.REGISTERING:
        command.local.append(session.numeric("462", "You may not reregister"))
        return []
    if not need_params(session, command, params, 4) or not params[0] or not params[3]:
        if len(params) >= 4:  # present but empty: as missing (Modern IRC, USER)
            command.local.append(session.numeric("461", command.name, "Not enough parameters"))
        return []
    session.user.username, session.user.realname = params[0][:32], params[3][:200]
    session.user_given = True
    return session.registered_if_ready(command)


def on_ping(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not params:
        command.local.append(session.numeric("409", "No origin specified"))
        return []
    command.local.append(IrcMessage("PONG", (session.server_name, params[0]),
                                    session.server_name))
    return []


def on_pong(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    # The machine's heartbeat wants an answer; before hello it has sent no ping.
    return [Pong()] if session.registration is Registration.ACTIVE else []


def on_quit(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    return session.quit(command, params[0] if params else None)


# -- channels ---------------------------------------------------------------


def on_join(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not need_params(session, command, params, 1):
        return []
    if params[0] == "0":  # JOIN 0: leave every channel
        return [Part(room, ref=session.new_ref(Pending("part", command, "#" + room)))
                for room in session.channels]
    requests: list[Request] = []
    for channel in params[0].split(","):
        room = room_of(channel)
        if room is None:
            command.local.append(session.numeric("403", channel, f"No such channel: {ROOM_RULE}"))
        elif room not in session.channels:
            ref = session.new_ref(Pending("join", command, channel))
            requests.append(Join(room, ref=ref))
    return requests


def on_part(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    if not need_params(session, command, params, 1):
        return []
    requests: list[Request] = []
    for channel in params[0].split(","):
        room = room_of(channel)
        if room is None:
            command.local.append(session.numeric("403", channel, "No such channel"))
        else:
            ref = session.new_ref(Pending("part", command, channel))
            requests.append(Part(room, ref=ref))
    return requests


def _native_text(text: str) -> tuple[str, bool] | None:
    """IRC text as ChattyCat text and whether it is an action; None for other CTCP."""
    action = False
    if text.startswith("\x01"):
        body = text[1:].removesuffix("\x01")
        verb, _, rest = body.partition(" ")
        if verb.upper() != "ACTION":
            return None  # CTCP VERSION, PING, ...: nothing a ChattyCat user can see
        text, action = rest, True
    return _CONTROL_RE.sub("", strip_formatting(text)).strip(), action


def on_privmsg(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    # RFC 2812 3.3.2: a NOTICE is never answered automatically, errors included.
    kind = "notice" if command.name == "NOTICE" else "say"
    quiet = kind == "notice"
    if not params or not params[0]:
        if not quiet:
            command.local.append(session.numeric("411", f"No recipient given ({command.name})"))
        return []
    native = _native_text(params[1]) if len(params) > 1 else ("", False)
    if native is None:
        return []
    text, action = native
    if not text:
        if not quiet:
            command.local.append(session.numeric("412", "No text to send"))
        return []
    requests: list[Request] = []
    for target in params[0].split(","):
        request = _say_to(session, command, kind, target, text, action)
        if request is not None:
            requests.append(request)
    return requests


def _say_to(session: IrcSession, command: Command, kind: str, target: str, text: str,
            action: bool) -> Request | None:
    # Every say is answered by its echo or an error, both carrying its id:
    # that, not a ref, is how the answer finds this target.
    msg_id = session.new_id()
    if target.startswith("#"):
        room = room_of(target)
        if room is not None:
            session.said[msg_id] = Pending(kind, command, target)
            return Say(room, text, msg_id, action)
        code, why = "403", "No such channel"
    else:
        name = name_of(target)
        if name is not None:
            session.said[msg_id] = Pending(kind, command, target)
            found = session.door.lookup(name)
            if found is not None and found[1].away is not None and kind != "notice":
                command.local.append(session.numeric("301", nick_of(found[0]), found[1].away))
            return WhisperTo(name, text, msg_id, action)
        code, why = "401", "No such nick/channel"
    if kind != "notice":
        command.local.append(session.numeric(code, target, why))
    return None


COMMANDS: dict[str, Handler] = {
    "CAP": on_cap, "PASS": on_pass, "NICK": on_nick, "USER": on_user, "PING": on_ping,
    "PONG": on_pong, "QUIT": on_quit, "JOIN": on_join, "PART": on_part,
    "PRIVMSG": on_privmsg, "NOTICE": on_privmsg, "NAMES": on_names, "WHO": on_who,
    "WHOIS": on_whois, "LIST": on_list, "MODE": on_mode, "TOPIC": on_topic, "MOTD": on_motd,
    "CHATHISTORY": chathistory, "AWAY": on_away, "TIME": on_time, "USERHOST": on_userhost,
    "LUSERS": on_lusers,
}
