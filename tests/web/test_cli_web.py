"""``chattycat serve --web-port``: the option, its environment variable, TLS, the log line."""

from __future__ import annotations

import json
import re
import socket
import ssl
from pathlib import Path

import trustme
from click.testing import CliRunner
from wsproto.events import TextMessage

from chattycat.cli import main
from tests.conftest import StartServer
from tests.web.browser import WEB_URL_RE, web_port_of
from tests.web.wsclient import read_until_closed, upgrade_request


def test_help_lists_the_web_options_and_their_env_vars() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for text in ("--web-port", "CHATTYCAT_WEB_PORT", "--web-origin", "CHATTYCAT_WEB_ORIGIN"):
        assert text in result.stdout


def test_the_web_door_is_off_unless_asked_for(server_process: StartServer) -> None:
    server = server_process()
    assert server.wait_for_log("web client on", timeout_s=0.5) is None


def test_web_port_from_the_environment_logs_the_url_to_open(
        server_process: StartServer) -> None:
    server = server_process(env={"CHATTYCAT_WEB_PORT": "0"})
    port = web_port_of(server.wait_for_log(WEB_URL_RE))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200 OK")


def test_with_tls_the_page_and_socket_are_https_and_wss(
        server_process: StartServer, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    server = server_process("--web-port", "0", "--tls-cert", str(cert_file),
                            "--tls-key", str(key_file))
    match = server.wait_for_log(r"web client on https://127\.0\.0\.1:(\d+)/")
    port = web_port_of(match)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(upgrade_request(port, origin=f"https://127.0.0.1:{port}"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        from wsproto.connection import Connection, ConnectionType

        ws = Connection(ConnectionType.CLIENT)
        sock.sendall(ws.send(TextMessage(data=json.dumps(
            {"type": "hello", "name": "secure", "protocol": 1}))))
        ws.receive_data(sock.recv(65536))
        first = next(e for e in ws.events() if isinstance(e, TextMessage))
        assert json.loads(first.data)["type"] == "welcome"
    # The page's own origin over TLS is https://; plain http:// is another origin.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(upgrade_request(port, origin=f"http://127.0.0.1:{port}"))
        assert re.match(rb"HTTP/1.1 403", read_until_closed(sock))
