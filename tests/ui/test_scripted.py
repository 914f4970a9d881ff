"""``chattycat join`` without a terminal, end to end against a ``chattycat serve`` child."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from tests.conftest import ServerProcess, StartServer, chattycat_command, child_env
from tests.wire import WireClient

RUN_TIMEOUT_S = 30.0
STAMP_RE = re.compile(r"^\d\d:\d\d:\d\d ")


def run_join(port: int, *args: str, stdin: str | None = "",
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        chattycat_command("join", "--port", str(port), *args),
        input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=child_env(),
    )


def watcher(server: ServerProcess, *rooms: str) -> WireClient:
    client = server.connect()
    client.hello("watcher")
    for room in rooms:
        client.send({"type": "join", "room": room})
        client.recv_until("history", where=lambda f, r=room: f["room"] == r)  # type: ignore[misc]
    return client


def said(client: WireClient, count: int, where: Callable[[dict[str, object]], bool]
         ) -> list[dict[str, object]]:
    """The next ``count`` message frames matching ``where``."""
    return [client.recv_until("message", where=where) for _ in range(count)]


@pytest.fixture
def server(server_process: StartServer) -> ServerProcess:
    return server_process()


def test_piped_lines_are_sent_and_every_event_is_one_stamped_line(server: ServerProcess) -> None:
    observer = watcher(server)
    result = run_join(server.port, "--name", "bot", stdin="hello\n/me waves\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    frames = said(observer, 2, lambda f: f["from"] == "bot")
    assert [(f["text"], f.get("action", False)) for f in frames] == [("hello", False),
                                                                    ("waves", True)]
    lines = result.stdout.splitlines()
    assert lines, "no output"
    assert all(STAMP_RE.match(line) for line in lines), lines
    assert "\x1b" not in result.stdout
    body = [line[9:] for line in lines]
    assert any(line.startswith("connected as bot (") for line in body)
    assert "\u2192 bot joined #lobby" in body
    assert "[lobby] bot: hello" in body
    assert "[lobby] * bot waves" in body


def test_input_that_ends_before_the_connection_is_up_still_gets_sent(
    server: ServerProcess,
) -> None:
    # The whole input is in the pipe, closed, before the child has even started.
    observer = watcher(server, "dev")
    lines = "".join(f"line {n}\n" for n in range(12))
    result = run_join(server.port, "--name", "bot", "--room", "dev", stdin=lines + "last")
    assert result.returncode == 0, result.stderr
    frames = said(observer, 13, lambda f: f["from"] == "bot")
    assert [f["text"] for f in frames] == [f"line {n}" for n in range(12)] + ["last"]
    assert all(f["room"] == "dev" for f in frames)


def test_a_newline_inside_a_message_is_shown_escaped_on_one_line(server: ServerProcess) -> None:
    observer = watcher(server)
    observer.say("lobby", "first\nsecond\x1b[31m")
    observer.recv_until("message")
    result = run_join(server.port, "--name", "bot", stdin="")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "watcher: first" in line]
    assert "first" in line and "second" in line
    assert "\x1b" not in result.stdout


def test_long_lines_are_not_wrapped(server: ServerProcess) -> None:
    text = "x" * 3000
    result = run_join(server.port, "--name", "bot", stdin=text + "\n")
    assert result.returncode == 0, result.stderr
    assert any(line.endswith(f"[lobby] bot: {text}") for line in result.stdout.splitlines())


def test_quit_command_exits_0_with_its_reason_and_ignores_what_follows(
    server: ServerProcess,
) -> None:
    observer = watcher(server)
    result = run_join(server.port, "--name", "bot", stdin="bye all\n/quit gone fishing\nlost\n")
    assert result.returncode == 0, result.stderr
    [frame] = said(observer, 1, lambda f: f["from"] == "bot")
    assert frame["text"] == "bye all"
    parted = observer.recv_until("parted", where=lambda f: f["name"] == "bot")
    assert parted["reason"] == "gone fishing"
    assert "lost" not in result.stdout


def test_commands_and_hints_in_scripted_mode(server: ServerProcess) -> None:
    observer = watcher(server)
    script = "/jion dev\n/join dev\nin dev\n/who\n/rooms\n/msg watcher psst\n//slash\n"
    result = run_join(server.port, "--name", "bot", stdin=script)
    assert result.returncode == 0, result.stderr
    body = [line[9:] for line in result.stdout.splitlines()]
    assert any(line.startswith("unknown command /jion; did you mean /join") for line in body)
    assert "[dev] bot: in dev" in body
    assert "[dev] members of #dev: bot" in body
    assert any(line.startswith("rooms: #dev (1), #lobby (") for line in body)
    assert "[whisper] bot \u2192 watcher: psst" in body
    assert "[dev] bot: /slash" in body
    whisper = observer.recv_until("whisper")
    assert whisper["text"] == "psst"


def test_stdin_at_eof_at_once_just_connects_and_quits(server: ServerProcess) -> None:
    result = run_join(server.port, "--name", "bot", stdin=None)  # /dev/null
    assert result.returncode == 0, result.stderr
    assert "connected as bot" in result.stdout


def test_unreachable_server_is_one_stderr_line_and_exit_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: refused
        port = sock.getsockname()[1]
        result = run_join(port, "--name", "bot", stdin="hello\n")
    assert result.returncode == 1
    assert result.stderr == f"Error: cannot connect to 127.0.0.1:{port}: connection refused\n"
    assert result.stdout == ""


def test_name_taken_is_one_stderr_line_and_exit_1(server: ServerProcess) -> None:
    watcher(server)
    result = run_join(server.port, "--name", "watcher", stdin="hello\n")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and "watcher" in line and "taken" in line


def test_a_reader_that_goes_away_ends_the_client_quietly(server: ServerProcess) -> None:
    proc = subprocess.Popen(
        chattycat_command("join", "--port", str(server.port), "--name", "bot"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=child_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write("one\n")
    proc.stdin.flush()
    assert "connected" in proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    for n in range(20):
        proc.stdin.write(f"line {n}\n")
    proc.stdin.close()
    try:
        assert proc.wait(RUN_TIMEOUT_S) == 0
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()


# -- defects seen by a new user ---------------------------------------------------------


@pytest.mark.parametrize("part", ["/part", "/part qa"])
def test_part_right_after_join_is_not_lost_and_later_lines_stay_out(
    server: ServerProcess, part: str,
) -> None:
    # Before: "you are not in #qa", the part was lost, and "after" went to #qa.
    observer = watcher(server)
    result = run_join(server.port, "--name", "bot", stdin=f"/join qa\n{part}\nafter\n")
    assert result.returncode == 0, result.stderr
    body = [line[9:] for line in result.stdout.splitlines()]
    assert not [line for line in body if "not in #qa" in line], body
    assert "[lobby] bot: after" in body
    [frame] = said(observer, 1, lambda f: f["from"] == "bot")
    assert (frame["room"], frame["text"]) == ("lobby", "after")
    assert "\u2190 bot left #qa" in body


def test_join_with_a_room_never_passes_through_the_lobby(server: ServerProcess) -> None:
    # Before: the whole lobby history, and a join and a part in the lobby.
    observer = watcher(server)
    observer.say("lobby", "lobby chatter")
    observer.recv_until("message")
    result = run_join(server.port, "--name", "bot", "--room", "ops", stdin="in ops\n")
    assert result.returncode == 0, result.stderr
    assert "lobby" not in result.stdout
    assert "[ops] bot: in ops" in result.stdout
    frames = observer.drain(0.3)
    assert not [f for f in frames if f.get("name") == "bot"], frames  # no joined, no parted


def test_history_and_who_say_when_there_is_nothing_to_show(server: ServerProcess) -> None:
    observer = watcher(server, "old")
    observer.say("old", "a word before leaving")
    observer.recv_until("message")
    observer.send({"type": "part", "room": "old"})
    observer.recv_until("parted")
    script = "/join quiet\n/history\n/who old\n"
    result = run_join(server.port, "--name", "bot", stdin=script)
    assert result.returncode == 0, result.stderr
    body = [line[9:] for line in result.stdout.splitlines()]
    assert "[quiet] no older messages in #quiet" in body
    assert "[old] nobody is in #old" in body


def test_bad_room_and_name_hints_carry_the_naming_rule(server: ServerProcess) -> None:
    result = run_join(server.port, "--name", "bot", stdin="/join Bad Room!\n/nick bad name\n")
    assert result.returncode == 0, result.stderr
    body = [line[9:] for line in result.stdout.splitlines()]
    assert "usage: /join ROOM (room names are 1-32 characters from a-z 0-9 _ -)" in body
    assert "usage: /nick NAME (names are 1-32 characters from A-Z a-z 0-9 _ -)" in body


def test_a_plain_client_at_a_tls_server_is_told_to_use_tls(
    server_process: StartServer, tmp_path: Path,
) -> None:
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    tls_server = server_process("--tls-cert", str(pem))
    result = run_join(tls_server.port, "--name", "bot", stdin="hello\n")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: cannot connect to 127.0.0.1:{tls_server.port}: ")
    assert line.endswith("expects TLS (use --tls)")
