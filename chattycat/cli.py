"""The ``chattycat`` command: ``serve`` and ``join``.

This is the edge where errors become one-line messages and exit codes:
nothing a user can cause (a bad flag, a port in use, an unreachable server,
a corrupt history file) ends in a traceback.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.resources
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from chattycat._version import __version__
from chattycat.cli_accounts import accounts, read_secret
from chattycat.cli_cluster import (
    DoorPorts,
    cluster_options,
    redis_settings,
    run_workers,
    shown_redis,
)
from chattycat.client.attempts import parse_address
from chattycat.client.client import Client
from chattycat.errors import ChattyCatError, ConfigError
from chattycat.net.contexts import SSLContext, client_context, server_context
from chattycat.net.loop import EventLoop
from chattycat.protocol.names import NAME_RULE, ROOM_RULE, is_valid_name, is_valid_room
from chattycat.server.accounts import AccountMode
from chattycat.server.app import ChatServer, ServerConfig
from chattycat.server.irc import IRC_SERVER_NAME, irc_door, open_irc_door
from chattycat.server.memory_store import MemoryStore
from chattycat.server.sqlite_store import SQLiteStore
from chattycat.server.state import RoomsConfig
from chattycat.server.store import HistoryStore, default_history_path
from chattycat.server.web import read_site_files, web_door
from chattycat.ui.scripted import run_plain

__all__ = ["main"]

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)
# File descriptors kept back from --max-connections for the listeners, the
# history file and its WAL, the loop's wakeup socket and stdio.
RESERVED_FDS = 32
# --db :memory: keeps history in the process only (the in-memory store).
MEMORY_DB = ":memory:"

log = logging.getLogger("chattycat")
_F = TypeVar("_F", bound=Callable[..., Any])


def setup_logging(level: str) -> None:
    """Logs go to stderr: rich-formatted on a terminal, plain lines otherwise."""
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _env(name: str) -> str:
    return f"CHATTYCAT_{name.upper().replace('-', '_')}"


def option(*decls: str, **kwargs: Any) -> Callable[[_F], _F]:
    """A click option that can also be set by ``CHATTYCAT_<OPTION>``."""
    long = next(d for d in decls if d.startswith("--"))
    return click.option(*decls, envvar=_env(long[2:]), show_envvar=True, **kwargs)


def _irc_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # A server name has a dot and no spaces, so IRC clients never take it for a nick.
    if "." not in value or not value.isascii() or any(c in value for c in " :!@,*?"):
        raise click.BadParameter("must be a host name with a dot, such as irc.example.org")
    return value


def _room_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not is_valid_room(value):
        raise click.BadParameter(ROOM_RULE)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="chattycat")
def main() -> None:
    """ChattyCat: a small self-hosted chat server and its terminal client."""


def hardening_options(command: _F) -> _F:
    """The abuse limits of ``serve`` (docs/security.md explains each)."""
    decorators = [
        option("--max-per-ip", type=click.IntRange(0), default=100, show_default=True,
               help="Connections per client address (IPv6: per /64); 0: no limit."),
        option("--max-unwelcomed-per-ip", type=click.IntRange(0), default=10,
               show_default=True,
               help="Connections per address that have not completed hello; 0: no limit."),
        option("--ip-open-rate", type=click.FloatRange(0), default=20.0, show_default=True,
               help="New connections per second per address (twice that at once); "
               "0: no limit."),
        option("--max-rooms-per-user", type=click.IntRange(1), default=100, show_default=True,
               help="Rooms one user may be in at once (a resume may name no more)."),
        option("--max-sessions", type=click.IntRange(1), default=10_000, show_default=True,
               help="Disconnected sessions kept for a resume; the longest idle go first."),
        option("--stall-timeout", type=click.FloatRange(0, min_open=True), default=None,
               help="Seconds a client's pending output may stand still before it is "
               "dropped. [default: two heartbeats, or 60]"),
        option("--name-grace", type=click.FloatRange(0), default=120.0, show_default=True,
               help="Seconds a disconnected user's name waits for its own session before "
               "anyone else may take it."),
        option("--accounts", type=click.Choice([m.value for m in AccountMode]),
               default=AccountMode.OPEN.value, show_default=True,
               help="open: users may register their own name; required: only names added "
               "with 'chattycat accounts add'; off: no accounts."),
        option("--server-password-file", type=click.Path(dir_okay=False), default=None,
               help="Ask every client for the password on this file's first line "
               "(or set CHATTYCAT_SERVER_PASSWORD). [default: none]"),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _address_limits(limits: dict[str, Any]) -> dict[str, Any]:
    """ServerConfig's share of the hardening options (0 means no limit)."""
    return {
        "max_per_ip": limits["max_per_ip"] or None,
        "max_unwelcomed_per_ip": limits["max_unwelcomed_per_ip"] or None,
        "ip_open_rate_per_s": limits["ip_open_rate"],
        "stall_timeout_s": limits["stall_timeout"],
    }


