"""A real Redis for tests: Debian's ``redis-server`` on a free loopback port.

Each :class:`RedisServer` owns one temporary directory (config, AOF, log) and
one child process, which it stops by PID. ``restart()`` starts the same
server again on the same port and directory, so it reloads its AOF: that is
how the tests crash Redis (``kill()``) and bring it back with what it had
made durable.

Use the ``redis_server`` fixture (tests/conftest.py), or ``needs_redis`` to
skip a test where the binary cannot be had.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

import pytest
import redis

__all__ = ["REDIS_MISSING", "RedisServer", "needs_redis", "redis_binary"]

REDIS_MISSING = "redis-server is not installed (Debian package redis-server)"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 5

Fsync = Literal["everysec", "always", "no"]


def redis_binary() -> str | None:
    """The path of ``redis-server``, or None where it is not installed."""
    return shutil.which("redis-server")


needs_redis = pytest.mark.skipif(redis_binary() is None, reason=REDIS_MISSING)


def _free_port() -> int:
    # The OS picks a free port; there is a short race until redis binds it,
    # which start() absorbs by retrying with another port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` child process with AOF on, bound to 127.0.0.1."""

    def __init__(
        self,
        directory: Path,
        *,
        appendfsync: Fsync = "everysec",
        appendonly: bool = True,
        binary: str | None = None,
        password: str | None = None,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        found = binary or redis_binary()
        if found is None:
            raise RuntimeError(REDIS_MISSING)
        self.binary = found
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.appendfsync = appendfsync
        self.appendonly = appendonly
        self.password = password
        self.extra_config = dict(extra_config or {})
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the redis server has not been started")
        return self._port

    @property
    def url(self) -> str:
        login = f":{self.password}@" if self.password else ""
        return f"redis://{login}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the redis server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def logfile(self) -> Path:
        return self.directory / "redis.log"

    def client(self, **kwargs: object) -> redis.Redis:
        """A blocking redis-py client for assertions (the caller closes it)."""
        options: dict[str, object] = {
            "socket_timeout": 5.0, "socket_connect_timeout": 5.0, "password": self.password,
        }
        options.update(kwargs)
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]

    # -- life cycle --------------------------------------------------------

    def start(self) -> RedisServer:
        """Start on a free port (a new one if the first is taken); wait for PING."""
        if self.running:
            return self
        if self._port is not None:
            self._launch(self._port)
            return self
        last: Exception | None = None
        for _ in range(PORT_ATTEMPTS):
            try:
                self._launch(_free_port())
                return self
            except RuntimeError as exc:
                last = exc
                self._port = None
        raise RuntimeError(f"redis-server would not start: {last}")

    def restart(self) -> RedisServer:
        """Stop if running, then start again on the same port and directory (AOF reload)."""
        if self.running:
            self.stop()
        if self._port is None:
            return self.start()
        self._launch(self._port)
        return self

    def stop(self) -> None:
        """SIGTERM by PID, a bounded wait, then SIGKILL."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def kill(self) -> None:
        """SIGKILL by PID (a crash: nothing is flushed), then reap it."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung Redis)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self._signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signum)

    def _write_config(self, port: int) -> Path:
        settings = {
            "port": str(port),
            "bind": "127.0.0.1",
            "daemonize": "no",
            "dir": str(self.directory),
            "logfile": str(self.logfile),
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": self.appendfsync,
            "save": '""',
            "databases": "16",
        }
        if self.password:
            settings["requirepass"] = self.password
        settings.update(self.extra_config)
        path = self.directory / "redis.conf"
        path.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
        return path

    def _launch(self, port: int) -> None:
        config = self._write_config(port)
        process = subprocess.Popen(
            [self.binary, str(config)],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._process = process
        self._port = port
        try:
            self._wait_ready(process, port)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        probe = redis.Redis(
            host="127.0.0.1", port=port, password=self.password,
            socket_timeout=1.0, socket_connect_timeout=1.0,
        )
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"exited with {process.returncode}: {self._log_tail()}")
                try:
                    if probe.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                time.sleep(0.02)
        finally:
            probe.close()
        raise RuntimeError(f"did not answer PING within {START_TIMEOUT_S}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty log)"
