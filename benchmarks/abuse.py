"""Before/after figures for docs/security.md, findings 1, 3 and 4.

Each scenario starts ``chattycat serve`` (under ``--python``, so another
checkout can be compared), attacks it from 127.0.0.2 and prints one figure:

    python benchmarks/abuse.py memory  [--names 200]      # whisper windows: server growth
    python benchmarks/abuse.py slots   [--tries 50]       # per-address limits: user gets in
    python benchmarks/abuse.py stall   [--clients 300]    # stalled readers: kernel memory

Finding 2 (fairness) has its own script, ``benchmarks/fairness.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.abuse.attack import FrameReader, close_all, connect_from, frame, rss_kib  # noqa: E402

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def start_server(python: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    """A server on a free port with ``args``; returns it and its port."""
    proc = subprocess.Popen(
        [python, "-m", "chattycat", "serve", "--host", "127.0.0.1", "--port", "0", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = LISTENING.search(line)
        if match:
            subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
            return proc, int(match.group(1))
    raise SystemExit("the server did not start")


def _no_address_limits(python: str) -> list[str]:
    usage = subprocess.run([python, "-m", "chattycat", "serve", "--help"], text=True,
                           capture_output=True, check=False).stdout
    if "--max-per-ip" not in usage:  # a version from before the per-address limits
        return []
    return ["--max-per-ip", "0", "--max-unwelcomed-per-ip", "0", "--ip-open-rate", "0"]


def memory(python: str, names: int) -> None:
    """Finding 1: throwaway names x 100 whispers of 4000 emoji each."""
    # One attacker opening many connections is finding 3's business, not this one's.
    proc, port = start_server(python, "--flood-rate", "0", "--db", ":memory:",
                              *_no_address_limits(python))
    text = "\U0001f431" * 4000
    try:
        before = rss_kib(proc.pid)
        for n in range(names):
            sock = connect_from(port, timeout_s=30)
            reader = FrameReader(sock)
            with contextlib.closing(sock):
                name = f"throwaway{n}"
                sock.sendall(frame({"type": "hello", "name": name, "protocol": 1}))
                reader.until("welcome")
                sock.sendall(b"".join(frame({"type": "whisper", "to": name, "text": text,
                                             "id": f"w{i}"}) for i in range(100)))
                for _ in range(100):
                    reader.until("whisper", timeout_s=30)
        after = rss_kib(proc.pid)
        print(f"memory: {names} names x 100 whispers: server RSS {before / 1024:.0f} MiB -> "
              f"{after / 1024:.0f} MiB (+{(after - before) / 1024:.0f} MiB)")
    finally:
        proc.terminate()
        proc.wait(10)


def slots(python: str, tries: int) -> None:
    """Finding 3: one address holds silent connections; does a user on another get in?"""
    proc, port = start_server(python, "--max-connections", "200", "--db", ":memory:")
    stop = threading.Event()
    held: list[socket.socket] = []

    def hold() -> None:  # reopen as fast as slots free up, never say hello
        while not stop.is_set():
            try:
                held.append(connect_from(port, timeout_s=1))
            except OSError:
                time.sleep(0.01)
            if len(held) > 5000:  # refused ones are dead sockets: let them go
                close_all(held[:2500])
                del held[:2500]

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    time.sleep(2)
    wins = 0
    try:
        for i in range(tries):
            with contextlib.suppress(OSError, TimeoutError, EOFError):
                sock = connect_from(port, source="127.0.0.1", timeout_s=2)
                with contextlib.closing(sock):
                    sock.sendall(frame({"type": "hello", "name": f"user{i}", "protocol": 1}))
                    got = FrameReader(sock).next(2)
                    wins += got is not None and got["type"] == "welcome"
            time.sleep(0.05)
        print(f"slots: a user on another address got in {wins} of {tries} times")
    finally:
        stop.set()
        holder.join(5)
        close_all(held)
        proc.terminate()
        proc.wait(10)


def _tcp_kernel_kib() -> int:
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * 4  # pages of 4 KiB
    return 0


def stall(python: str, clients: int) -> None:
    """Finding 4: clients pull ~440 KB of history each, never read, and keep pinging."""
    proc, port = start_server(python, "--flood-rate", "0", "--db", ":memory:",
                              "--heartbeat", "2", *_no_address_limits(python))
    socks: list[socket.socket] = []
    try:
        writer = connect_from(port, source="127.0.0.1", timeout_s=30)
        reader = FrameReader(writer)
        writer.sendall(frame({"type": "hello", "name": "writer", "protocol": 1}))
        reader.until("welcome")
        for i in range(110):
            writer.sendall(frame({"type": "say", "room": "lobby", "text": "x" * 3990,
                                  "id": f"m{i}"}))
        for _ in range(110):
            reader.until("message", timeout_s=30)
        base = _tcp_kernel_kib()
        for n in range(clients):
            sock = connect_from(port, timeout_s=5)
            sock.sendall(frame({"type": "hello", "name": f"stall{n}", "protocol": 1}))
            sock.sendall(frame({"type": "history", "room": "lobby", "before": 111,
                                "limit": 110}))
            socks.append(sock)
        for label, wait_s in (("after 2 s", 2), ("after 10 s", 8)):
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:  # keep pinging, never read
                for sock in socks:
                    with contextlib.suppress(OSError):
                        sock.sendall(frame({"type": "ping"}))
                time.sleep(0.5)
            # Loopback counts both ends: the clients' unread receive queues
            # stay until they close, so the server's open sockets say more.
            sockets = sum(1 for fd in Path(f"/proc/{proc.pid}/fd").iterdir()
                          if fd.readlink().name.startswith("socket:"))
            print(f"stall: {clients} stalled clients, {label}: server holds {sockets} "
                  f"sockets; kernel TCP memory +{(_tcp_kernel_kib() - base) / 1024:.0f} MiB "
                  f"(both ends), server RSS {rss_kib(proc.pid) / 1024:.0f} MiB")
    finally:
        close_all(socks)
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["memory", "slots", "stall"])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--tries", type=int, default=50)
    parser.add_argument("--clients", type=int, default=300)
    args = parser.parse_args()
    if args.scenario == "memory":
        memory(args.python, args.names)
    elif args.scenario == "slots":
        slots(args.python, args.tries)
    else:
        stall(args.python, args.clients)


if __name__ == "__main__":
    main()
