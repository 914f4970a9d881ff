"""The IRC front door: IRC clients on the same loop and state machine as everyone.

:class:`IrcPeer` is the thin part: a transport protocol that cuts the byte
stream into lines (:class:`~chattycat.protocol.irc.LineDecoder`), hands each
to its :class:`~chattycat.server.irc_session.IrcSession` and passes the
requests that come out to the server, exactly as a native client's would
be; frames the machine sends it are turned into IRC lines by the same
session (:meth:`IrcPeer.encode_frame`). Flood control, idempotence, history
and slow-consumer limits are the machine's and the transport's, unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from chattycat.net.contexts import SSLContext
from chattycat.net.framed import FramedProtocol
from chattycat.net.transport import Transport
from chattycat.protocol.irc import LineDecoder, LineTooLong
from chattycat.protocol.messages import Frame, Request, name_key
from chattycat.server.app import CLOSE_GRACE_S, ChatServer
from chattycat.server.irc_model import IrcDoor
from chattycat.server.irc_session import IrcSession

__all__ = ["IRC_SERVER_NAME", "IrcPeer", "irc_door", "open_irc_door"]

log = logging.getLogger("chattycat.server.irc")

# The name numerics come from. It has a dot, as a server name does, so that
# clients never take it for a nick.
IRC_SERVER_NAME = "irc.chattycat"
# The host part of every user's nick!user@host (ChattyCat keeps addresses private).
USER_HOST = "chattycat"


class IrcPeer(FramedProtocol[LineDecoder]):
    """One IRC client connection, as the server sees it (a ``Peer``).

    A :class:`~chattycat.net.framed.FramedProtocol` whose frames are lines:
    the same per-pass fairness and read holds as the TCP door's peers.
    """

    def __init__(self, server: ChatServer, door: IrcDoor) -> None:
        super().__init__(LineDecoder())
        self.server = server
        self.id = next(server.ids)
        self.reply_allowance = 0
        self.session = IrcSession(self.id, door)

    def encode_frame(self, frame: Frame) -> bytes:
        """``frame`` as IRC lines for this client (depends on its nick and capabilities)."""
        data = self.session.encode_frame(frame)
        if self.session.close_now and self.transport is not None:
            # QUIT before registration, or a refused password: the machine keeps no
            # session to end, so the door closes, after these lines (the ERROR).
            self.session.close_now = False
            self.transport.write(data)
            self.close(CLOSE_GRACE_S)
            return b""
        return data

    def close(self, timeout_s: float) -> None:
        """Close after what is queued (the ERROR line, if any) is sent."""
        if self.transport is not None:
            self.transport.close(timeout_s=timeout_s)

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        self.server.opened(self)

    def payload_received(self, payload: bytes) -> None:
        if self.session.closing:
            return  # nothing after QUIT is carried out
        while self.decoder.dropped:  # lines over the limit, skipped before this one
            self.decoder.dropped -= 1
            self._hand_on(self.session.too_long(LineTooLong(self.decoder.max_bytes)))
        self._hand_on(self.session.line_received(payload))

    def _hand_on(self, requests: list[Request]) -> None:
        for request in requests:
            self.server.received_request(self, request)

    def pause_writing(self) -> None:
        # As for TCP clients: stop reading requests while output piles up.
        self.hold_reading("output")

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.server.drained(self)
        self.release_reading("output")

    def write_buffer_overflow(self) -> bool | None:
        self.server.slow_consumer(self)
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        if exc is not None:
            log.debug("IRC connection %d lost: %s", self.id, exc)
        self.session.forget()
        self.server.closed(self)


def irc_door(server: ChatServer, server_name: str = IRC_SERVER_NAME,
             join_default_room: bool = True) -> IrcDoor:
    """What the connections of one IRC door on ``server`` share.

    Without ``join_default_room``, IRC users leave the default room as soon
    as the machine has put them there (IRC users expect to start in no
    channel; native users in that room see them come and go).
    """

    def online_name(name: str) -> str | None:
        key = name_key(name)
        return next((n for n in server.state.user_names() if name_key(n) == key), None)

    leave = None if join_default_room else server.config.rooms.default_room
    return IrcDoor(server_name, USER_HOST, online_name, leave_room=leave,
                   count_users=lambda: len(server.state.user_names()))


def open_irc_door(server: ChatServer, host: str | Sequence[str] | None, port: int,
                  ssl_context: SSLContext | None = None, door: IrcDoor | None = None,
                  ) -> list[tuple[str, int]]:
    """Listen for IRC clients on ``port`` (TLS with ``ssl_context``); returns the addresses.

    ``door`` (see :func:`irc_door`) names the server and says whether users stay
    in the default room; several ports may share one.
    """
    shared = door if door is not None else irc_door(server)
    return server.open_door(lambda: IrcPeer(server, shared), host, port,
                            ssl_context=ssl_context)
