"""``chattycat serve`` as a user runs it: start-up, failures, options, signals, TLS."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme

from chattycat._version import __version__
from tests.conftest import START_TIMEOUT_S, StartServer, chattycat_command, child_env
from tests.wire import ConnectionClosed

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run_serve(*args: str, tmp_path: Path, env: dict[str, str] | None = None,
              timeout_s: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run ``chattycat serve`` expecting it to exit on its own (it must not start)."""
    return subprocess.run(
        chattycat_command("serve", *args), capture_output=True, text=True, timeout=timeout_s,
        env=child_env(env), cwd=tmp_path, stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A failed start: non-zero exit, a single ``Error: ...`` line, no traceback."""
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def assert_usage_error(result: subprocess.CompletedProcess[str], option: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Usage:" in result.stderr and option in result.stderr
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- start-up -----------------------------------------------------------------


def test_start_up_log_line_has_version_address_and_history_file(
    server_process: StartServer,
) -> None:
    proc = server_process()
    line = next(line for line in proc.stderr.lines if "listening on" in line)
    assert f"chattycat {__version__}" in line
    assert f"127.0.0.1:{proc.port}" in line
    assert "(TCP)" in line
    assert str(proc.db) in line
    client = proc.connect()
    assert client.hello("alice")["server"] == f"chattycat/{__version__}"


def test_version_option_prints_the_version(tmp_path: Path) -> None:
    result = subprocess.run(chattycat_command("--version"), capture_output=True, text=True,
                            timeout=START_TIMEOUT_S, env=child_env(), cwd=tmp_path)
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_help_names_every_option_and_its_environment_variable(tmp_path: Path) -> None:
    result = run_serve("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for option in ["host", "port", "db", "default-room", "max-frame", "max-outbuf",
                   "flood-rate", "flood-burst", "heartbeat", "handshake-timeout",
                   "max-connections", "retain-days", "tls-cert", "tls-key", "log-level"]:
        assert f"--{option}" in result.stdout
        assert "CHATTYCAT_" + option.upper().replace("-", "_") in result.stdout


# -- failures: one line, no traceback ---------------------------------------------


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--host", "127.0.0.1", "--port", str(port), "--db",
                           str(tmp_path / "h.db"), tmp_path=tmp_path)
    assert_one_line_error(result, f"127.0.0.1:{port}")


def test_history_file_of_random_bytes_is_a_one_line_error(tmp_path: Path) -> None:
    db = tmp_path / "garbage.sqlite3"
    db.write_bytes(os.urandom(16384))
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(db), tmp_path=tmp_path)
    assert_one_line_error(result, str(db))


def test_history_file_under_a_regular_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    db = tmp_path / "not-a-dir" / "h.db"
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(db), tmp_path=tmp_path)
    assert_one_line_error(result, str(db))


@pytest.mark.skipif(IS_ROOT, reason="root can write to read-only files")
def test_read_only_history_file_is_a_one_line_error(tmp_path: Path,
                                                    server_process: StartServer) -> None:
    db = tmp_path / "ro.sqlite3"
    server_process(db=db).stop()
    db.chmod(0o444)
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(db), tmp_path=tmp_path)
    assert_one_line_error(result, str(db), "not writable")


def test_history_file_in_use_by_another_server_is_a_one_line_error(
    tmp_path: Path, server_process: StartServer
) -> None:
    first = server_process()
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(first.db),
                       tmp_path=tmp_path)
    assert_one_line_error(result, str(first.db))
    client = first.connect()
    client.hello("alice")


def test_missing_tls_certificate_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing-cert.pem"
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(tmp_path / "h.db"),
                       "--tls-cert", str(missing), tmp_path=tmp_path)
    assert_one_line_error(result, str(missing))


def test_missing_tls_certificate_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(tmp_path / "h.db"),
                       "--tls-cert", str(tmp_path / "missing-cert.pem"), tmp_path=tmp_path)
    assert_one_line_error(result, "TLS")


def test_tls_files_that_are_not_pem_are_a_one_line_error(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(os.urandom(512))
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(tmp_path / "h.db"),
                       "--tls-cert", str(cert), tmp_path=tmp_path)
    assert_one_line_error(result, str(cert))


@pytest.mark.skipif(IS_ROOT, reason="root can read unreadable files")
def test_unreadable_tls_key_is_a_one_line_error(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    key_file.chmod(0)
    result = run_serve("--host", "127.0.0.1", "--port", "0", "--db", str(tmp_path / "h.db"),
                       "--tls-cert", str(cert_file), "--tls-key", str(key_file),
                       tmp_path=tmp_path)
    assert_one_line_error(result, "TLS")


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--port", "70000"], "--port"), (["--default-room", "Bad Room"], "--default-room"),
     (["--max-frame", "100"], "--max-frame"), (["--flood-rate", "-1"], "--flood-rate"),
     (["--handshake-timeout", "0"], "--handshake-timeout"),
     (["--log-level", "loud"], "--log-level"), (["--tls-key", "key.pem"], "--tls-key")],
    ids=["port", "default-room", "max-frame", "flood-rate", "handshake-timeout", "log-level",
         "key-without-cert"],
)
def test_bad_option_value_is_a_usage_error(tmp_path: Path, args: list[str], option: str) -> None:
    result = run_serve("--db", str(tmp_path / "h.db"), *args, tmp_path=tmp_path)
    assert_usage_error(result, option)


def test_bad_option_value_from_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    result = run_serve("--db", str(tmp_path / "h.db"), tmp_path=tmp_path,
                       env={"CHATTYCAT_PORT": "not-a-port"})
    assert_usage_error(result, "CHATTYCAT_PORT")


# -- options ------------------------------------------------------------------------


def test_port_can_be_set_by_environment_variable(server_process: StartServer,
                                                 tmp_path: Path) -> None:
    port = free_port()
    proc = server_process("--host", "127.0.0.1", "--db", str(tmp_path / "env.db"),
                          base_args=False, env={"CHATTYCAT_PORT": str(port)})
    assert proc.port == port


def test_settings_can_come_from_environment_variables(server_process: StartServer) -> None:
    proc = server_process(env={"CHATTYCAT_DEFAULT_ROOM": "hall", "CHATTYCAT_MAX_FRAME": "2048",
                               "CHATTYCAT_HEARTBEAT": "7"})
    client = proc.connect()
    welcome = client.hello("alice")
    assert (welcome["max_frame"], welcome["heartbeat"]) == (2048, 7)
    assert client.join_frames[0]["room"] == "hall"


def test_connections_beyond_max_connections_are_refused(server_process: StartServer) -> None:
    proc = server_process("--max-connections", "2")
    first, second = proc.connect(), proc.connect()
    first.hello("alice")
    second.hello("bob")
    extra = proc.connect()
    [refusal] = extra.expect_eof(timeout_s=5)
    assert refusal["type"] == "error" and "full" in refusal["message"]
    first.send({"type": "ping", "token": 1})
    assert first.recv_until("pong")["token"] == 1
    second.send({"type": "quit"})
    second.expect_eof()
    again = proc.connect()
    assert again.hello("carol")["name"] == "carol"


def test_memory_history_keeps_nothing_across_restarts(server_process: StartServer) -> None:
    proc = server_process("--db", ":memory:")
    client = proc.connect()
    client.hello("alice")
    client.say("lobby", "gone soon")
    assert client.recv_until("message")["seq"] == 1
    assert proc.stop() == 0
    proc = server_process("--db", ":memory:")
    client = proc.connect()
    client.hello("alice")
    assert [f["messages"] for f in client.join_frames if f["type"] == "history"] == [[]]


# -- graceful stop ------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_server_gracefully_with_status_0(
    server_process: StartServer, sig: signal.Signals
) -> None:
    proc = server_process()
    client = proc.connect()
    client.hello("alice")
    client.say("lobby", "last one", id="x")
    client.recv_until("message")
    proc.send_signal(sig)
    frames = client.expect_eof(timeout_s=10)
    assert [f["code"] for f in frames if f["type"] == "notice"] == ["shutdown"]
    assert proc.wait() == 0
    assert "stopped" in proc.log
    assert "Traceback" not in proc.log


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.mark.parametrize("split_key", [True, False], ids=["separate-key", "key-in-cert-file"])
def test_tls_serving_with_a_certificate(
    server_process: StartServer, tmp_path: Path, tls_ca: trustme.CA, split_key: bool
) -> None:
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    if split_key:
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        args = ["--tls-cert", str(cert_file), "--tls-key", str(key_file)]
    else:
        cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
        args = ["--tls-cert", str(cert_file)]
    proc = server_process(*args, "--heartbeat", "0")
    assert "(TLS)" in next(line for line in proc.stderr.lines if "listening on" in line)
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    alice = proc.connect(ssl_context=context, server_hostname="localhost")
    bob = proc.connect(ssl_context=context, server_hostname="127.0.0.1")
    alice.hello("alice")
    bob.hello("bob")
    alice.say("lobby", "over TLS", id="t1")
    assert bob.recv_until("message")["text"] == "over TLS"
    plain = proc.connect()  # speaking plain TCP to a TLS port gets nowhere, harmlessly
    plain.send({"type": "hello", "name": "carol", "protocol": 1})
    try:
        frame = plain.recv(1)
    except (TimeoutError, ConnectionClosed):
        pass
    else:
        pytest.fail(f"a plain-TCP client got a frame: {frame}")
    plain.close()
    alice.send({"type": "ping", "token": "tls"})
    assert alice.recv_until("pong")["token"] == "tls"
    assert proc.stop() == 0