@main.command()
@option("--host", multiple=True, help="Address to listen on (repeatable). [default: all]")
@option("--port", type=click.IntRange(0, 65535), default=9999, show_default=True,
        help="TCP port (0: any free port).")
@option("--db", "db", default=None, metavar="PATH",
        help="SQLite history file; ':memory:' keeps no history. [default: in the user data dir]")
@option("--default-room", default="lobby", show_default=True, callback=_room_name,
        help="Room every new user joins.")
@option("--max-frame", type=click.IntRange(1024, 2**32 - 1), default=65536, show_default=True,
        help="Largest frame payload in bytes, either way.")
@option("--max-outbuf", type=click.IntRange(1024), default=1024 * 1024, show_default=True,
        help="Unsent bytes a client may have queued before it is dropped as too slow.")
@option("--flood-rate", type=click.FloatRange(0), default=5.0, show_default=True,
        help="Requests per second per connection; 0 disables flood control.")
@option("--flood-burst", type=click.IntRange(1), default=10, show_default=True,
        help="Requests a connection may send at once before the rate applies.")
@option("--heartbeat", type=click.FloatRange(0), default=30.0, show_default=True,
        help="Seconds of silence before the server pings; 0 disables heartbeats.")
@option("--handshake-timeout", type=click.FloatRange(0, min_open=True), default=10.0,
        show_default=True, help="Seconds a new connection has to send hello.")
@option("--max-connections", type=click.IntRange(1), default=None,
        help="Most simultaneous connections. [default: what the file-descriptor limit allows]")
@option("--retain-days", type=click.FloatRange(0, min_open=True), default=None,
        help="Delete messages older than this many days. [default: keep everything]")
@option("--tls-cert", type=click.Path(dir_okay=False), default=None,
        help="PEM certificate chain: serve TLS instead of plain TCP.")
@option("--tls-key", type=click.Path(dir_okay=False), default=None,
        help="PEM private key (if not inside --tls-cert).")
@option("--web-port", type=click.IntRange(0, 65535), default=None,
        help="Serve the web client (HTTP + WebSocket) on this port (0: any free port). "
        "[default: off]")
@option("--web-origin", "web_origins", multiple=True, metavar="ORIGIN",
        help="Another origin (https://chat.example.org) whose pages may open a WebSocket, "
        "as behind a reverse proxy (repeatable).")
@option("--irc-port", type=click.IntRange(0, 65535), default=None,
        help="Let IRC clients in on this port (0: any free port). [default: off]")
@option("--irc-tls-port", type=click.IntRange(0, 65535), default=None,
        help="Let IRC clients in over TLS on this port, with --tls-cert. [default: off]")
@option("--irc-server-name", default=IRC_SERVER_NAME, show_default=True, callback=_irc_name,
        help="The server name IRC clients see (a host name, such as irc.example.org).")
@option("--irc-join-default-room/--no-irc-join-default-room", default=True, show_default=True,
        help="Whether IRC users start in the default room, as every ChattyCat user does, "
        "or in no channel, as IRC users expect.")
