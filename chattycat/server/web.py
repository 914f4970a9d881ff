"""The web door: the page over HTTP, and chat frames over WebSocket (PROTOCOL section 9).

A :class:`WebPeer` is one connection to the web port. Until it upgrades it is
plain HTTP, answered by :class:`~chattycat.server.web_site.WebSite` and
unknown to the chat server; after the upgrade it is a
:class:`~chattycat.server.app.Peer` like a TCP client: one WebSocket text
message carries one frame's JSON payload, and the state machine cannot tell
the two apart.

The page's files are handed in by the caller (``cli.py`` reads them from the
``chattycat.ui.web`` package data): the server layer does not import the
user-interface layer, and a test can serve any files it likes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from importlib.resources.abc import Traversable

from chattycat.errors import ErrorCode, FrameTooLarge, RemoteProtocolError
from chattycat.net.websocket import (
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
    AcceptWebSocket,
    HttpRequest,
    HttpResponse,
    WebLimits,
    WebProtocol,
    text_frame,
)
from chattycat.protocol.messages import Frame, to_payload
from chattycat.server.app import ChatServer
from chattycat.server.effects import ConnId
from chattycat.server.web_site import WebSite

__all__ = ["WebPeer", "encode_ws_frame", "read_site_files", "web_door"]

log = logging.getLogger("chattycat.server.web")

# Room for the HTTP upgrade request's headers (cookies included) and no more.
MAX_HEAD_BYTES = 16 * 1024


def encode_ws_frame(frame: Frame) -> bytes:
    """``frame`` as the web door's wire carries it: one unmasked text message.

    A module function, not a method: the server encodes each frame once per
    distinct encoder and writes the same bytes to every web recipient.
    """
    return text_frame(to_payload(frame))


class WebPeer(WebProtocol):
    """One connection to the web port: HTTP requests, then possibly a chat WebSocket."""

    encode_frame = staticmethod(encode_ws_frame)

    def __init__(self, server: ChatServer, site: WebSite) -> None:
        rooms = server.config.rooms
        super().__init__(WebLimits(max_head_bytes=MAX_HEAD_BYTES,
                                   head_timeout_s=rooms.handshake_timeout_s,
                                   max_message_bytes=rooms.max_frame))
        self.server = server
        self.site = site
        self.id: ConnId = next(server.ids)
        self.reply_allowance = 0
        self._registered = False  # the chat server knows this connection
        self._close_code = CLOSE_NORMAL

    # -- HTTP ----------------------------------------------------------------------

    def handle_request(self, request: HttpRequest) -> HttpResponse | AcceptWebSocket:
        answer = self.site.answer(request)
        if isinstance(answer, HttpResponse) and answer.status == 403:
            log.info("refused a WebSocket from origin %r", request.header("origin"))
        return answer

    def websocket_opened(self) -> None:
        self._registered = True
        self.server.opened(self)

    # -- chat frames ------------------------------------------------------------------

    def text_received(self, text: str) -> None:
        self.server.received(self, text.encode("utf-8"))

    def binary_received(self) -> None:
        # PROTOCOL section 9: error bad_frame, then close code 1003.
        self._close_code = CLOSE_UNSUPPORTED_DATA
        self.server.rejected(self, RemoteProtocolError(
            ErrorCode.BAD_FRAME, "frames are WebSocket text messages, not binary", fatal=True))

    def message_too_large(self, size: int) -> None:
        log.info("connection %d sent a message of %d bytes: closing", self.id, size)
        self._close_code = CLOSE_TOO_BIG
        self.server.rejected(self, FrameTooLarge(size, self.limits.max_message_bytes))

    def close(self, timeout_s: float) -> None:
        """Close the way the server decided: the close frame, then the socket."""
        self.close_websocket(self._close_code, timeout_s=timeout_s)

    # -- flow control, as for the TCP door --------------------------------------------------

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            if self._registered:
                self.server.drained(self)
            self.transport.resume_reading()

    def write_buffer_overflow(self) -> bool | None:
        if not self._registered:
            return None  # an HTTP client that does not read its answer: abort
        self.server.slow_consumer(self)
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        # The server hears of the end only now, as from the TCP door: after
        # the last frames and the close frame were flushed (or given up on).
        super().connection_lost(exc)
        if self._registered:
            self._registered = False
            self.server.closed(self)


def read_site_files(root: Traversable) -> dict[str, bytes]:
    """Every file under ``root`` (package data or a directory), by its path relative to it."""
    return dict(_walk(root, ""))


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    for entry in folder.iterdir():
        if entry.name.startswith((".", "__")):
            continue  # editor droppings, __pycache__, __init__.py
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield f"{prefix}{entry.name}", entry.read_bytes()


def web_door(server: ChatServer, files: Mapping[str, bytes], *, tls: bool,
             allowed_origins: tuple[str, ...] = ()) -> Callable[[], WebPeer]:
    """The ``make_peer`` for :meth:`ChatServer.open_door`: one site, a peer per connection."""
    site = WebSite(files, tls=tls, allowed_origins=allowed_origins)
    return lambda: WebPeer(server, site)
