"""Scale-out on Redis: the cluster's servers and the loads of scenarios R, S and T.

R  A's fan-out (100 clients in one room, 10 senders, window 8) against
   ``chattycat`` (``:memory:``, for comparison), one ``--redis`` node, and
   1, 2 and 4 processes of ``--redis`` nodes sharing the clients
S  messages stored per second: 10 clients in a room, every one sending with
   16 messages in flight, against SQLite and Redis with ``--redis-durability
   everysec`` and ``always``
T  the cost of the Redis round trip: ``:memory:`` and one ``--redis`` node at
   the same paced rate (half the slower one's rate in R)

Each cluster server gets a ``redis-server`` of its own, started here in a
temporary directory with its append-only file on (``appendfsync everysec``,
or ``always`` for the ``always`` kind) and stopped by its PID. A single node
is pinned to the server core and its Redis to the other core (with the load
generator); the multi-process kinds are not pinned, so that their processes
can use both cores of a 2-core machine, Redis and the load generator too.

``--workers N`` puts N processes behind one port (``SO_REUSEPORT``: the kernel
spreads the connections); when it does not start, N separate nodes on N ports
stand in for it, the load generator spreading its clients over them evenly,
and the run's figures say so (``mode``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from servers import (
    MACHINE_CORES,
    ServerProcess,
    chattycat_limits_off,
    child_setup,
    free_port,
    stop_process,
)

REDIS_START_TIMEOUT_S = 10.0
REDIS_PORT_ATTEMPTS = 3
WORKERS_START_TIMEOUT_S = 30.0
# The scenarios of this module, in running order: T's rate comes from R.
CLUSTER_RUN_ORDER = ("R", "T", "S")
CLUSTER_TITLES = {
    "R": "A's fan-out over Redis, by processes",
    "S": "messages stored per second (10 senders in a room of 10, window 16)",
    "T": "the Redis round trip's cost, both servers at the same rate",
}
CLUSTER_KINDS_FOR = {
    "R": ("chattycat", "chattycat-redis", "chattycat-redis-w1", "chattycat-redis-w2",
          "chattycat-redis-w4"),
    "S": ("chattycat-sqlite", "chattycat-redis", "chattycat-redis-always"),
    "T": ("chattycat", "chattycat-redis"),
}
WORKER_LINE_RE = re.compile(r"^\[worker (\d+)\] .*listening on 127\.0\.0\.1:(\d+)")
WORKER_STARTED_RE = re.compile(r"worker (\d+) started \(pid (\d+)\)")
SUPERVISOR_LISTENING_RE = re.compile(r"^\S+ \S+ INFO .*listening on 127\.0\.0\.1:(\d+)")
WORKER_FAILED = "cannot listen"
# A node logs that it listens before its Redis connection is up, and until then
# it answers a hello with "internal": a run waits for the command connection.
CONNECTED_RE = re.compile(r"(?:^\[worker (\d+)\] )?.*connected to Redis at \S+ as (\S+)\s*$")


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def filesystem_of(path: str) -> str:
    """The file system type under ``path`` (from /proc/mounts), or "unknown"."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3 or len(parts[1]) <= len(best):
                    continue
                if path == parts[1] or path.startswith(parts[1].rstrip("/") + "/"):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


