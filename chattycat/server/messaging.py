"""Room messages and whispers: numbering, idempotence, and what a failed batch undoes.

A ``say`` is numbered here (the next seq of its room, from the ledger),
appended to the open batch, and its ``message`` frame queued behind that
batch's barrier: the sender's copy is its acknowledgement and leaves only
after the commit. A ``say`` repeating one of the sender's recent ids is not
numbered again; the original is resent. Whispers are not stored; a short
window per session keeps a retried one from reaching its target twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from chattycat.errors import ErrorCode, ProtocolError
from chattycat.protocol.messages import (
    Error,
    Message,
    Request,
    Say,
    Whisper,
    WhisperTo,
    to_payload,
)
from chattycat.server.directory import Directory
from chattycat.server.effects import ConnId, Effect, LoadHistory, LoadIds, Now, Page, Read, Send
from chattycat.server.fit import HISTORY_ENVELOPE_BYTES
from chattycat.server.idempotence import IdWindows, SentWhisper, WhisperWindows
from chattycat.server.ledger import Ledger
from chattycat.server.model import Connection, Pending, RoomsConfig, User
from chattycat.server.output import OutputQueue

__all__ = ["Await", "Messaging", "Then"]

STORE_LOST_TEXT = "the message could not be stored; send it again"

# What to do with a read's answer: (connection, its user, messages, truncated).
Then = Callable[[Connection, User, Sequence[Message], bool], None]
# Park a connection's request until the store answers a read, then carry on.
Await = Callable[[Connection, Request, Read, Then], None]


def _quote(value: str) -> str:
    """Peer-supplied text for an error message, cut so the reply stays small."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


class Messaging:
    """Says and whispers, from request to queued frame."""

    def __init__(self, config: RoomsConfig, ledger: Ledger, out: OutputQueue,
                 directory: Directory, await_store: Await) -> None:
        self.config = config
        self._ledger = ledger
        self._out = out
        self._directory = directory
        self._await = await_store
        self.windows = IdWindows(config.idempotence_window)
        self.whispers = WhisperWindows()

    # -- say ---------------------------------------------------------------------

    def say(self, conn: Connection, user: User, req: Say, now: Now) -> None:
        """A member's ``say`` (membership already checked)."""
        if req.id is None:
            self._new_message(user, req, now)
            return
        window = self.windows.get(user.session_key, req.room)
        if window is None:
            # First say of this session here since the server started: its
            # earlier ids (maybe sent before a restart) are in the store.
            ids = LoadIds(self._ledger.next_read(), user.session_key, req.room,
                          self.config.idempotence_window)

            def loaded(c: Connection, u: User, stored: Sequence[Message], _t: bool) -> None:
                self.windows.load(u.session_key, req.room, stored)
                if req.room not in u.rooms:
                    raise ProtocolError(ErrorCode.NOT_IN_ROOM, f"you are not in {req.room}")
                self.say(c, u, req, now)

            self._await(conn, req, ids, loaded)
            return
        seq = window.get(req.id)
        if seq is None:
            self._new_message(user, req, now)
        else:
            self._resend(conn, req, seq, now)

    def _resend(self, conn: Connection, req: Say, seq: int, now: Now) -> None:
        pending = self._ledger.pending.get((req.room, seq))
        if pending is not None:
            self._out.send((conn.id,), pending.message)  # after its own commit, like the first
            return
        read = LoadHistory(self._ledger.next_read(), req.room, Page.AFTER, seq - 1, 1, seq)

        def found(c: Connection, u: User, stored: Sequence[Message], _t: bool) -> None:
            if stored and stored[0].seq == seq:
                self._out.send((c.id,), stored[0])
            else:  # pruned by retention since: it is new again
                self._new_message(u, req, now)

        self._await(conn, req, read, found)

    def _new_message(self, user: User, req: Say, now: Now) -> None:
        seq = self._ledger.last_seq(req.room) + 1
        message = Message(req.room, seq, user.name, user.color, req.text, round(now.wall, 3),
                          req.id, req.action)
        self.check_fits(message)
        opening = self._ledger.batch_opening()
        if opening is not None:
            self._out.barrier(opening)
        self._ledger.append(message, user)
        if req.id is not None:
            window = self.windows.get(user.session_key, req.room)
            if window is not None:
                self.windows.remember(window, req.id, seq)
        self._out.send(self._directory.conns(req.room), message)

    # -- a failed batch --------------------------------------------------------------

    def undo(self, lost: list[Pending]) -> None:
        """Messages that were never stored: forget their ids, tell their senders instead."""
        failed = {(p.message.room, p.message.seq): p for p in lost}
        for room in {room for room, _seq in failed}:
            self.windows.forget_above(room, self._ledger.last_seq(room))

        def replace(send: Send) -> Iterable[Effect]:
            frame = send.frame
            pending = failed.get((frame.room, frame.seq)) if isinstance(frame, Message) else None
            return (send,) if pending is None else self._lost(pending, send.conns)

        self._out.rewrite(replace)
        self._out.release_batches()

    def _lost(self, pending: Pending, conns: tuple[ConnId, ...]) -> Iterable[Effect]:
        """What replaces a failed message's frame: an error, to its sender alone."""
        sender = pending.sender
        if sender.conn not in conns or self._directory.user(sender.key) is not sender:
            return ()
        message = pending.message
        exc = ProtocolError(ErrorCode.INTERNAL, STORE_LOST_TEXT)
        exc.ref = message.id  # PROTOCOL 8: errors carry the request's ref/id
        return (Send((sender.conn,), Error.from_exception(exc, message.id)),)

    # -- whisper -----------------------------------------------------------------

    def whisper(self, conn: Connection, user: User, req: WhisperTo, now: Now) -> None:
        """A ``whisper`` to one online user; the sender gets its copy too."""
        # Keyed by session, which outlives reconnects and renames, unlike a name.
        sent = None if req.id is None else self.whispers.get(user.session_key, req.id)
        if sent is not None:
            # A client retrying after a reconnect: whispers are not stored, but a
            # short in-memory window keeps the retry from reaching the target twice.
            # The retry carries the text; the window kept only whom and when.
            again = Whisper(user.name, sent.to, user.color, req.text, sent.ts, req.id,
                            req.action)
            self._out.send((conn.id,), again)
            return
        target = self._directory.user(req.to)
        if target is None:
            raise ProtocolError(ErrorCode.NO_SUCH_USER, f"{_quote(req.to)} is not online")
        whisper = Whisper(user.name, target.name, user.color, req.text, round(now.wall, 3),
                          req.id, req.action)
        self.check_fits(whisper)
        if req.id is not None:
            self.whispers.remember(user.session_key, req.id, SentWhisper(target.name, whisper.ts))
        self._out.send(tuple(dict.fromkeys((target.conn, conn.id))), whisper)

    def session_over(self, digest: str) -> None:
        """A session can no longer be resumed: its windows go with it."""
        if digest:
            self.whispers.forget(digest)
            self.windows.forget(digest)

    def check_fits(self, frame: Message | Whisper) -> None:
        """Refuse a message or whisper that could not be sent within ``max_frame``."""
        # A stored message is later sent inside a history frame, whose envelope
        # (room, ref, flags) must fit around it too.
        budget = self.config.max_frame - HISTORY_ENVELOPE_BYTES
        # Cheap bound first: JSON escapes a character to at most 6 bytes.
        if len(frame.text) * 6 + 512 <= budget:
            return
        if len(to_payload(frame)) > budget:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "text too long for this server's max_frame")