@hardening_options
@cluster_options
@option("--log-level", type=LOG_LEVELS, default="info", show_default=True, help="Log verbosity.")
def serve(
    host: tuple[str, ...], port: int, db: str | None, default_room: str, max_frame: int,
    max_outbuf: int, flood_rate: float, flood_burst: int, heartbeat: float,
    handshake_timeout: float, max_connections: int | None, retain_days: float | None,
    tls_cert: str | None, tls_key: str | None, log_level: str,
    web_port: int | None = None, web_origins: tuple[str, ...] = (),
    irc_port: int | None = None, irc_tls_port: int | None = None,
    irc_server_name: str = "", irc_join_default_room: bool = True,
    redis: str | None = None, redis_durability: str = "everysec", node_name: str | None = None,
    workers: int = 1, reuse_port: bool = False, **limits: Any,
) -> None:
    """Run the chat server."""
    setup_logging(log_level)
    if irc_tls_port is not None and tls_cert is None:
        raise click.UsageError("--irc-tls-port needs --tls-cert")
    if tls_key is not None and tls_cert is None:
        raise click.UsageError("--tls-key needs --tls-cert")
    cluster = redis_settings(redis, redis_durability, node_name, db=db, workers=workers,
                             reuse_port=reuse_port)
    rooms = RoomsConfig(
        default_room=default_room, max_frame=max_frame, flood_rate_per_s=flood_rate,
        flood_burst=flood_burst, heartbeat_s=heartbeat, handshake_timeout_s=handshake_timeout,
        max_rooms_per_user=limits["max_rooms_per_user"], max_sessions=limits["max_sessions"],
        name_grace_s=limits["name_grace"], accounts=AccountMode(limits["accounts"]),
        server_password=read_secret(limits["server_password_file"],
                                    "CHATTYCAT_SERVER_PASSWORD"),
    )
    try:
        config = ServerConfig(
            host=list(host) or None, port=port, rooms=rooms, max_outbuf_bytes=max_outbuf,
            max_connections=_connection_limit(max_connections),
            ssl_context=_server_tls(tls_cert, tls_key) if tls_cert else None,
            retain_days=retain_days, redis=cluster, reuse_port=reuse_port,
            **_address_limits(limits),
        )
        db_path = db if db is not None else str(default_history_path())
        if workers > 1:
            assert cluster is not None  # redis_settings saw to it
            sys.exit(run_workers(
                click.get_current_context(), workers, list(host) or None,
                DoorPorts(port, web_port, irc_port, irc_tls_port), node_name=cluster.node_name,
                scheme="TLS" if tls_cert else "TCP", history=shown_redis(cluster.url)))
        _run_server(config, db_path, web_port, web_origins, (irc_port, irc_tls_port),
                    (irc_server_name, irc_join_default_room))
    except ChattyCatError as exc:
        raise click.ClickException(str(exc)) from None


def _open_store(loop: EventLoop, config: ServerConfig, db_path: str
                ) -> tuple[HistoryStore, str]:
    """The history store the configuration asks for, and where it keeps the history."""
    if config.redis is not None:
        from chattycat.server.redis_store import RedisStore

        return RedisStore(loop, config.redis), shown_redis(config.redis.url)
    store = MemoryStore() if db_path == MEMORY_DB else SQLiteStore(db_path)
    return store, db_path


def _run_server(config: ServerConfig, db_path: str, web_port: int | None = None,
                web_origins: tuple[str, ...] = (),
                irc_ports: tuple[int | None, int | None] = (None, None),
                irc_door_settings: tuple[str, bool] = (IRC_SERVER_NAME, True)) -> None:
    loop = EventLoop()
    try:
        store, history = _open_store(loop, config, db_path)
    except BaseException:
        loop.close()
        raise
    try:
        server = ChatServer(loop, store, config)
        try:
            addresses = server.start()
            if web_port is not None:
                _open_web_door(server, web_port, web_origins)
            _open_irc_doors(server, *irc_ports, *irc_door_settings)
        except OSError as exc:
            raise ConfigError(str(exc.strerror or exc)) from None
        shown = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses)
        scheme = "TLS" if config.ssl_context else "TCP"
        log.info("chattycat %s listening on %s (%s); history in %s", __version__, shown, scheme,
                 history)
        server.on_stopped = loop.stop
        _tune_collector()
        _handle_server_signals(loop, server)
        loop.run_forever()
        log.info("stopped")
    finally:
        store.close()
        loop.close()


# Full collections (the oldest generation) after this many of the middle one,
# instead of Python's 10: see _tune_collector.
FULL_COLLECTION_EVERY = 1000


def _tune_collector() -> None:
    """Keep the cycle collector's full passes out of a busy server's way.

    A full pass walks every tracked object and stops the loop while it does
    (tens of milliseconds under load: the tail of the latency benchmark). The
    server makes almost no cyclic garbage in its steady state (messages,
    frames and effects are freed by reference counting), so: what is loaded
    by now lives as long as the process and is frozen out of every pass, and
    full passes come a hundred times less often. The young generations are
    collected as usual.
    """
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def _open_web_door(server: ChatServer, port: int, origins: tuple[str, ...]) -> None:
    """Serve the web client next to the TCP door; the log line says where to point a browser."""
    config = server.config
    files = read_site_files(importlib.resources.files("chattycat.ui").joinpath("web"))
    make_peer = web_door(server, files, tls=config.ssl_context is not None,
                         allowed_origins=origins)
    addresses = server.open_door(make_peer, config.host, port, ssl_context=config.ssl_context)
    scheme = "https" if config.ssl_context else "http"
    urls = ", ".join(f"{scheme}://[{h}]:{p}/" if ":" in h else f"{scheme}://{h}:{p}/"
                     for h, p in addresses)
    log.info("web client on %s", urls)


