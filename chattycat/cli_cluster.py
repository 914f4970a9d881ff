"""``chattycat serve`` as a node of a cluster on Redis, and ``--workers N``.

The supervisor (:mod:`chattycat.server.supervisor`) runs each worker as an
ordinary ``chattycat serve`` with the options the user gave, minus
``--workers``, plus the settings that make it one worker among N: the
shared port (``--reuse-port``; with ``--port 0`` the number the supervisor
reserved), and its own node name. Options set through ``CHATTYCAT_*``
variables reach the workers through their inherited environment; the
options written here come after and so take precedence over both.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from chattycat._version import __version__
from chattycat.net.listener import can_share_port, reserve_port
from chattycat.net.loop import EventLoop
from chattycat.net.resp import parse_redis_url
from chattycat.server.config import RedisSettings
from chattycat.server.supervisor import Supervisor

__all__ = ["DoorPorts", "cluster_options", "default_node_name", "redis_settings", "run_workers",
           "show_addresses", "shown_redis", "worker_args"]

log = logging.getLogger("chattycat")
F = TypeVar("F", bound=Callable[..., Any])

# Set per worker by the supervisor, never copied from the user's command line.
PER_WORKER_OPTIONS = frozenset({"workers", "port", "web_port", "irc_port", "irc_tls_port",
                                "node_name", "reuse_port"})


@dataclass(frozen=True, slots=True)
class DoorPorts:
    """The ports of ``serve``'s front doors; None: that door is off."""

    tcp: int
    web: int | None = None
    irc: int | None = None
    irc_tls: int | None = None

    def as_options(self) -> list[str]:
        """The ``--port``-style options that give a worker these ports."""
        options = ["--port", str(self.tcp)]
        for flag, port in (("--web-port", self.web), ("--irc-port", self.irc),
                           ("--irc-tls-port", self.irc_tls)):
            if port is not None:
                options += [flag, str(port)]
        return options


def _option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    # As cli.option: every option can also be set by CHATTYCAT_<OPTION>.
    long = next(d for d in decls if d.startswith("--"))
    envvar = "CHATTYCAT_" + long[2:].upper().replace("-", "_")
    return click.option(*decls, envvar=envvar, show_envvar=True, **kwargs)


def cluster_options(command: F) -> F:
    """The options of ``serve`` for running as one node of a cluster on Redis."""
    decorators = [
        _option("--redis", default=None, metavar="URL",
                help="Join the cluster kept in this Redis database "
                "(redis://[:password@]host[:port][/db]): rooms, names, sessions and history "
                "are shared with every server using it. Replaces --db. [default: off]"),
        _option("--redis-durability", type=click.Choice(["everysec", "always"]),
                default="everysec", show_default=True,
                help="everysec: acknowledge a message once Redis has it (a Redis crash may "
                "lose about its last second); always: only once Redis has it on disk."),
        _option("--node-name", default=None, metavar="NAME",
                help="This server's name in the cluster, different on every node. "
                "[default: host name and process id]"),
        _option("--workers", type=click.IntRange(1), default=1, show_default=True,
                help="Server processes sharing the port, for a machine's cores (with --redis); "
                "a supervisor restarts any that dies."),
        _option("--reuse-port", is_flag=True,
                help="Share the port with other servers of the cluster (SO_REUSEPORT), as "
                "--workers does (with --redis)."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def redis_settings(url: str | None, durability: str, node_name: str | None, *,
                   db: str | None, workers: int, reuse_port: bool) -> RedisSettings | None:
    """The cluster settings, checked against the options that need or exclude them."""
    if url is None:
        for needs, given in (("--workers", workers > 1), ("--reuse-port", reuse_port),
                             ("--node-name", node_name is not None)):
            if given:
                raise click.UsageError(f"{needs} needs --redis: the servers share their "
                                       "rooms and history through it")
        return None
    if db is not None:
        raise click.UsageError("--db and --redis do not go together: with --redis the "
                               "history is kept in Redis")
    try:
        parse_redis_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--redis") from None
    return RedisSettings(url, durability, node_name or default_node_name())


def shown_redis(url: str) -> str:
    """The Redis URL without its password, for logs."""
    return str(parse_redis_url(url))


def default_node_name() -> str:
    """This process's name in a cluster: the host name and the process id."""
    return f"{platform.node() or 'node'}-{os.getpid()}"


def show_addresses(hosts: Sequence[str], port: int) -> str:
    """``127.0.0.1:9999, [::1]:9999``: as a single server's start-up line shows them."""
    return ", ".join(f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts)


def worker_args(ctx: click.Context) -> list[str]:
    """The options given on this ``serve`` command line, except those set per worker."""
    args: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, click.Option) or name is None or name in PER_WORKER_OPTIONS:
            continue
        if ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            continue  # a default, or a variable the worker inherits
        value = ctx.params[name]
        flag = next(o for o in param.opts if o.startswith("--"))
        if param.is_flag and param.secondary_opts:
            args.append(flag if value else param.secondary_opts[0])
        elif param.is_flag:
            args += [flag] if value else []
        else:
            for item in value if param.multiple else (value,):
                args += [flag, str(item)]
    return args


def run_workers(ctx: click.Context, count: int, hosts: Sequence[str] | None,
                ports: DoorPorts, *, node_name: str, scheme: str, history: str) -> int:
    """Reserve the ports, log where the service listens, supervise ``count`` workers."""
    if not can_share_port():
        raise click.ClickException(
            "--workers: this platform cannot share a listening port (no SO_REUSEPORT); "
            "run one server per port instead")
    reserved = []
    try:
        chosen: list[int | None] = []
        for port in (ports.tcp, ports.web, ports.irc, ports.irc_tls):
            if port is None:
                chosen.append(None)
                continue
            # Bound, never listening: port 0 becomes a fixed number every
            # worker (and every restarted one) binds again, and no
            # connection ever waits on this socket.
            reserved.append(reserve_port(hosts[0] if hosts else None, port))
            chosen.append(reserved[-1].getsockname()[1])
    except OSError as exc:
        for sock in reserved:
            sock.close()
        raise click.ClickException(str(exc.strerror or exc)) from None
    tcp, web, irc, irc_tls = chosen
    assert tcp is not None
    fixed = DoorPorts(tcp, web, irc, irc_tls)
    common = worker_args(ctx)
    shown_hosts = list(hosts) if hosts else ["0.0.0.0", "::"]
    log.info("chattycat %s listening on %s (%s); history in %s; %d workers", __version__,
             show_addresses(shown_hosts, tcp), scheme, history, count)
    if web is not None:
        web_scheme = "https" if scheme == "TLS" else "http"
        urls = ", ".join(f"{web_scheme}://{show_addresses([h], web)}/" for h in shown_hosts)
        log.info("web client on %s", urls)
    loop = EventLoop()
    try:
        supervisor = Supervisor(
            loop, lambda i: [sys.executable, "-m", "chattycat", "serve", *common,
                             *fixed.as_options(), "--workers", "1", "--reuse-port",
                             "--node-name", f"{node_name}-{i}"],
            count, echo=_echo)
        return supervisor.run()
    finally:
        loop.close()
        for sock in reserved:
            sock.close()


def _echo(line: str) -> None:
    # A worker's log line, already formatted by the worker; passed on as it is.
    click.echo(line, err=True)
