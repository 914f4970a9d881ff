"""The servers under test, each a child process on 127.0.0.1, stopped by its PID.

- ``chattycat serve`` with ``--db :memory:`` or a SQLite file (``--flood-rate 0``);
- ``refserver.py``, the asyncio-streams reference speaking the same protocol;
- ngIRCd, a C IRC server, with a generated configuration in a temporary
  directory, run in the foreground (``ngircd -n -f CONF``);
- for the scale-out scenarios, ``chattycat serve --redis`` nodes against a
  ``redis-server`` of their own (see ``cluster.py``).

Every child gets the hard ``RLIMIT_NOFILE`` as its soft limit and is pinned to
the server core, so that a figure is what one core of server does.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
# The cores this benchmark may use, taken before run.py pins itself to one:
# the processes of a multi-process server are spread over all of them.
MACHINE_CORES = frozenset(os.sched_getaffinity(0))
REPO = HERE.parent
START_TIMEOUT_S = 20.0
# ngIRCd takes minutes to say goodbye to 19,500 connections; nothing needs that.
STOP_TIMEOUT_S = 5.0
LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
# A ChattyCat log line at level ERROR or above ("<date> <time> ERROR <logger>: ...").
ERROR_LINE_RE = re.compile(r"\S+ \S+ (ERROR|CRITICAL) ")
NGIRCD_READY_RE = re.compile(r'Server "[^"]*" \(on "[^"]*"\) ready')
# ngIRCd listens with a backlog of 10: more handshakes in flight make the kernel
# drop SYNs and the client retry a second later, which would time TCP, not ngIRCd.
CONNECT_CONCURRENCY = {"chattycat": 200, "asyncio": 200, "ngircd": 10}

SERVER_KINDS = ("chattycat", "chattycat-sqlite", "asyncio", "ngircd")
# Nodes of a cluster on Redis (scenarios R-T only): one node, one node with
# Redis fsyncing every write, and --workers N processes behind one port.
CLUSTER_KINDS = ("chattycat-redis", "chattycat-redis-always", "chattycat-redis-w1",
                 "chattycat-redis-w2", "chattycat-redis-w4")
ALL_SERVER_KINDS = SERVER_KINDS + CLUSTER_KINDS
TITLES = {"chattycat": "chattycat :memory:", "chattycat-sqlite": "chattycat SQLite",
          "asyncio": "asyncio reference", "ngircd": "ngIRCd",
          "chattycat-redis": "chattycat --redis (1 node)",
          "chattycat-redis-always": "chattycat --redis, durability always",
          "chattycat-redis-w1": "chattycat --redis, 1 process",
          "chattycat-redis-w2": "chattycat --redis --workers 2",
          "chattycat-redis-w4": "chattycat --redis --workers 4"}


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def pick_cores() -> tuple[int | None, int | None]:
    """(server core, load-generator core), or (None, None) with fewer than two cores."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0], cores[1]) if len(cores) >= 2 else (None, None)


def child_setup(core: int | set[int] | None) -> Callable[[], None]:
    """A ``preexec_fn``: every descriptor the limit allows, and one core (or these cores)."""

    def setup() -> None:
        raise_nofile()
        if core is not None:
            os.sched_setaffinity(0, {core} if isinstance(core, int) else core)

    return setup


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def free_port() -> int:
    """A port nothing listens on now (for servers that cannot be told to pick one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway self-signed certificate: combined PEM, and cert and key apart."""

    combined: str
    cert: str
    key: str


def make_cert(directory: str) -> TlsFiles | None:
    """Issue a certificate for 127.0.0.1 with ``trustme`` (a test extra) or ``openssl``."""
    files = TlsFiles(*(os.path.join(directory, name)
                       for name in ("combined.pem", "cert.pem", "key.pem")))
    try:
        import trustme

        cert = trustme.CA().issue_cert("127.0.0.1", "localhost")
        cert.private_key_and_cert_chain_pem.write_to_path(files.combined)
        cert.private_key_pem.write_to_path(files.key)
        Path(files.cert).write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    except ImportError:
        if shutil.which("openssl") is None:
            return None
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", files.key, "-out", files.cert],
                       check=True, capture_output=True, timeout=60)
        Path(files.combined).write_bytes(Path(files.key).read_bytes()
                                         + Path(files.cert).read_bytes())
    # ngIRCd drops to an unprivileged user; let it read a key that guards nothing.
    os.chmod(directory, 0o755)
    for path in (files.combined, files.cert, files.key):
        os.chmod(path, 0o644)
    return files