def _open_irc_doors(server: ChatServer, port: int | None, tls_port: int | None,
                    name: str, join_default_room: bool) -> None:
    """IRC clients on their own port(s); TLS uses the server's certificate."""
    config = server.config
    door = irc_door(server, name or IRC_SERVER_NAME, join_default_room)
    for door_port, context, scheme in ((port, None, "IRC"),
                                       (tls_port, config.ssl_context, "IRC over TLS")):
        if door_port is not None:
            addresses = open_irc_door(server, config.host, door_port, context, door)
            shown = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses)
            log.info("%s on %s", scheme, shown)


# A closed terminal (SIGHUP) stops the server as gracefully as Ctrl-C or a
# service manager's SIGTERM: clients get the shutdown notice, history is kept.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
# Signals the server has no use for whose default action would kill it without
# the shutdown notice: they are logged and otherwise ignored.
IGNORED_SIGNALS = ("SIGUSR1", "SIGUSR2")


def _handle_server_signals(loop: EventLoop, server: ChatServer) -> None:
    for name in STOP_SIGNALS:
        if hasattr(signal, name):  # Windows has no SIGHUP
            loop.add_signal_handler(getattr(signal, name), _stopping(server, name))
    for name in IGNORED_SIGNALS:
        if hasattr(signal, name):
            loop.add_signal_handler(getattr(signal, name), _ignoring(name))


def _stopping(server: ChatServer, name: str) -> Callable[[], None]:
    def stop() -> None:
        log.info("%s: stopping", name)
        server.stop()

    return stop


def _ignoring(name: str) -> Callable[[], None]:
    def ignore() -> None:
        log.info("%s: ignored (the server does not use it)", name)

    return ignore


