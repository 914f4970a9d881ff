"""HTTP/1.1 and WebSocket (RFC 6455) on one connection, through ``h11`` and ``wsproto``.

:class:`WebProtocol` is a transport :class:`~chattycat.net.transport.Protocol`:
it feeds the bytes it receives to an ``h11.Connection`` and, once a request
has been answered with ``101 Switching Protocols``, to a ``wsproto``
connection. Both libraries are sans-IO; this module only moves bytes between
them and the transport, enforces the limits a public port needs, and hands
the decisions to the subclass:

- :meth:`WebProtocol.handle_request` answers one request: an
  :class:`HttpResponse`, or :class:`AcceptWebSocket` for an upgrade;
- :meth:`WebProtocol.text_received` gets each complete text message.

It knows nothing of chat frames (``net`` imports neither ``protocol`` nor
``server``); the door built on it does.

Limits, and why each exists:

- the request head (line and headers) must fit in ``max_head_bytes`` (h11
  answers 431 beyond it) and arrive within ``head_timeout_s`` of the
  connection opening or the previous response: a client that trickles a
  header byte a second (slowloris) holds a socket for that long at most;
- only ``GET`` and ``HEAD`` are served, without a body: the page needs no
  more, and a body is a way to make the server buffer;
- a WebSocket message is assembled only up to ``max_message_bytes``; beyond
  it the subclass is told (:meth:`message_too_large`) and nothing more is read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import h11
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import generate_accept_token

from chattycat.net.loop import TimerHandle
from chattycat.net.transport import Protocol, Transport

__all__ = [
    "AcceptWebSocket",
    "HttpRequest",
    "HttpResponse",
    "WebLimits",
    "WebProtocol",
    "text_frame",
]

log = logging.getLogger("chattycat.net.websocket")

Headers = Sequence[tuple[str, str]]
# RFC 6455 section 7.4.1.
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED_DATA, CLOSE_TOO_BIG = 1000, 1002, 1003, 1009
# How long a closing WebSocket waits for the peer's close frame and our output.
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class WebLimits:
    """What one HTTP/WebSocket connection may cost the server."""

    max_head_bytes: int = 16 * 1024
    head_timeout_s: float = 10.0
    max_message_bytes: int = 65536


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request head, as the subclass sees it (header names in lower case)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    websocket: bool  # a well-formed WebSocket upgrade (RFC 6455 section 4.2.1)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete answer: status, headers, body (sent without it for HEAD)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class AcceptWebSocket:
    """Answer an upgrade request with 101 and speak WebSocket from then on."""

    headers: tuple[tuple[str, str], ...] = ()


class _Phase(enum.Enum):
    HTTP = "http"
    WEBSOCKET = "websocket"
    CLOSED = "closed"


class WebProtocol(Protocol):
    """HTTP requests, then possibly one WebSocket; subclass and answer them."""

    def __init__(self, limits: WebLimits) -> None:
        self.limits = limits
        self.transport: Transport | None = None
        self._phase = _Phase.HTTP
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        self._ws: WsConnection | None = None
        self._request: HttpRequest | None = None
        self._head_timer: TimerHandle | None = None
        self._message: list[str] = []
        self._message_bytes = 0
        self._message_binary = False

    # -- what a subclass provides ----------------------------------------------

    def handle_request(self, request: HttpRequest) -> HttpResponse | AcceptWebSocket:
        """Answer one complete request."""
        return HttpResponse(404)

    def websocket_opened(self) -> None:
        """The 101 answer is queued: messages may be sent from now on."""

    def text_received(self, text: str) -> None:
        """One complete WebSocket text message."""

    def binary_received(self) -> None:
        """A complete binary message arrived (its content is dropped)."""

    def message_too_large(self, size: int) -> None:
        """A message passed ``max_message_bytes``; nothing more is read from this peer."""

    def websocket_closed(self) -> None:
        """The WebSocket connection is over (either side closed, or the socket was lost)."""

    # -- what a subclass calls ---------------------------------------------------

    @property
    def is_websocket(self) -> bool:
        """Whether this connection has switched to WebSocket (and is not closed)."""
        return self._phase is _Phase.WEBSOCKET

    def send_text(self, text: str) -> None:
        """Send one text message (only after the upgrade)."""
        ws = self._ws
        if ws is not None and self.transport is not None and ws.state is ConnectionState.OPEN:
            self.transport.write(ws.send(TextMessage(data=text)))

    def close_websocket(self, code: int = CLOSE_NORMAL, reason: str = "",
                        timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send a close frame (once) and close the connection after the output is out."""
        if self.transport is None:
            return
        if self._ws is not None:
            with contextlib.suppress(WsLocalError):  # a close frame went out already
                self.transport.write(self._ws.send(CloseConnection(code=code, reason=reason)))
        self._finish_websocket()
        self.transport.close(timeout_s=timeout_s)

    # -- transport callbacks ------------------------------------------------------

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._phase is _Phase.HTTP:
            self._http.receive_data(data)
            self._drive_http()
        elif self._phase is _Phase.WEBSOCKET and self._ws is not None:
            self._ws.receive_data(data)
            self._drive_websocket()

    def eof_received(self) -> bool | None:
        if self._phase is _Phase.HTTP:
            self._http.receive_data(b"")
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        self._finish_websocket()
        self._phase = _Phase.CLOSED

    # -- HTTP -----------------------------------------------------------------------

    def _drive_http(self) -> None:
        while self._phase is _Phase.HTTP:
            try:
                event = self._http.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Request):
                if not self._take_request(event):
                    return
            elif isinstance(event, h11.Data):
                self._refuse(413, "a request body is not accepted here")
                return
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                if not self._answer():
                    return
            elif isinstance(event, h11.ConnectionClosed):
                self._close_transport()
                return

    def _take_request(self, event: h11.Request) -> bool:
        method = event.method.decode("ascii", "replace")
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1"))
                        for k, v in event.headers)
        request = HttpRequest(method, event.target.decode("latin-1"), headers, False)
        if method not in ("GET", "HEAD"):
            self._respond(HttpResponse(405, (("allow", "GET, HEAD"),)), close=True)
            return False
        self._request = HttpRequest(request.method, request.target, headers,
                                    _is_websocket_upgrade(request))
        return True

    def _answer(self) -> bool:
        """Answer the request just completed; whether to keep reading HTTP."""
        request, self._request = self._request, None
        self._cancel_head_timer()
        if request is None:
            return False
        try:
            answer = self.handle_request(request)
        except Exception:  # a boundary: one request, not the server, fails
            log.exception("answering %s %s failed", request.method, request.target)
            answer = HttpResponse(500)
        if isinstance(answer, AcceptWebSocket):
            if request.websocket:
                self._upgrade(request, answer)
                return False
            answer = HttpResponse(400)
        self._respond(answer, head=request.method == "HEAD",
                      close=request.websocket or self._http.their_state is h11.MUST_CLOSE)
        if self._phase is not _Phase.HTTP:
            return False
        try:
            self._http.start_next_cycle()
        except h11.LocalProtocolError:
            self._close_transport()
            return False
        self._start_head_timer()
        return True

    def _respond(self, response: HttpResponse, *, head: bool = False, close: bool = False) -> None:
        transport = self.transport
        if transport is None:
            return
        headers = [*response.headers, ("content-length", str(len(response.body)))]
        if close:
            headers.append(("connection", "close"))
        try:
            data = self._http.send(h11.Response(status_code=response.status, headers=headers,
                                                reason=_reason(response.status).encode()))
            if response.body and not head:
                data += self._http.send(h11.Data(data=response.body))
            data += self._http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            log.debug("cannot answer %d: %s", response.status, exc)
            self._close_transport()
            return
        transport.write(data)
        if close or self._http.our_state is h11.MUST_CLOSE:
            self._close_transport()

    def _refuse(self, status: int, why: str) -> None:
        """The peer broke HTTP (or a limit): answer ``status`` if we still can, then close."""
        log.debug("refusing an HTTP request with %d: %s", status, why)
        self._cancel_head_timer()
        if self._http.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._respond(HttpResponse(status, (("content-type", "text/plain"),),
                                       f"{status} {_reason(status)}\n".encode()), close=True)
        else:
            self._close_transport()

    def _upgrade(self, request: HttpRequest, answer: AcceptWebSocket) -> None:
        key = (request.header("sec-websocket-key") or "").encode("ascii", "replace")
        headers = [("upgrade", "websocket"), ("connection", "Upgrade"),
                   ("sec-websocket-accept", generate_accept_token(key).decode()),
                   *answer.headers]
        data = self._http.send(h11.InformationalResponse(status_code=101, headers=headers))
        trailing, _closed = self._http.trailing_data
        assert self.transport is not None
        self.transport.write(data)
        self._phase = _Phase.WEBSOCKET
        self._ws = WsConnection(ConnectionType.SERVER)
        self.websocket_opened()
        if trailing and self._phase is _Phase.WEBSOCKET:
            self._ws.receive_data(bytes(trailing))
            self._drive_websocket()

    # -- WebSocket ---------------------------------------------------------------------

    def _drive_websocket(self) -> None:
        ws = self._ws
        assert ws is not None
        for event in ws.events():
            if self._phase is not _Phase.WEBSOCKET:
                return
            if isinstance(event, TextMessage | BytesMessage):
                self._take_fragment(event)
            elif isinstance(event, Ping):
                self._write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                # Answer the peer's close (or wsproto's verdict on a broken frame:
                # 1002, or 1007 for invalid UTF-8) and hang up.
                if ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                    self._write(ws.send(event.response()))
                self._finish_websocket()
                self._close_transport()
                return

    def _take_fragment(self, event: TextMessage | BytesMessage) -> None:
        data = event.data
        if isinstance(data, str):
            self._message_bytes += len(data.encode("utf-8", "surrogatepass"))
            self._message.append(data)
        else:
            self._message_binary = True
            self._message_bytes += len(data)
        if self._message_bytes > self.limits.max_message_bytes:
            self._phase = _Phase.CLOSED  # read nothing more
            if self.transport is not None:
                self.transport.pause_reading()
            self.message_too_large(self._message_bytes)
            return
        if not event.message_finished:
            return
        text, binary = "".join(self._message), self._message_binary
        self._message, self._message_bytes, self._message_binary = [], 0, False
        if binary:
            self.binary_received()
        else:
            self.text_received(text)

    def _finish_websocket(self) -> None:
        if self._ws is not None:
            self._ws = None
            self._phase = _Phase.CLOSED
            self.websocket_closed()

    # -- helpers -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and data:
            self.transport.write(data)

    def _close_transport(self) -> None:
        self._cancel_head_timer()
        if self._phase is _Phase.HTTP:
            self._phase = _Phase.CLOSED
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close(timeout_s=CLOSE_TIMEOUT_S)

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        if self.transport is not None:
            self._head_timer = self.transport.loop.call_later(
                self.limits.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._phase is _Phase.HTTP:
            self._refuse(408, "the request head did not arrive in time")


def _is_websocket_upgrade(request: HttpRequest) -> bool:
    """RFC 6455 section 4.2.1: the headers that make a GET an opening handshake."""
    upgrade = (request.header("upgrade") or "").lower()
    connection = {t.strip().lower() for t in (request.header("connection") or "").split(",")}
    if request.method != "GET" or upgrade != "websocket" or "upgrade" not in connection:
        return False
    if request.header("sec-websocket-version") != "13":
        return False
    try:
        return len(base64.b64decode(request.header("sec-websocket-key") or "", validate=True)) == 16
    except binascii.Error:
        return False


def _reason(status: int) -> str:
    return _REASONS.get(status, "")


_REASONS = {
    200: "OK", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
    426: "Upgrade Required", 431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}



def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame (RFC 6455 section 5.2) holding ``payload``.

    A server's frames are never masked, so the bytes of a message are the same
    for every recipient: a sender encodes a message once and writes it to all.
    ``payload`` must be UTF-8 (the caller's JSON always is).
    """
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload
