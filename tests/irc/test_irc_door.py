"""The IRC door over real sockets: raw IRC clients, native clients and the CLI together."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from chattycat.server.irc import open_irc_door
from tests.conftest import InProcessServer, StartInProcess, StartServer
from tests.irc.lineclient import IrcLineClient, words

IRC_RE = r"IRC on 127\.0\.0\.1:(\d+)"
IRC_TLS_RE = r"IRC over TLS on 127\.0\.0\.1:(\d+)"


@pytest.fixture
def irc_server(chat_server: StartInProcess) -> Iterator[tuple[InProcessServer, int]]:
    running = chat_server()
    addresses = running.call(lambda: open_irc_door(running.server, "127.0.0.1", 0))
    yield running, addresses[0][1]


def _client(port: int, clients: list[IrcLineClient]) -> IrcLineClient:
    client = IrcLineClient("127.0.0.1", port)
    clients.append(client)
    return client


@pytest.fixture
def clients() -> Iterator[list[IrcLineClient]]:
    opened: list[IrcLineClient] = []
    yield opened
    for client in opened:
        client.close()


def test_irc_and_native_users_share_a_room(irc_server: tuple[InProcessServer, int],
                                          clients: list[IrcLineClient]) -> None:
    running, port = irc_server
    native = running.user("bob")
    irc = _client(port, clients)
    irc.register("alice")
    assert native.recv_until("joined")["name"] == "alice"
    irc.send("PRIVMSG #lobby :hello bob", "PRIVMSG #lobby :\x01ACTION waves\x01")
    first = native.recv_until("message")
    second = native.recv_until("message")
    assert (first["text"], first["from"]) == ("hello bob", "alice")
    assert (second["text"], second.get("action")) == ("waves", True)
    native.say("lobby", "hi alice")
    native.send({"type": "nick", "name": "robert"})
    native.say("lobby", "back", action=True)
    got = irc.until(lambda line: "ACTION" in line)
    assert any(words(line) == ("PRIVMSG", ["#lobby", "hi alice"]) for line in got)
    assert any(line.startswith(":bob!bob@") and words(line) == ("NICK", ["robert"])
               for line in got)
    irc.send("PART #lobby :later")
    assert native.recv_until("parted")["reason"] == "part"


def test_history_is_played_back_with_server_time_and_scrolls_back_with_chathistory(
        irc_server: tuple[InProcessServer, int], clients: list[IrcLineClient]) -> None:
    running, port = irc_server
    native = running.user("bob")
    for n in range(3):
        native.say("lobby", f"m{n}")
        native.recv_until("message")
    irc = _client(port, clients)
    got = irc.register("alice", "batch server-time message-tags draft/chathistory")
    got += irc.until(lambda line: line.startswith(":irc.chattycat BATCH -"))
    played = [line for line in got if "PRIVMSG" in line]
    assert [words(line)[1][-1] for line in played] == ["m0", "m1", "m2"]
    assert all("time=" in line and "batch=" in line for line in played)
    irc.send("CHATHISTORY BEFORE #lobby msgid=lobby:3 2")
    got = irc.until(lambda line: line.startswith(":irc.chattycat BATCH -"))
    assert [words(line)[1][-1] for line in got if "PRIVMSG" in line] == ["m0", "m1"]


def test_error_numerics_and_a_non_utf8_line(irc_server: tuple[InProcessServer, int],
                                            clients: list[IrcLineClient]) -> None:
    _running, port = irc_server
    irc = _client(port, clients)
    irc.register("alice")
    irc.send("PRIVMSG nobody :x", "PART #nowhere", "BOGUS", b"PRIVMSG #lobby :\xff\r\n")
    got = [words(line)[0] for line in irc.ping_sync()]
    assert got == ["401", "442", "421", "FAIL"]


def test_quit_closes_with_an_error_line(irc_server: tuple[InProcessServer, int],
                                        clients: list[IrcLineClient]) -> None:
    _running, port = irc_server
    irc = _client(port, clients)
    irc.register("alice")
    irc.send("QUIT :bye")
    assert irc.until(lambda line: line.startswith("ERROR"))
    with pytest.raises(ConnectionError):
        irc.line(timeout_s=5)


def test_serve_opens_irc_and_irc_over_tls_ports(server_process: StartServer,
                                                tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    server = server_process("--irc-port", "0", "--irc-tls-port", "0", "--tls-cert", str(pem))
    plain = server.wait_for_log(IRC_RE)
    secure = server.wait_for_log(IRC_TLS_RE)
    assert plain is not None and secure is not None
    context = ssl.create_default_context()
    ca.configure_trust(context)
    tls_client = IrcLineClient("127.0.0.1", int(secure.group(1)), context=context)
    plain_client = IrcLineClient("127.0.0.1", int(plain.group(1)))
    try:
        tls_client.register("alice")
        plain_client.register("bob")
        plain_client.send("PRIVMSG alice :over tls")
        got = tls_client.until(lambda line: "over tls" in line)
        assert words(got[-1]) == ("PRIVMSG", ["alice", "over tls"])
    finally:
        tls_client.close()
        plain_client.close()


def test_irc_tls_port_needs_a_certificate(server_process: StartServer) -> None:
    server = server_process("--irc-tls-port", "0", wait_ready=False)
    assert server.wait() == 2
    assert "--irc-tls-port needs --tls-cert" in server.log


def test_quit_before_registration_closes_with_an_error_line(
        irc_server: tuple[InProcessServer, int], clients: list[IrcLineClient]) -> None:
    _running, port = irc_server
    irc = _client(port, clients)
    irc.send("QUIT :checking the port")
    assert irc.until(lambda line: line.startswith("ERROR"))
    with pytest.raises(ConnectionError):
        irc.line(timeout_s=5)


def test_an_endless_line_gets_417_and_the_next_line_is_served(
        irc_server: tuple[InProcessServer, int], clients: list[IrcLineClient]) -> None:
    _running, port = irc_server
    irc = _client(port, clients)
    irc.register("alice")
    irc.send(b"PRIVMSG #lobby :" + b"x" * 20_000 + b"\r\n")
    assert [words(line)[0] for line in irc.ping_sync()] == ["417"]


@pytest.fixture
def locked_irc_server(chat_server: StartInProcess) -> Iterator[tuple[InProcessServer, int]]:
    running = chat_server(server_password="door secret")
    addresses = running.call(lambda: open_irc_door(running.server, "127.0.0.1", 0))
    yield running, addresses[0][1]


def test_pass_carries_the_server_password(locked_irc_server: tuple[InProcessServer, int],
                                          clients: list[IrcLineClient]) -> None:
    _running, port = locked_irc_server
    irc = _client(port, clients)
    irc.send("PASS :door secret")
    assert any(words(line)[0] == "001" for line in irc.register("alice"))


def test_a_wrong_pass_is_464_and_the_connection_ends(
    locked_irc_server: tuple[InProcessServer, int], clients: list[IrcLineClient],
) -> None:
    _running, port = locked_irc_server
    irc = _client(port, clients)
    irc.send("PASS :guess", "NICK mallory", "USER mallory 0 * :Mallory")
    got = irc.until(lambda line: line.startswith("ERROR"), timeout_s=15)
    assert any(words(line)[0] == "464" for line in got)
    assert not any(words(line)[0] == "001" for line in got)