class Server(Protocol):
    """What a run needs of a server under test: where it listens, its processes, stop."""

    @property
    def pid(self) -> int: ...

    @property
    def port(self) -> int: ...

    @property
    def ports(self) -> list[int]: ...

    def cpu_pids(self) -> list[int]: ...

    def aux_pids(self) -> list[int]: ...

    def describe(self) -> dict[str, Any]: ...

    def logged_errors(self) -> list[str]: ...

    def stop(self) -> None: ...


class ServerProcess:
    """A server child: its output drained by a thread, its port from the log or given."""

    def __init__(self, kind: str, cmd: Sequence[str], core: int | set[int] | None, *,
                 ready_re: re.Pattern[str] = LISTENING_RE, port: int | None = None) -> None:
        self.kind = kind
        self.log: collections.deque[str] = collections.deque(maxlen=40)
        self.errors: list[str] = []  # every ERROR or CRITICAL line it logged
        self._port = port
        self._ready_re = ready_re
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            list(cmd), cwd=tempfile.gettempdir(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env(),
            preexec_fn=child_setup(core))
        self.pid = self.proc.pid
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_S) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"{kind} did not start:\n" + "".join(self.log))

    @property
    def port(self) -> int:
        assert self._port is not None
        return self._port

    @property
    def ports(self) -> list[int]:
        """Every port the load is spread over (a cluster has one per node)."""
        return [self.port]

    def cpu_pids(self) -> list[int]:
        """The processes whose CPU time is the server's."""
        return [self.pid]

    def aux_pids(self) -> list[int]:
        """Processes the server depends on, whose CPU is reported apart (a cluster's Redis)."""
        return []

    def describe(self) -> dict[str, Any]:
        """How this server was set up, for its rows (see ``cluster.py``); nothing here."""
        return {}

    def logged_errors(self) -> list[str]:
        """The ERROR and CRITICAL lines it logged so far: a run must not hide one."""
        return list(self.errors)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            if ERROR_LINE_RE.match(line):
                self.errors.append(line.strip())
            if not self._ready.is_set() and self._is_ready(line):
                self._ready.set()
        self._ready.set()  # it exited: let the waiter see that

    def _is_ready(self, line: str) -> bool:
        """Whether this log line says the server is ready (and takes its port from it)."""
        match = self._ready_re.search(line)
        if match and self._port is None:
            self._port = int(match.group(1))
        return match is not None

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL by PID if it does not exit in time."""
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM ``proc`` by its PID, then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT_S)


def find_ngircd(install: bool) -> tuple[str | None, str]:
    """The ngIRCd binary (installed with apt-get when allowed), or None and why not."""
    found = shutil.which("ngircd") or next(
        (p for p in ("/usr/sbin/ngircd", "/usr/local/sbin/ngircd") if os.access(p, os.X_OK)), None)
    if found or not install:
        return found, "" if found else "ngIRCd is not installed"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, "ngIRCd is not installed (and apt-get needs root here)"
    print("ngIRCd is missing: apt-get install ngircd ...", file=sys.stderr, flush=True)
    for cmd in (["apt-get", "install", "-y", "-q", "ngircd"], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "ngircd"]):
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=600,
                                  env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})
        except (OSError, subprocess.TimeoutExpired):
            break
        if done.returncode == 0 and cmd[1] == "install":
            return find_ngircd(install=False)
    return None, "ngIRCd is not installed and apt-get could not install it"


NGIRCD_CONF = """\
[Global]
    Name = bench.chattycat.invalid
    Info = ChattyCat benchmark
    AdminInfo1 = benchmark
    AdminInfo2 = benchmark
    AdminEMail = nobody@invalid
    Listen = 127.0.0.1
    Ports = {port}
    MotdPhrase = benchmark
