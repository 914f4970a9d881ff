"""Shared fixtures: a ChattyCat server as a subprocess or on a loop thread, and clients.

``server_process`` starts ``chattycat serve`` (``python -m chattycat``) on an
OS-chosen port and reads the port from its start-up log line; ``chat_server``
runs :class:`~chattycat.server.app.ChatServer` on an :class:`~chattycat.net.loop.EventLoop`
in a background thread of the test process. Both stop what they started at
teardown, by PID or through the loop, with bounded waits.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from chattycat.net.loop import EventLoop
from chattycat.server.app import ChatServer, Clock, ServerConfig
from chattycat.server.effects import Now
from chattycat.server.sqlite_store import SQLiteStore
from chattycat.server.state import RoomsConfig
from tests.redis_server import REDIS_MISSING, RedisServer, redis_binary
from tests.wire import WireClient

LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0

# Settings for in-process servers: no flood control, no heartbeats (so that an
# idle test client sees no unexpected ping); tests of those rules set them.
QUIET_ROOMS = RoomsConfig(flood_rate_per_s=0, heartbeat_s=0, handshake_timeout_s=5.0)


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0, poll_s: float = 0.01) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; returns whether it held."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


# -- subprocess server ---------------------------------------------------------


class FakeClock:
    """Both server clocks, moved only by the test (from the test's thread)."""

    def __init__(self, mono: float = 1_000.0, wall: float = 1_700_000_000.0) -> None:
        self.mono, self.wall = mono, wall

    def now(self) -> Now:
        return Now(self.mono, self.wall)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


class _LineCollector:
    """Reads a pipe on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.closed = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()
        stream.close()

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            checked = 0
            while True:
                for line in self.lines[checked:]:
                    if match := pattern.search(line):
                        return match
                checked = len(self.lines)
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


@dataclass
class ServerProcess:
    """A ``chattycat serve`` child process."""

    proc: subprocess.Popen[str]
    args: list[str]
    db: Path
    stderr: _LineCollector
    stdout: _LineCollector
    port: int = 0
    clients: list[WireClient] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return "\n".join(self.stderr.lines)

    def wait_for_log(self, pattern: str, timeout_s: float = 5.0) -> re.Match[str] | None:
        return self.stderr.wait_for(re.compile(pattern), timeout_s)

    def connect(self, **kwargs: Any) -> WireClient:
        client = WireClient("127.0.0.1", self.port, **kwargs)
        self.clients.append(client)
        return client

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Wait for the process to exit; returns its exit status, streams fully read."""
        code = self.proc.wait(timeout_s)
        self.stderr.join(timeout_s)
        self.stdout.join(timeout_s)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Signal the process and wait; SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        return self.wait(timeout_s)

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()


StartServer = Callable[..., ServerProcess]


def chattycat_command(*args: str) -> list[str]:
    """The command line that runs ``chattycat`` with this interpreter."""
    return [sys.executable, "-m", "chattycat", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: no inherited CHATTYCAT_* settings, plain log lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTYCAT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[StartServer]:
    """Factory: ``start(*extra_args, db=None, env=None, wait_ready=True) -> ServerProcess``.

    Runs ``chattycat serve --host 127.0.0.1 --port 0 --db <file in tmp_path>``
    plus ``extra_args`` (a later option overrides an earlier one). With
    ``wait_ready`` it waits for the "listening on" log line and sets ``port``.
    """
    started: list[ServerProcess] = []

    def start(
        *extra: str, db: Path | str | None = None, env: dict[str, str] | None = None,
        wait_ready: bool = True, base_args: bool = True,
    ) -> ServerProcess:
        db_path = Path(db) if db is not None else tmp_path / "history.sqlite3"
        serve = ["serve", "--host", "127.0.0.1", "--port", "0", "--db", str(db_path)]
        args = chattycat_command(*(serve if base_args else ["serve"]), *extra)
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=child_env(env), cwd=tmp_path,
        )
        server = ServerProcess(proc, args, db_path, _LineCollector(proc.stderr),
                               _LineCollector(proc.stdout))
        started.append(server)
        if wait_ready:
            match = server.stderr.wait_for(LISTENING_RE, START_TIMEOUT_S)
            if match is None:
                server.stop(signal.SIGKILL)
                pytest.fail(f"the server did not start:\n{server.log}")
            server.port = int(match.group(1))
        return server

    yield start
    for server in started:
        server.close_clients()
        if server.proc.poll() is None:
            server.stop(signal.SIGTERM)


# -- in-process server -----------------------------------------------------------


@dataclass
class InProcessServer:
    """A ChatServer running on its own EventLoop in a background thread."""

    host: str
    port: int
    loop: EventLoop
    server: ChatServer
    thread: threading.Thread
    db: str
    clients: list[WireClient] = field(default_factory=list)

    def connect(self, **kwargs: Any) -> WireClient:
        client = WireClient(self.host, self.port, **kwargs)
        self.clients.append(client)
        return client

    def user(self, name: str, **hello: Any) -> WireClient:
        """A client signed in as ``name`` (initial join frames read)."""
        client = self.connect()
        client.hello(name, **hello)
        return client

    def call(self, function: Callable[[], Any], timeout_s: float = 5.0) -> Any:
        """Run ``function`` on the loop thread and return its result."""
        results: queue.Queue[tuple[bool, Any]] = queue.Queue()

        def run() -> None:
            try:
                results.put((True, function()))
            except BaseException as exc:  # handed back to the test thread
                results.put((False, exc))

        self.loop.call_soon_threadsafe(run)
        ok, value = results.get(timeout=timeout_s)
        if not ok:
            raise value
        return value

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Graceful stop (as on SIGTERM); waits for the loop thread to finish."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.stop)
            self.thread.join(timeout_s)
            assert not self.thread.is_alive(), "the server did not stop in time"


StartInProcess = Callable[..., InProcessServer]


def server_config(config: dict[str, Any]) -> ServerConfig:
    """A ServerConfig for tests: ``config`` holds RoomsConfig and ServerConfig fields
    by name, over the quiet room defaults, on an OS-chosen loopback port."""
    room_fields = set(RoomsConfig.__dataclass_fields__)
    rooms = replace(QUIET_ROOMS, **{k: v for k, v in config.items() if k in room_fields})
    return ServerConfig(host="127.0.0.1", port=0, rooms=rooms,
                        **{k: v for k, v in config.items() if k not in room_fields})


def start_on_thread(
    make_store: Callable[[EventLoop], Any], config: ServerConfig, clock: Clock | None,
    name: str,
) -> tuple[EventLoop, ChatServer, threading.Thread, tuple[str, int]]:
    """A ChatServer with the store ``make_store`` builds, on its own loop thread.

    Returns once it listens (or raises what stopped it); the thread closes the
    store and the loop when the server stops.
    """
    ready: queue.Queue[tuple[Any, ...]] = queue.Queue()

    def serve() -> None:
        loop = EventLoop()
        store = None
        try:
            store = make_store(loop)
            server = ChatServer(loop, store, config, clock=clock)
            server.on_stopped = loop.stop
            addresses = server.start()
        except BaseException as exc:
            ready.put((exc,))
            if store is not None:
                store.close()
            loop.close()
            return
        ready.put((loop, server, addresses))
        try:
            loop.run_forever()
        finally:
            store.close()
            loop.close()

    thread = threading.Thread(target=serve, name=name, daemon=True)
    thread.start()
    outcome = ready.get(timeout=START_TIMEOUT_S)
    if len(outcome) == 1:
        raise outcome[0]
    loop, server, addresses = outcome
    host, port = addresses[0][:2]
    return loop, server, thread, (host, port)


@pytest.fixture
def chat_server(tmp_path: Path) -> Iterator[StartInProcess]:
    """Factory: ``start(db=None, prepare=None, store_factory=SQLiteStore, clock=None, **config)``.

    ``config`` holds ServerConfig fields, and RoomsConfig fields (which
    override ``QUIET_ROOMS``). The store is an SQLiteStore on ``db`` (default:
    a file in tmp_path), opened on the loop thread; ``prepare(store)`` runs
    there before the server starts, e.g. to insert old messages.
    ``store_factory(path)`` makes the store (a subclass can inject failures);
    ``clock`` (a :class:`FakeClock`, say) replaces the system clocks.
    """
    started: list[InProcessServer] = []

    def start(
        db: Path | str | None = None, prepare: Callable[[SQLiteStore], None] | None = None,
        store_factory: Callable[[str], SQLiteStore] = SQLiteStore, clock: Clock | None = None,
        **config: Any,
    ) -> InProcessServer:
        default_db = tmp_path / ("h.db" if not started else f"h{len(started)}.db")
        db_path = str(db) if db is not None else str(default_db)

        def make_store(_loop: EventLoop) -> SQLiteStore:
            store = store_factory(db_path)
            if prepare is not None:
                try:
                    prepare(store)
                    store.commit()
                except BaseException:
                    store.close()
                    raise
            return store

        loop, server, thread, (host, port) = start_on_thread(
            make_store, server_config(config), clock, "chattycat-server")
        running = InProcessServer(host, port, loop, server, thread, db_path)
        started.append(running)
        return running

    yield start
    for running in started:
        for client in running.clients:
            client.close()
        running.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started redis-server (AOF on, everysec) on a free loopback port; skips without it."""
    if redis_binary() is None:
        pytest.skip(REDIS_MISSING)
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
