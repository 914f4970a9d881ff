"""Accounts and the server password end to end: real sockets, the real scrypt worker.

In-process servers (with a fake clock where a delay is measured) and real
``chattycat serve`` / ``chattycat accounts`` subprocesses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from chattycat.server.accounts import AccountMode
from tests.conftest import (
    FakeClock,
    InProcessServer,
    StartInProcess,
    StartServer,
    chattycat_command,
    child_env,
    wait_for,
)
from tests.wire import WireClient

PASSWORD = "correct horse battery"


def hello(client: WireClient, name: str, **extra: Any) -> dict[str, Any]:
    """Send a hello; the first answer (welcome or error)."""
    client.send({"type": "hello", "name": name, "protocol": 1, **extra})
    frame: dict[str, Any] = client.recv()
    return frame


def held(srv: InProcessServer) -> int:
    return len(srv.call(lambda: srv.server.state._accounts.held))


def test_register_then_sign_in_again_with_the_password(chat_server: StartInProcess) -> None:
    srv = chat_server()
    alice = srv.user("alice")
    alice.send({"type": "register", "password": PASSWORD, "ref": 1})
    assert alice.recv_until("registered")["name"] == "alice"
    alice.close()
    again = srv.connect()
    welcome = hello(again, "alice", password=PASSWORD)
    assert welcome["type"] == "welcome"


def test_the_registered_frame_names_the_account(chat_server: StartInProcess) -> None:
    srv = chat_server()
    alice = srv.user("alice")
    alice.send({"type": "register", "password": PASSWORD, "ref": 1})
    frame = alice.recv_until("registered")
    assert (frame["name"], frame["ref"]) == ("alice", 1)
    assert PASSWORD not in str(frame)


def test_without_the_password_a_registered_name_is_auth_failed(
    chat_server: StartInProcess,
) -> None:
    clock = FakeClock()
    srv = chat_server(clock=clock)
    alice = srv.user("alice")
    alice.send({"type": "register", "password": PASSWORD})
    alice.recv_until("registered")
    alice.close()
    assert wait_for(lambda: srv.call(lambda: srv.server.state.user_names()) == [])
    mallory = srv.connect()
    mallory.send({"type": "hello", "name": "alice", "protocol": 1, "password": "guess guess"})
    assert wait_for(lambda: held(srv) == 1, timeout_s=10)  # verified (and failed) off the loop
    mallory.expect_no_frame(0.2)  # held back, not answered at once
    clock.advance(1.0)
    srv.call(srv.server.tick)
    error = mallory.recv()
    assert (error["type"], error["code"]) == ("error", "auth_failed")


def test_the_delay_grows_with_each_failure_from_one_address(chat_server: StartInProcess) -> None:
    clock = FakeClock()
    srv = chat_server(clock=clock, max_failed_hellos=100, handshake_timeout_s=60.0)
    alice = srv.user("alice")
    alice.send({"type": "register", "password": PASSWORD})
    alice.recv_until("registered")
    guesser = srv.connect()
    delays = []
    for _ in range(5):
        guesser.send({"type": "hello", "name": "alice", "protocol": 1})
        assert wait_for(lambda: held(srv) == 1)
        waited = 0.0
        while True:
            clock.advance(0.5)
            waited += 0.5
            srv.call(srv.server.tick)
            if held(srv) == 0:
                break
        assert guesser.recv()["code"] == "auth_failed"
        delays.append(waited)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]


def add_account(db: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    secret = db.parent / f"{name}.secret"
    secret.write_text(password + "\n")
    return subprocess.run(
        chattycat_command("accounts", "add", name, "--db", str(db), "--password-file",
                          str(secret)),
        capture_output=True, text=True, env=child_env(), timeout=60, check=False)


def test_required_mode_answers_a_wrong_password_and_an_unknown_name_alike(
    server_process: StartServer, tmp_path: Path,
) -> None:
    db = tmp_path / "history.sqlite3"
    assert add_account(db, "alice", PASSWORD).returncode == 0
    proc = server_process("--accounts", AccountMode.REQUIRED.value, "--flood-rate", "0",
                          "--log-level", "debug")
    wrong = hello(proc.connect(), "alice", password="not it at all")
    unknown = hello(proc.connect(), "mallory", password="not it at all")
    assert wrong == unknown and wrong["code"] == "auth_failed"
    assert "operator" in wrong["message"]
    assert hello(proc.connect(), "alice", password=PASSWORD)["type"] == "welcome"
    assert PASSWORD not in proc.log and "not it at all" not in proc.log


def test_a_server_password_is_asked_of_every_client(
    server_process: StartServer, tmp_path: Path,
) -> None:
    secret = tmp_path / "server.secret"
    secret.write_text("let us in\n")
    proc = server_process("--server-password-file", str(secret))
    assert hello(proc.connect(), "alice")["code"] == "auth_failed"
    assert hello(proc.connect(), "bob", server_password="wrong")["code"] == "auth_failed"
    assert hello(proc.connect(), "carol", server_password="let us in")["type"] == "welcome"


def test_the_server_password_may_come_from_the_environment(server_process: StartServer) -> None:
    proc = server_process(env={"CHATTYCAT_SERVER_PASSWORD": "from env"})
    assert hello(proc.connect(), "alice")["code"] == "auth_failed"
    assert hello(proc.connect(), "bob", server_password="from env")["type"] == "welcome"


def test_a_client_welcomed_after_its_password_check_no_longer_counts_as_without_hello(
        chat_server: StartInProcess) -> None:
    # The welcome of a registered name comes a pass later, from the password
    # worker: it must still take the connection out of the per-address count
    # of connections without hello, or a classroom signing in with passwords
    # would soon be refused as "too many connections without hello".
    srv = chat_server()
    alice = srv.user("alice")
    alice.send({"type": "register", "password": PASSWORD, "ref": 1})
    alice.recv_until("registered")
    alice.close()
    signed_in = []
    for _ in range(3):
        client = srv.connect()
        assert hello(client, "alice", password=PASSWORD)["type"] == "welcome"
        signed_in.append(client)
    assert wait_for(lambda: srv.call(
        lambda: srv.server.addresses.counts("127.0.0.1"))[1] == 0)
