"""What the IRC door says: names mapped both ways, numerics, and messages cut to fit.

The mapping rules (``docs/irc.md``) live here so that both directions read
the same table:

- room ``name`` is channel ``#name``; channel names are folded to lower case
  (``CASEMAPPING=ascii``), which is the only case a room name has;
- a user's name is their nick, except that IRC nicks may not begin with a
  digit or ``-``: such names are shown with a leading backtick (`` `1abc``),
  a character no ChattyCat name contains, so the escape is unambiguous and
  an IRC client addressing `` `1abc`` reaches ``1abc``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from chattycat.protocol.irc import MAX_LINE_BYTES, IrcMessage, split_utf8
from chattycat.protocol.names import MAX_NAME_CHARS, is_valid_name, is_valid_room

__all__ = [
    "ISUPPORT",
    "SUPPORTED_CAPS",
    "channel_of",
    "irc_time",
    "name_of",
    "nick_of",
    "room_of",
    "text_lines",
]

# IRCv3 capabilities this door implements (cap-notify: the list never changes
# while a client is connected, so there is never anything to notify).
# multi-prefix: rooms have no operators or voices, so there is never more than
# the one (empty) prefix to show; userhost-in-names: NAMES lists nick!user@host.
SUPPORTED_CAPS = (
    "batch", "cap-notify", "draft/chathistory", "echo-message", "labeled-response",
    "message-tags", "multi-prefix", "server-time", "userhost-in-names",
)
# How many messages one CHATHISTORY request may ask for: PROTOCOL's history limit.
CHATHISTORY_MAX = 500
# RPL_ISUPPORT, honestly: rooms are +n (only members speak) and have no other
# modes, no operators or voices (PREFIX=), no topics (so no TOPICLEN).
ISUPPORT = (
    "CASEMAPPING=ascii", "CHANTYPES=#", "CHANMODES=,,,n", "PREFIX=",
    f"NICKLEN={MAX_NAME_CHARS + 1}", f"CHANNELLEN={MAX_NAME_CHARS + 1}", "NETWORK=ChattyCat",
    "UTF8ONLY", f"CHATHISTORY={CHATHISTORY_MAX}", "MSGREFTYPES=msgid",
)
_ESCAPE = "`"
# Bytes a relayed line may spend on its source and command before the text:
# what is left of 512 after ":nick!user@host PRIVMSG #target :" and CRLF.
_LINE_ENDING_BYTES = 2


def nick_of(name: str) -> str:
    """The IRC nick that shows ChattyCat user ``name``."""
    return _ESCAPE + name if name[:1].isdigit() or name.startswith("-") else name


def name_of(nick: str) -> str | None:
    """The ChattyCat name an IRC nick stands for; None if it can stand for none."""
    if nick.startswith(_ESCAPE) and (nick[1:2].isdigit() or nick[1:2] == "-"):
        nick = nick[1:]
    return nick if is_valid_name(nick) else None


def channel_of(room: str) -> str:
    """The channel that shows room ``room``."""
    return "#" + room


def room_of(channel: str) -> str | None:
    """The room a channel name stands for; None if it stands for none."""
    if not channel.startswith("#"):
        return None
    room = channel[1:].lower()
    return room if is_valid_room(room) else None


def irc_time(ts: float) -> str:
    """A ``server-time`` tag value: ISO 8601 UTC with milliseconds."""
    whole = int(ts)
    millis = round((ts - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def text_lines(source: str, command: str, target: str, text: str, action: bool
               ) -> list[IrcMessage]:
    """``text`` as PRIVMSG/NOTICE lines that each fit in 512 bytes (tags not counted).

    Newlines end a line (IRC has no way to carry one); long text is cut on
    UTF-8 boundaries, each piece of an action being an action of its own.
    """
    fixed = len(f":{source} {command} {target} :".encode()) + _LINE_ENDING_BYTES
    wrapper = len(b"\x01ACTION \x01") if action else 0
    budget = max(16, MAX_LINE_BYTES - fixed - wrapper)
    out: list[IrcMessage] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        for piece in split_utf8(line, budget) or [""]:
            if not piece and not action:
                continue  # an empty PRIVMSG is not allowed (412)
            body = f"\x01ACTION {piece}\x01" if action else piece
            out.append(IrcMessage(command, (target, body), source))
    return out


def names_lines(server: str, me: str, channel: str, nicks: Iterable[str]) -> list[IrcMessage]:
    """RPL_NAMREPLY lines for ``nicks``, as many as 512 bytes require (no RPL_ENDOFNAMES)."""
    fixed = len(f":{server} 353 {me} = {channel} :".encode()) + _LINE_ENDING_BYTES
    out: list[IrcMessage] = []
    current: list[str] = []
    size = fixed
    for nick in nicks:
        if current and size + len(nick) + 1 > MAX_LINE_BYTES:
            out.append(IrcMessage("353", (me, "=", channel, " ".join(current)), server))
            current, size = [], fixed
        current.append(nick)
        size += len(nick) + 1
    if current:
        out.append(IrcMessage("353", (me, "=", channel, " ".join(current)), server))
    return out
