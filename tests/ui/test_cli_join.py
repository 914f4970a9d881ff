"""``chattycat join`` options through click's CliRunner (no server needed)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from chattycat.cli import main


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(main, ["join", *args], env=env, input="")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],  # --name is required
        ["--name", "b@d"],
        ["--name", "x" * 33],
        ["--name", "bot", "--room", "Lobby"],
        ["--name", "bot", "--port", "0"],
        ["--name", "bot", "--port", "70000"],
        ["--name", "bot", "--log-level", "chatty"],
        ["--name", "bot", "--frobnicate"],
    ],
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    code, _, stderr = invoke(*args)
    assert code == 2
    assert "Usage:" in stderr


def test_help_lists_every_option_and_its_env_var() -> None:
    code, stdout, _ = invoke("--help")
    assert code == 0
    for option in ("--name", "--host", "--port", "--room", "--tls", "--cafile", "--insecure",
                   "--no-color", "--log-level"):
        assert option in stdout
    assert "CHATTYCAT_PORT" in stdout
    assert "127.0.0.1" in stdout and "9999" in stdout


def test_port_comes_from_the_environment(refused_port: int) -> None:
    code, _, stderr = invoke("--name", "bot", env={"CHATTYCAT_PORT": str(refused_port)})
    assert code == 1
    assert stderr == f"Error: cannot connect to 127.0.0.1:{refused_port}: connection refused\n"


def test_name_comes_from_the_environment(refused_port: int) -> None:
    code, _, stderr = invoke("--port", str(refused_port), env={"CHATTYCAT_NAME": "bot"})
    assert code == 1
    assert "cannot connect" in stderr


def test_missing_ca_file_is_a_one_line_error(refused_port: int) -> None:
    code, _, stderr = invoke("--name", "bot", "--port", str(refused_port),
                             "--cafile", "/nonexistent/ca.pem")
    assert code == 1
    assert stderr.count("\n") == 1 and "ca.pem" in stderr


def test_insecure_warns_once(refused_port: int) -> None:
    code, _, stderr = invoke("--name", "bot", "--port", str(refused_port), "--insecure")
    assert code == 1
    assert stderr.count("not verified") == 1


def test_rooms_come_from_the_environment_space_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chattycat import cli
    from chattycat.client.client import Client
    from chattycat.net.loop import EventLoop

    seen: dict[str, object] = {}

    def fake_run_plain(client: Client, loop: EventLoop, *, out: object) -> int:
        seen.update(rooms=client.rooms, host=client.host, port=client.port)
        return 0

    monkeypatch.setattr(cli, "run_plain", fake_run_plain)
    code, _, stderr = invoke("--name", "bot", env={"CHATTYCAT_ROOM": "dev ops",
                                                  "CHATTYCAT_HOST": "localhost"})
    assert code == 0, stderr
    assert seen == {"rooms": ["dev", "ops"], "host": "localhost", "port": 9999}