def _connection_limit(requested: int | None) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; connections get what it allows."""
    try:
        import resource
    except ImportError:  # Windows has no rlimits; select() there caps at 512 sockets
        return requested or 500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the file-descriptor limit from %d: %s", soft, exc)
    allowed = max(1, soft - RESERVED_FDS)
    if requested is not None and requested > allowed:
        log.warning("--max-connections %d exceeds what %d file descriptors allow; using %d",
                    requested, soft, allowed)
        return allowed
    return requested or allowed


def _server_tls(cert: str, key: str | None) -> SSLContext:
    return server_context(cert, key)


# -- join: the client -------------------------------------------------------------


def _user_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not is_valid_name(value):
        raise click.BadParameter(NAME_RULE)
    return value


def _room_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
                ) -> tuple[str, ...]:
    for room in value:
        _room_name(ctx, param, room)
    return value


def _server_addresses(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
                      ) -> tuple[tuple[str, int], ...]:
    addresses = []
    for text in value:
        try:
            address = parse_address(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        addresses.append((address.host, address.port))
    return tuple(addresses)


def _client_addresses(servers: tuple[tuple[str, int], ...], host: str, port: int
                      ) -> tuple[tuple[str, int], ...]:
    """Where the client connects: the --server list, or else --host and --port."""
    if not servers:
        return ((host, port),)
    ctx = click.get_current_context()
    for name in ("host", "port"):
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"--server replaces --{name}: give one or the other")
    return servers


def client_options(command: _F) -> _F:
    """The options ``join`` and ``gui`` share: who you are and where the server is."""
    decorators = [
        option("--name", required=True, callback=_user_name, help="Your user name."),
        option("--host", default="127.0.0.1", show_default=True, help="Server address."),
        option("--port", type=click.IntRange(1, 65535), default=9999, show_default=True,
               help="Server TCP port."),
        option("--server", "servers", multiple=True, metavar="HOST:PORT",
               callback=_server_addresses,
               help="A server of the chat service, instead of --host/--port (repeatable: "
               "tried in order; when one fails or is lost the next takes over and the "
               "session resumes there). IPv6 as [::1]:9999; the port defaults to 9999."),
        option("--room", "rooms", multiple=True, callback=_room_names,
               help="Room to join (repeatable; the first is the current room). "
                    "[default: the server's default room]"),
        option("--tls", is_flag=True, help="Connect with TLS (verified against the system CAs)."),
        option("--cafile", type=click.Path(dir_okay=False), default=None,
               help="PEM file of CA certificates to trust (implies --tls)."),
        option("--insecure", is_flag=True,
               help="TLS without certificate verification (implies --tls; testing only)."),
        option("--log-level", type=LOG_LEVELS, default="warning", show_default=True,
               help="Log verbosity (on stderr)."),
        option("--password-file", type=click.Path(dir_okay=False), default=None,
               help="Your account's password: this file's first line "
               "(or set CHATTYCAT_PASSWORD)."),
        option("--server-password-file", type=click.Path(dir_okay=False), default=None,
               help="The server's shared password: this file's first line "
               "(or set CHATTYCAT_SERVER_PASSWORD)."),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


@main.command()
@client_options
@option("--no-color", is_flag=True, help="No colors in the interactive client.")
def join(
    name: str, host: str, port: int, rooms: tuple[str, ...], tls: bool, cafile: str | None,
    insecure: bool, no_color: bool, log_level: str, password_file: str | None = None,
    server_password_file: str | None = None, servers: tuple[tuple[str, int], ...] = (),
) -> None:
    """Chat: interactive on a terminal; otherwise each stdin line is a message or /command.

    Without a terminal every event is printed as one line on stdout; at end
    of input the client waits for its messages to be acknowledged and quits.
    """
    setup_logging(log_level)
    addresses = _client_addresses(servers, host, port)
    loop = EventLoop()
    try:
        context = _client_tls(cafile, insecure) if tls or cafile or insecure else None
        password, server_password = _credentials(password_file, server_password_file)
        client = Client(loop, name, addresses=addresses, rooms=rooms, ssl_context=context,
                        password=password, server_password=server_password)
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        if interactive:
            code = _run_interactive(client, loop, no_color=no_color)
        else:
            _unbuffer_stdout()
            with _quit_on_signals(loop, client):
                code = run_plain(client, loop, out=sys.stdout)
    except ChattyCatError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        loop.close()
    sys.exit(code)


@main.command()
@client_options
def gui(
    name: str, host: str, port: int, rooms: tuple[str, ...], tls: bool, cafile: str | None,
    insecure: bool, log_level: str, password_file: str | None = None,
    server_password_file: str | None = None, servers: tuple[tuple[str, int], ...] = (),
) -> None:
    """Chat in a desktop window (Tkinter), on the same client as join."""
    setup_logging(log_level)
    addresses = _client_addresses(servers, host, port)
    try:
        from chattycat.ui.gui import app as desktop  # its ImportError explains a missing tkinter
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    from tkinter import TclError  # there for sure: the GUI module imported tkinter
    try:
        context = _client_tls(cafile, insecure) if tls or cafile or insecure else None
        password, server_password = _credentials(password_file, server_password_file)
        code = desktop.run_gui(name=name, addresses=addresses, rooms=rooms,
                               ssl_context=context, server_hostname=None,
                               password=password, server_password=server_password)
    except ChattyCatError as exc:
        raise click.ClickException(str(exc)) from None
    except TclError as exc:
        raise click.ClickException(f"cannot open a window: {exc}") from None
    sys.exit(code)


def _credentials(password_file: str | None, server_password_file: str | None
                 ) -> tuple[str | None, str | None]:
    """The account password and the server password, from their files or variables."""
    return (read_secret(password_file, "CHATTYCAT_PASSWORD"),
            read_secret(server_password_file, "CHATTYCAT_SERVER_PASSWORD"))


def _run_interactive(client: Client, loop: EventLoop, *, no_color: bool) -> int:
    try:
        from chattycat.ui.term.app import run_interactive
    except ImportError:  # a build without the interactive UI: scripted mode still works
        return run_plain(client, loop, out=sys.stdout)
    return run_interactive(client, loop, no_color=no_color)


def _unbuffer_stdout() -> None:
    # One event per line, each flushed; text from the network that the locale
    # cannot encode is escaped rather than fatal.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace", line_buffering=True)


@contextlib.contextmanager
def _quit_on_signals(loop: EventLoop, client: Client) -> Iterator[None]:
    """SIGINT/SIGTERM end a scripted session with a quit instead of a traceback."""
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, client.quit)
            installed.append(sig)
        except (ValueError, OSError, RuntimeError):
            pass  # not the main thread (e.g. under a test runner)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _client_tls(cafile: str | None, insecure: bool) -> SSLContext:
    if insecure:
        click.echo("warning: --insecure: the server's certificate is not verified", err=True)
    return client_context(cafile, verify=not insecure)


main.add_command(accounts)
