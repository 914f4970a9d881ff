"""Ops as Redis script calls, and Redis replies and stream entries as the machine's values.

Pure translation, no I/O: what :mod:`chattycat.server.redis_store` sends and
what it hands back to the machine. A stream entry is ``[id, [field, value,
...]]`` as hiredis decodes it (bytes everywhere).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message, Whisper
from chattycat.server.cluster.ops import (
    Claim,
    Claimed,
    Enter,
    Leave,
    Publish,
    Remote,
    RemoteAccount,
    RemoteIn,
    RemoteJoin,
    RemoteMove,
    RemoteNick,
    RemoteOut,
    RemotePart,
    RemoteUser,
    RemoteWhisper,
    Rename,
    SendWhisper,
    SignOut,
)
from chattycat.server.colors import PALETTE
from chattycat.server.effects import LoadHistory, Page, StoredAccount

__all__ = [
    "Settings",
    "account_json",
    "claim_args",
    "decode_account",
    "decode_claimed",
    "decode_event",
    "decode_message",
    "decode_messages",
    "decode_page",
    "decode_snapshot",
    "decode_whispered",
    "enter_args",
    "event_marks",
    "event_order",
    "leave_args",
    "page_args",
    "publish_args",
    "rename_args",
    "seq_of",
    "sign_out_args",
    "whisper_args",
]

Arg = str | bytes | int | float
Entry = Sequence[Any]  # [id, [field, value, ...]]


class Settings:
    """The rules a node passes to the scripts (the same on every node of a chat)."""

    def __init__(self, node: str, *, grace_s: float, session_ttl_s: float,
                 window: int, whisper_window: int) -> None:
        self.node = node
        self.grace_s = grace_s
        self.ttl_ms = max(1, int(session_ttl_s * 1000))
        self.ttl_s = max(1, int(session_ttl_s))
        self.window = window
        self.whisper_window = whisper_window


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def seq_of(entry_id: Any) -> int:
    """The seq a room stream's entry id ``0-<seq>`` carries."""
    return int(_text(entry_id).partition("-")[2])


