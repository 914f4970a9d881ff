"""The web door over real sockets, without a browser: HTTP, the upgrade, WebSocket rules.

Frames come from wsproto as a client (masked, fragmented as asked) or by hand
where a well-behaved library would refuse (unmasked, invalid UTF-8).
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import time

from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from tests.conftest import wait_for
from tests.web.conftest import StartWeb
from tests.web.wsclient import (
    WsClient,
    http_exchange,
    masked_frame,
    read_until_closed,
    upgrade_request,
)


def get(port: int, path: str, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{head}\r\n"
    return http_exchange(port, request.encode())


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_the_page_is_served_with_headers_and_gzip(web_server: StartWeb) -> None:
    port = web_server().web_port
    page = get(port, "/")
    assert page.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-security-policy: default-src 'none'" in page
    assert b"x-content-type-options: nosniff" in page
    script = get(port, "/session.js", "Accept-Encoding: gzip")
    head, _, body = script.partition(b"\r\n\r\n")
    assert b"content-encoding: gzip" in head and b"text/javascript" in head
    assert b"export class ChatSession" in gzip.decompress(body)


def test_keep_alive_serves_several_pipelined_requests(web_server: StartWeb) -> None:
    port = web_server().web_port
    one = f"GET /style.css HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    last = f"HEAD /missing HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    response = http_exchange(port, (one * 2 + last).encode())
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert response.endswith(b"\r\n\r\n") and b"HTTP/1.1 404" in response  # HEAD: no body


def test_bad_requests_get_4xx_and_the_server_carries_on(web_server: StartWeb) -> None:
    web = web_server()
    port = web.web_port
    assert status_of(http_exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: 3\r\n\r\nabc")) == 405
    assert status_of(http_exchange(port, b"GARBAGE\r\n\r\n")) == 400
    assert status_of(http_exchange(port, b"GET / HTTP/1.1\r\n\r\n")) == 400  # no Host
    assert status_of(get(port, "/nothing-here")) == 404
    assert status_of(get(port, "/ws")) == 426
    assert status_of(get(port, "/")) == 200
    assert web.chat.user("still_fine")


def test_a_one_megabyte_header_is_refused_without_harm(web_server: StartWeb) -> None:
    web = web_server()
    port = web.web_port
    request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Big: ".encode()
               + b"a" * (1 << 20) + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # Refused before it was all sent is a refusal too.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        response = read_until_closed(sock)
    assert response == b"" or status_of(response) == 431
    assert status_of(get(port, "/")) == 200
    client = WsClient(port)
    assert client.status == 101 and client.hello("after_big_header")["type"] == "welcome"


def test_slow_request_heads_are_cut_off(web_server: StartWeb) -> None:
    port = web_server(handshake_timeout_s=0.3).web_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        started = time.monotonic()
        response = read_until_closed(sock, timeout_s=5)
        assert time.monotonic() - started < 3
    assert status_of(response) == 408


def test_idle_keep_alive_connections_are_closed(web_server: StartWeb) -> None:
    port = web_server(handshake_timeout_s=0.3).web_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /style.css HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        response = read_until_closed(sock, timeout_s=5)
    assert response.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" in response


def test_handshake_and_a_chat_with_a_tcp_client(web_server: StartWeb) -> None:
    web = web_server()
    browser = WsClient(web.web_port)
    assert browser.status == 101
    assert "sec-websocket-accept:" in browser.head.lower()
    welcome = browser.hello("webby")
    assert welcome["max_frame"] == 65536
    tcp = web.chat.user("tcpy")
    browser.frame_of("joined")
    browser.send_frame({"type": "say", "room": "lobby", "text": "hello tcp", "id": "w-1"})
    assert browser.frame_of("message")["id"] == "w-1"
    assert tcp.recv_until("message")["text"] == "hello tcp"
    tcp.send({"type": "say", "room": "lobby", "text": "hello web"})
    assert browser.frame_of("message")["text"] == "hello web"


def test_fragmented_masked_messages_are_joined(web_server: StartWeb) -> None:
    browser = WsClient(web_server().web_port)
    browser.hello("frag")
    text = '{"type":"say","room":"lobby","text":"in three parts","id":"f-1"}'
    browser.send(TextMessage(data=text[:10], message_finished=False))
    browser.send(Ping(payload=b"between"))  # a control frame may come between fragments
    browser.send(TextMessage(data=text[10:30], message_finished=False))
    browser.send(TextMessage(data=text[30:], message_finished=True))
    assert isinstance(browser.next_event(), Pong)
    assert browser.frame_of("message")["text"] == "in three parts"


def test_websocket_ping_gets_pong_with_the_payload(web_server: StartWeb) -> None:
    browser = WsClient(web_server().web_port)
    browser.send(Ping(payload=b"are you there"))
    event = browser.next_event()
    assert isinstance(event, Pong) and event.payload == b"are you there"


def test_oversize_message_closes_with_1009(web_server: StartWeb) -> None:
    web = web_server(max_frame=2048)
    browser = WsClient(web.web_port)
    browser.hello("big")
    browser.send(TextMessage(data="x" * 1000, message_finished=False))
    browser.send(TextMessage(data="x" * 1100, message_finished=True))
    error = browser.frame_of("error")
    assert error["code"] == "frame_too_large"
    assert browser.close_event().code == 1009
    assert wait_for(lambda: web.chat.call(lambda: len(web.chat.server._connections)) == 0)


def test_binary_message_gets_bad_frame_and_close_1003(web_server: StartWeb) -> None:
    browser = WsClient(web_server().web_port)
    browser.hello("binary")
    browser.send(BytesMessage(data=b'{"type":"ping"}'))
    assert browser.frame_of("error")["code"] == "bad_frame"
    assert browser.close_event().code == 1003


def test_text_that_is_not_a_frame_gets_bad_frame_and_stays_open(web_server: StartWeb) -> None:
    browser = WsClient(web_server().web_port)
    browser.send(TextMessage(data="not json"))
    assert browser.frame()["code"] == "bad_frame"
    assert browser.hello("still_open")["type"] == "welcome"


def test_invalid_utf8_closes_with_1007(web_server: StartWeb) -> None:
    browser = WsClient(web_server().web_port)
    browser.send_raw(masked_frame(0x1, b'{"type":"\xff"}'))
    assert browser.close_event().code == 1007


def test_unmasked_client_frame_closes_with_1002(web_server: StartWeb) -> None:
    browser = WsClient(web_server().web_port)
    browser.send_raw(bytes((0x81, 2)) + b"{}")
    assert browser.close_event().code == 1002


def test_client_close_is_answered_and_the_user_leaves(web_server: StartWeb) -> None:
    web = web_server()
    watcher = web.chat.user("watcher")
    browser = WsClient(web.web_port)
    browser.hello("leaver")
    browser.send(CloseConnection(code=1000, reason="bye"))
    assert browser.close_event().code == 1000
    parted = watcher.recv_until("parted")
    assert parted["name"] == "leaver"


def test_server_closes_with_a_close_frame_after_quit(web_server: StartWeb) -> None:
    browser = WsClient(web_server().web_port)
    browser.hello("quitter")
    browser.send_frame({"type": "quit"})
    assert browser.close_event().code == 1000


def test_foreign_origin_is_refused_403(web_server: StartWeb) -> None:
    port = web_server().web_port
    response = http_exchange(port, upgrade_request(port, origin="http://evil.example"))
    assert status_of(response) == 403


def test_operator_allowed_origin_is_accepted(web_server: StartWeb) -> None:
    port = web_server(origins=("https://chat.example.org",)).web_port
    assert WsClient(port, origin="https://chat.example.org").status == 101


def test_hello_is_still_required_in_time(web_server: StartWeb) -> None:
    browser = WsClient(web_server(handshake_timeout_s=0.3).web_port)
    assert browser.close_event(timeout_s=5).code in (1000, 1006)


def test_frames_arriving_with_the_upgrade_are_read(web_server: StartWeb) -> None:
    port = web_server().web_port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        hello = masked_frame(0x1, b'{"type":"hello","name":"eager","protocol":1}')
        sock.sendall(upgrade_request(port) + hello)
        data = b""
        while b'"welcome"' not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk


def test_shutdown_reaches_web_clients_before_the_close_frame(web_server: StartWeb) -> None:
    web = web_server()
    browser = WsClient(web.web_port)
    browser.hello("stayer")
    web.chat.stop()
    assert browser.frame_of("notice")["code"] == "shutdown"
    assert browser.close_event().code == 1000