[Limits]
    ; unlimited connections, per address too: every client comes from loopback
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 31
    ; 0 turns off the per-command penalty times (flood protection)
    MaxPenaltyTime = 0
    PingTimeout = 600
    PongTimeout = 600
[Options]
    DNS = no
    Ident = no
    PAM = no
; the load generator makes its senders operators and sets user mode +F
; ("relaxed flood protection"): more commands per loop pass, no throttling
[Operator]
    Name = bench
    Password = bench
"""
NGIRCD_TLS = """\
[SSL]
    CertFile = {cert}
    KeyFile = {key}
    Ports = {tls_port}
"""


class NgircdServer(ServerProcess):
    """ngIRCd in the foreground with its own configuration and temporary directory."""

    def __init__(self, binary: str, core: int | None, tls: TlsFiles | None) -> None:
        self.tmp = tempfile.mkdtemp(prefix="chattycat-bench-ngircd-")
        os.chmod(self.tmp, 0o755)
        plain, tls_port = free_port(), free_port()
        conf = NGIRCD_CONF.format(port=plain)
        if tls is not None:
            conf += NGIRCD_TLS.format(cert=tls.cert, key=tls.key, tls_port=tls_port)
        path = os.path.join(self.tmp, "ngircd.conf")
        Path(path).write_text(conf)
        os.chmod(path, 0o644)
        try:
            super().__init__("ngircd", [binary, "-n", "-f", path], core,
                             ready_re=NGIRCD_READY_RE, port=tls_port if tls else plain)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


# Protections a benchmark must switch off: every client comes from 127.0.0.1 and
# sends as fast as it may. Passed only where this version of `serve` has them.
CHATTYCAT_LIMITS_OFF = (("--flood-rate", "0"), ("--max-per-ip", "0"),
                        ("--max-unwelcomed-per-ip", "0"), ("--ip-open-rate", "0"))


@functools.cache
def chattycat_limits_off() -> tuple[str, ...]:
    """The ``serve`` options (of those above) that this checkout knows, set to 0."""
    done = subprocess.run([sys.executable, "-m", "chattycat", "serve", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir(),
                          env=child_env())
    known = set(re.findall(r"--[a-z-]+", done.stdout))
    return tuple(part for option in CHATTYCAT_LIMITS_OFF if option[0] in known
                 for part in option)


def child_env() -> dict[str, str]:
    """The checkout's package, even where it is not installed; PYTHONPATH still first."""
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    return os.environ | {"PYTHONPATH": path}


def start_server(kind: str, core: int | None, tmp: str, tls: TlsFiles | None,
                 ngircd: str | None) -> Server:
    """Start one server of ``kind`` (see SERVER_KINDS), TLS when ``tls`` is given."""
    tls_args = ["--tls-cert", tls.combined] if tls else []
    if kind in ("chattycat", "chattycat-sqlite"):
        db = (":memory:" if kind == "chattycat"
              else os.path.join(tmp, f"history-{secrets.token_hex(4)}.sqlite3"))
        return ServerProcess(kind, [sys.executable, "-m", "chattycat", "serve", "--host",
                                    "127.0.0.1", "--port", "0", "--db", db,
                                    *chattycat_limits_off(), "--log-level", "info", *tls_args],
                             core)
    if kind == "asyncio":
        return ServerProcess(kind, [sys.executable, str(HERE / "refserver.py"), "--host",
                                    "127.0.0.1", "--port", "0", *tls_args], core)
    if kind == "ngircd" and ngircd is not None:
        return NgircdServer(ngircd, core, tls)
    if kind in CLUSTER_KINDS:
        from cluster import start_cluster  # it builds on this module

        return start_cluster(kind, core, tmp)
    raise ValueError(f"no server {kind!r}")


def protocol_of(kind: str) -> str:
    """The load generator's --proto for a server kind."""
    return "irc" if kind == "ngircd" else "chatty"


def concurrency_of(kind: str) -> int:
    """Handshakes the load generator keeps in flight against this server."""
    return CONNECT_CONCURRENCY["chattycat" if kind.startswith("chattycat") else kind]
