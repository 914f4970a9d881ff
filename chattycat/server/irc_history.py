"""Stored messages as IRC lines: JOIN playback and IRCv3 ``draft/chathistory``.

A message's ``msgid`` is ``<room>:<seq>``, which names it uniquely on the
server, so a client can hand it back to page (``CHATHISTORY BEFORE #lobby
msgid=lobby:42 50``). ``msgid`` references become ``history`` requests with
``before``/``after``; ``timestamp`` references (the store is paged by seq, not
time) are answered from the room's latest 500 messages, filtered here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from chattycat.protocol.irc import IrcMessage
from chattycat.protocol.messages import HistoryQuery, Message, Request
from chattycat.server.irc_model import Command, Pending
from chattycat.server.irc_replies import CHATHISTORY_MAX, irc_time, room_of, text_lines

if TYPE_CHECKING:
    from chattycat.server.irc_session import IrcSession

__all__ = ["batch_lines", "chathistory", "message_lines", "msgid_of"]

Select = Callable[[list[Message]], list[Message]]


def msgid_of(message: Message) -> str:
    """The IRCv3 ``msgid`` of a stored message."""
    return f"{message.room}:{message.seq}"


def message_lines(session: IrcSession, message: Message, tags: dict[str, str] | None = None
                  ) -> list[IrcMessage]:
    """A room message as PRIVMSG lines, tagged as this client's capabilities allow."""
    own: dict[str, str] = dict(tags or {})
    if "server-time" in session.caps:
        own["time"] = irc_time(message.ts)
    if "message-tags" in session.caps:
        own["msgid"] = msgid_of(message)
    lines = text_lines(session.source_of(message.sender), "PRIVMSG", "#" + message.room,
                       message.text, message.action)
    return [IrcMessage(m.command, m.params, m.source, {**own, **m.tags}) for m in lines]


def batch_lines(session: IrcSession, target: str, messages: list[Message]) -> list[IrcMessage]:
    """``messages`` in one ``chathistory`` batch (plain tagged lines without ``batch``)."""
    if "batch" not in session.caps:
        return [line for m in messages for line in message_lines(session, m)]
    batch = session.new_batch()
    inner = [line for m in messages for line in message_lines(session, m, {"batch": batch})]
    return [IrcMessage("BATCH", ("+" + batch, "chathistory", target), session.server_name),
            *inner, IrcMessage("BATCH", ("-" + batch,), session.server_name)]


def _fail(session: IrcSession, command: Command, code: str, *context: str) -> list[Request]:
    command.local.append(IrcMessage("FAIL", ("CHATHISTORY", code, *context,
                                             "cannot answer that"), session.server_name))
    return []


def _position(ref: str, room: str) -> tuple[str, float] | None:
    """A reference as ("seq", n) or ("ts", seconds); None if it is neither."""
    kind, _, value = ref.partition("=")
    try:
        if kind == "msgid":
            msg_room, _, seq = value.rpartition(":")
            return ("seq", int(seq)) if msg_room == room else None
        if kind == "timestamp":
            return "ts", datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return None


def _key(kind: str) -> Callable[[Message], float]:
    return (lambda m: m.seq) if kind == "seq" else (lambda m: m.ts)


def _selector(sub: str, points: list[tuple[str, float]], limit: int) -> Select:
    """Which of the latest messages a subcommand asks for, by seq or time."""
    if sub == "LATEST":
        if not points:
            return lambda ms: ms[-limit:]
        (kind, at), = points
        return lambda ms: [m for m in ms if _key(kind)(m) > at][-limit:]
    if sub in ("BEFORE", "AFTER", "AROUND"):
        (kind, at), = points
        if sub == "BEFORE":
            return lambda ms: [m for m in ms if _key(kind)(m) < at][-limit:]
        if sub == "AFTER":
            return lambda ms: [m for m in ms if _key(kind)(m) > at][:limit]
        half = math.ceil(limit / 2)
        return lambda ms: ([m for m in ms if _key(kind)(m) < at][-(limit - half):]
                           + [m for m in ms if _key(kind)(m) >= at][:half])
    (k1, a), (k2, b) = points
    if a <= b:
        return lambda ms: [m for m in ms if _key(k1)(m) > a and _key(k2)(m) < b][:limit]
    return lambda ms: [m for m in ms if _key(k2)(m) > b and _key(k1)(m) < a][-limit:]


def _query(room: str, sub: str, points: list[tuple[str, float]], limit: int
           ) -> tuple[int | None, int | None, int]:
    """(after, before, limit) for the history request; paging by seq where it can."""
    if not points:  # LATEST *
        return None, None, limit
    if len(points) == 1 and points[0][0] == "seq":
        at = int(points[0][1])
        if sub == "BEFORE":
            return None, at, limit
        if sub == "AFTER":
            return at, None, limit
        if sub == "AROUND":
            return None, at + math.ceil(limit / 2), limit
    return None, None, CHATHISTORY_MAX


def chathistory(session: IrcSession, command: Command, params: tuple[str, ...]) -> list[Request]:
    """CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS (IRCv3 draft/chathistory)."""
    if len(params) < 3:
        return _fail(session, command, "NEED_MORE_PARAMS", params[0] if params else "*")
    sub, target = params[0].upper(), params[1]
    arity = {"LATEST": 1, "BEFORE": 1, "AFTER": 1, "AROUND": 1, "BETWEEN": 2, "TARGETS": 2}
    if sub not in arity:
        return _fail(session, command, "UNKNOWN_COMMAND", sub)
    if len(params) < 2 + arity[sub] or not params[-1].isdigit():
        return _fail(session, command, "INVALID_PARAMS", sub)
    limit = min(int(params[-1]), CHATHISTORY_MAX)
    if sub == "TARGETS" or not target.startswith("#"):
        # Whispers are not stored, so there is no conversation with a nick to list.
        shown = target if sub != "TARGETS" else "*"
        command.local.extend(_empty_batch(session, sub, shown))
        return []
    room = room_of(target)
    if room is None:
        return _fail(session, command, "INVALID_TARGET", sub, target)
    refs = params[2:2 + arity[sub]]
    points = [] if sub == "LATEST" and refs[0] == "*" else [_position(r, room) for r in refs]
    if limit < 1 or None in points:
        return _fail(session, command, "INVALID_PARAMS", sub)
    checked = [p for p in points if p is not None]
    after, before, fetch = _query(room, sub, checked, limit)
    pending = Pending("chathistory", command, target)
    pending.select = _selector(sub, checked, limit)
    return [HistoryQuery(room, after=after, before=before, limit=fetch,
                         ref=session.new_ref(pending))]


def _empty_batch(session: IrcSession, sub: str, target: str) -> list[IrcMessage]:
    if "batch" not in session.caps:
        return []
    batch = session.new_batch()
    kind = "draft/chathistory-targets" if sub == "TARGETS" else "chathistory"
    params = ("+" + batch, kind) if sub == "TARGETS" else ("+" + batch, kind, target)
    return [IrcMessage("BATCH", params, session.server_name),
            IrcMessage("BATCH", ("-" + batch,), session.server_name)]