class RedisProcess:
    """``redis-server`` on a free loopback port, AOF on, in its own directory."""

    def __init__(self, directory: str, fsync: str, cores: set[int]) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.directory, self.fsync = directory, fsync
        last = ""
        for _ in range(REDIS_PORT_ATTEMPTS):  # the free port may be taken before it binds
            self.port = free_port()
            conf = os.path.join(directory, "redis.conf")
            Path(conf).write_text(
                f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {directory}\n"
                f"logfile {directory}/redis.log\nappendonly yes\nappendfsync {fsync}\n"
                'save ""\n')
            self.proc = subprocess.Popen([binary, conf], cwd=directory,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=child_setup(cores))
            self.pid = self.proc.pid
            if self._wait_ready():
                return
            last = self._log_tail()
            self.stop()
        raise RuntimeError(f"redis-server did not start: {last}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                    sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _log_tail(self) -> str:
        try:
            return " | ".join(Path(self.directory, "redis.log").read_text().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it does not exit in time."""
        stop_process(self.proc)


def node_command(redis: RedisProcess, durability: str, workers: int = 1) -> list[str]:
    """``chattycat serve --redis`` on a port of its own, the benchmark's limits off."""
    return [sys.executable, "-m", "chattycat", "serve", "--host", "127.0.0.1", "--port", "0",
            "--redis", redis.url, "--redis-durability", durability, *chattycat_limits_off(),
            "--log-level", "info", *(["--workers", str(workers)] if workers > 1 else [])]


class NodeProcess(ServerProcess):
    """One ``serve --redis`` node: ready once it listens and its Redis connection is up."""

    def __init__(self, kind: str, cmd: list[str], cores: set[int]) -> None:
        self.listens = self.connected = False
        super().__init__(kind, cmd, cores)

    def _is_ready(self, line: str) -> bool:
        self.listens = super()._is_ready(line) or self.listens
        up = CONNECTED_RE.search(line)
        self.connected = self.connected or bool(up and not up.group(2).endswith("-wake"))
        return self.listens and self.connected


class WorkersProcess(ServerProcess):
    """``serve --workers N``: ready once every worker listens; fails if any cannot."""

    def __init__(self, kind: str, cmd: list[str], count: int, cores: set[int]) -> None:
        self.count = count
        self.listening: set[int] = set()
        self.connected: set[int] = set()
        self.worker_pids: dict[int, int] = {}
        self.failed: str | None = None
        self._lock = threading.Lock()
        super().__init__(kind, cmd, cores)
        if self.failed is not None or len(self.listening & self.connected) < self.count:
            self.stop()
            raise RuntimeError(f"--workers {count} did not start: "
                               f"{self.failed or 'not every worker listened in time'}")

    def _is_ready(self, line: str) -> bool:
        with self._lock:
            if started := WORKER_STARTED_RE.search(line):
                self.worker_pids[int(started.group(1))] = int(started.group(2))
            elif worker := WORKER_LINE_RE.search(line):
                self.listening.add(int(worker.group(1)))
            elif (up := CONNECTED_RE.search(line)) and up.group(1):
                if not up.group(2).endswith("-wake"):
                    self.connected.add(int(up.group(1)))
            elif WORKER_FAILED in line:
                self.failed = line.strip()
                return True  # wake the waiter: it stops the supervisor
            elif (own := SUPERVISOR_LISTENING_RE.search(line)) and self._port is None:
                self._port = int(own.group(1))
            return len(self.listening & self.connected) >= self.count

    def cpu_pids(self) -> list[int]:
        with self._lock:
            return [self.pid, *self.worker_pids.values()]


class ClusterServer:
    """A Redis and the ``chattycat serve --redis`` processes of one cluster kind."""

    def __init__(self, kind: str, core: int | None, tmp: str) -> None:
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix="redis-", dir=tmp)
        durability = "always" if kind.endswith("always") else "everysec"
        match = re.search(r"-w(\d+)$", kind)
        self.processes = int(match.group(1)) if match else 1
        everywhere = set(MACHINE_CORES)
        node_cores, redis_cores = everywhere, everywhere
        if match is None and core is not None and len(MACHINE_CORES) >= 2:
            node_cores, redis_cores = {core}, everywhere - {core}
        self.pinned = node_cores != everywhere
        self.nodes: list[ServerProcess] = []
        self.redis: RedisProcess | None = None
        self.aof_fs = filesystem_of(self.tmp)
        self.note = ""
        try:
            self.redis = RedisProcess(self.tmp, durability, redis_cores)
            self.mode = self._start(self.redis, kind, durability, node_cores)
        except BaseException:
            self.stop()
            raise

    def _start(self, redis: RedisProcess, kind: str, durability: str, cores: set[int]) -> str:
        if self.processes == 1:
            self.nodes.append(NodeProcess(kind, node_command(redis, durability), cores))
            return "node"
        try:
            self.nodes.append(WorkersProcess(
                kind, node_command(redis, durability, self.processes), self.processes, cores))
            return "workers"
        except RuntimeError as exc:
            self.note = (f"{str(exc).splitlines()[0]}: measured {self.processes} separate "
                         "--redis nodes on as many ports instead")
            print(f"  {self.note}", file=sys.stderr, flush=True)
        for _ in range(self.processes):
            self.nodes.append(NodeProcess(kind, node_command(redis, durability), cores))
        return "nodes"

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def cpu_pids(self) -> list[int]:
        return [pid for node in self.nodes for pid in node.cpu_pids()]

    def aux_pids(self) -> list[int]:
        return [] if self.redis is None else [self.redis.pid]

    def logged_errors(self) -> list[str]:
        return [line for node in self.nodes for line in node.logged_errors()]

    def describe(self) -> dict[str, Any]:
        """How the cluster was set up, and how the clients connected now are spread."""
        counts = clients_of(self.cpu_pids(), set(self.ports))
        return {"mode": self.mode, "processes": self.processes, "pinned": self.pinned,
                "redis_fsync": self.redis.fsync if self.redis else None, "aof_fs": self.aof_fs,
                "clients_per_process": sorted((n for n in counts if n), reverse=True),
                "setup_note": self.note}

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.redis is not None:
            self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def clients_of(pids: list[int], ports: set[int]) -> list[int]:
    """Per process: its established TCP connections on one of ``ports`` (its clients)."""
    accepted = set()
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                # local address (hex ip:port), state 01 = ESTABLISHED, inode
                if int(fields[1].split(":")[1], 16) in ports and fields[3] == "01":
                    accepted.add(fields[9])
    except (OSError, StopIteration, IndexError, ValueError):
        return []
    counts = []
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            links = []
        counts.append(sum(link[8:-1] in accepted for link in links if link.startswith("socket:[")))
    return counts


def start_cluster(kind: str, core: int | None, tmp: str) -> ClusterServer:
    return ClusterServer(kind, core, tmp)
