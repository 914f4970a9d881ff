"""The cluster options of ``serve`` (--redis, --workers, ...) and the client's --server list."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

from chattycat import cli
from chattycat.cli_cluster import DoorPorts, worker_args

REDIS_URL = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # serve sets up the root logger; leave it as the test runner had it.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli.main, list(args), env=env or {})


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


@pytest.mark.parametrize(("args", "message"), [
    (("--workers", "2"), "Error: --workers needs --redis"),
    (("--reuse-port",), "Error: --reuse-port needs --redis"),
    (("--node-name", "n1"), "Error: --node-name needs --redis"),
    (("--redis", REDIS_URL, "--db", "x.db"), "Error: --db and --redis do not go together"),
])
def test_cluster_options_that_do_not_fit_are_one_line_usage_errors(
        args: tuple[str, ...], message: str) -> None:
    result = run("serve", *args)
    assert result.exit_code == 2
    assert last_line(result.output).startswith(message)
    assert "Traceback" not in result.output


def test_a_bad_redis_url_is_refused_at_once_without_showing_its_password() -> None:
    result = run("serve", "--redis", "http://:hunter2@example.org")
    assert result.exit_code == 2
    assert "must start with redis://" in last_line(result.output)
    assert "hunter2" not in result.output


def test_workers_where_the_port_cannot_be_shared_is_a_one_line_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chattycat.cli_cluster.can_share_port", lambda: False)
    result = run("serve", "--redis", REDIS_URL, "--workers", "2")
    assert result.exit_code == 1
    assert last_line(result.output) == (
        "Error: --workers: this platform cannot share a listening port (no SO_REUSEPORT); "
        "run one server per port instead")


class Captured:
    """Stands in for run_workers: keeps what serve passed."""

    def __init__(self) -> None:
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.worker_args: list[str] = []

    def __call__(self, ctx: click.Context, *args: Any, **kwargs: Any) -> int:
        self.args, self.kwargs = args, kwargs
        self.worker_args = worker_args(ctx)
        return 0


def test_workers_get_the_options_given_except_those_set_per_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    captured = Captured()
    monkeypatch.setattr(cli, "run_workers", captured)
    result = run("serve", "--redis", "redis://:hunter2@127.0.0.1:1/0", "--workers", "3",
                 "--host", "127.0.0.1", "--port", "0", "--web-port", "0", "--max-frame", "2048",
                 "--no-irc-join-default-room", "--web-origin", "https://a",
                 "--web-origin", "https://b", "--node-name", "east",
                 env={"CHATTYCAT_FLOOD_RATE": "1"})
    assert result.exit_code == 0, result.output
    assert captured.worker_args == [
        "--host", "127.0.0.1", "--max-frame", "2048", "--web-origin", "https://a",
        "--web-origin", "https://b", "--no-irc-join-default-room",
        "--redis", "redis://:hunter2@127.0.0.1:1/0",
    ]  # CHATTYCAT_FLOOD_RATE reaches the workers through their environment
    count, hosts, ports = captured.args
    assert (count, hosts, ports) == (3, ["127.0.0.1"], DoorPorts(0, web=0))
    assert captured.kwargs["node_name"] == "east"
    assert captured.kwargs["history"] == "redis://127.0.0.1:1/0"  # no password in logs


def test_redis_and_workers_can_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    captured = Captured()
    monkeypatch.setattr(cli, "run_workers", captured)
    result = run("serve", env={"CHATTYCAT_REDIS": REDIS_URL, "CHATTYCAT_WORKERS": "2"})
    assert result.exit_code == 0, result.output
    assert captured.args[0] == 2
    assert captured.worker_args == []
    assert captured.kwargs["node_name"]  # host name and pid by default


def test_a_worker_command_line_gives_its_own_port_and_node_name() -> None:
    assert DoorPorts(9999, web=8080, irc_tls=6697).as_options() == [
        "--port", "9999", "--web-port", "8080", "--irc-tls-port", "6697"]


def test_join_refuses_a_server_list_together_with_host() -> None:
    result = run("join", "--name", "bot", "--server", "127.0.0.1:1", "--host", "example.org")
    assert result.exit_code == 2
    assert last_line(result.output) == "Error: --server replaces --host: give one or the other"


def test_join_refuses_a_malformed_server_address() -> None:
    result = run("join", "--name", "bot", "--server", "::1:9999")
    assert result.exit_code == 2
    assert "write IPv6 as [::1]:9999" in last_line(result.output)