def _fields(flat: Sequence[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


# -- ops to script arguments ---------------------------------------------------------


def claim_args(op: Claim, s: Settings) -> list[Arg]:
    return [op.key, op.name, s.node, op.hello_digest, op.new_digest, op.mode, op.color,
            ",".join(op.avoid), op.ts, s.grace_s, s.ttl_ms, ",".join(op.rooms),
            ",".join(PALETTE)]


def rename_args(op: Rename, s: Settings) -> list[Arg]:
    return [op.old_key, op.key, op.name, s.node, op.digest, "1" if op.owner else "0", op.ts,
            s.grace_s, s.ttl_ms]


def enter_args(op: Enter, s: Settings) -> list[Arg]:
    return [op.key, op.room, s.node, op.ts]


def leave_args(op: Leave, s: Settings) -> list[Arg]:
    return [op.key, op.room, s.node, op.reason]


def sign_out_args(op: SignOut, s: Settings) -> list[Arg]:
    return [op.key, s.node, op.digest, op.reason, op.ts, s.ttl_ms]


def publish_args(op: Publish, s: Settings) -> list[Arg]:
    m = op.message
    return [m.room, m.sender, m.color, m.text, repr(m.ts), m.id or "", "1" if m.action else "",
            op.session, s.window, s.ttl_s]


def whisper_args(op: SendWhisper, s: Settings) -> list[Arg]:
    w = op.whisper
    return [op.session, w.id or "", op.to_key, s.node, w.sender, w.color, w.text, repr(w.ts),
            "1" if w.action else "", s.whisper_window, s.ttl_s]


def page_args(read: LoadHistory) -> list[Arg]:
    return [read.room, read.page.value, read.seq, read.limit, read.up_to]


# -- replies -----------------------------------------------------------------------------


def decode_message(room: str, entry: Entry) -> Message:
    """A room stream's entry as the ``message`` frame it stores."""
    return _message(room, entry[0], _fields(entry[1]))


def _message(room: str, entry_id: Any, f: dict[str, str]) -> Message:
    return Message(room, seq_of(entry_id), f["f"], f["c"], f["t"], float(f["ts"]),
                   f.get("i") or None, f.get("a") == "1")


def decode_messages(room: str, entries: Sequence[Entry]) -> tuple[list[Message], list[str]]:
    """Entries of a room's stream, and for each the last event id before it."""
    messages, after = [], []
    for entry in entries:
        f = _fields(entry[1])
        messages.append(_message(room, entry[0], f))
        after.append(f.get("e", "0-0"))
    return messages, after


def event_marks(entry: Entry) -> list[tuple[str, int]]:
    """Where an event's rooms stood when it happened: (room, seq) pairs."""
    marks = []
    for item in _fields(entry[1]).get("s", "").split(","):
        room, _, seq = item.rpartition(":")
        if room and seq.isdigit():
            marks.append((room, int(seq)))
    return marks


def event_order(event_id: str) -> tuple[int, int]:
    """A stream entry id (``ms-n``) in the order Redis gives them."""
    ms, _, n = event_id.partition("-")
    return int(ms), int(n or 0)


def decode_page(read: LoadHistory, reply: Any) -> tuple[int, list[Message], bool]:
    """The page script's reply: (the room's seq, the messages oldest first, truncated)."""
    top = int(reply[0])
    messages = [decode_message(read.room, entry) for entry in reply[1]]
    if read.page is not Page.AFTER:
        messages.reverse()  # read newest first
    truncated = False
    if read.page is Page.RESUME and len(messages) > read.limit:
        messages, truncated = messages[len(messages) - read.limit:], True
    return top, messages, truncated


def decode_claimed(reply: Any) -> Claimed:
    values = [_text(v) for v in reply[:4]]
    values += [""] * (4 - len(values))
    rooms = tuple(sorted(_text(r) for r in reply[4])) if len(reply) > 4 else ()
    return Claimed(values[0], values[1], values[2], values[3], rooms)


def decode_whispered(op: SendWhisper, reply: Any) -> tuple[str, str, Whisper | None]:
    """The whisper script's reply: (new/again/gone, the target's node, the first send if again)."""
    values = [_text(v) for v in reply]
    if values[0] == "again":
        first = Whisper(op.whisper.sender, values[1], op.whisper.color, op.whisper.text,
                        float(values[2]), op.whisper.id, op.whisper.action)
        return "again", "", first
    if values[0] == "new":
        return "new", values[1], None
    return values[0], "", None


def account_json(account: StoredAccount) -> str:
    return json.dumps({"name": account.name, "record": account.record,
                       "created_at": account.created_at})


def decode_account(key: str, value: Any) -> StoredAccount:
    try:
        data = json.loads(_text(value))
        return StoredAccount(key, str(data["name"]), str(data["record"]),
                             float(data["created_at"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"an account in Redis is unreadable: {key}") from exc


def decode_snapshot(reply: Any) -> tuple[str, list[RemoteUser], list[StoredAccount]]:
    """The snapshot script's reply: last event id, signed-in users, accounts."""
    last = _text(reply[0])
    users = []
    for key, record, rooms in reply[1]:
        data = json.loads(_text(record))
        users.append(RemoteUser(_text(key), str(data["n"]), str(data["c"]), str(data["node"]),
                                tuple(sorted(_text(r) for r in rooms))))
    flat = reply[2]
    accounts = [decode_account(_text(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]
    return last, users, accounts


def decode_event(entry: Entry) -> Remote | None:
    """An entry of ``cc:events``; None for a kind this version does not know."""
    f = _fields(entry[1])
    kind, node, key = f.get("k"), f.get("node", ""), f.get("key", "")
    if kind == "in":
        return RemoteIn(node, key, f["n"], f["c"], tuple(filter(None, f.get("rooms", "")
                                                                 .split(","))))
    if kind == "move":
        rooms = tuple(sorted(r for r in f.get("rooms", "").split(",") if r))
        return RemoteMove(node, key, f["n"], f["c"], rooms)
    if kind == "join":
        return RemoteJoin(node, key, f["room"], float(f["ts"]))
    if kind == "part":
        return RemotePart(node, key, f["room"], f["r"])
    if kind == "out":
        return RemoteOut(node, key, f["r"])
    if kind == "nick":
        return RemoteNick(node, key, f["n"], f["c"])
    if kind == "wh":
        whisper = Whisper(f["f"], f["n"], f["c"], f["t"], float(f["ts"]), f.get("i") or None,
                          f.get("a") == "1")
        return RemoteWhisper(node, key, f["to"], whisper)
    if kind == "acct":
        return RemoteAccount(node, decode_account(key, f["v"]))
    return None
