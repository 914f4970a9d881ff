"""Password checks and the loop (docs/security.md, "Accounts"): a quiet client's round trip.

Runs a server in this process with one registered name, signs in a quiet
client that pings every 60 ms, and meanwhile has ``--guessers`` connections
(from 127.0.0.2 and up) send hellos with wrong passwords for that name as
fast as the server answers. Each hello costs one scrypt derivation (about
50 ms of a core). Prints the quiet client's p50/p99/worst round trip and how
many derivations ran, twice: with the derivations on the server's worker
thread (what it does) and, for comparison, run inline on the loop.

    python benchmarks/passwords.py [--seconds 5] [--guessers 8]
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chattycat.net.loop import EventLoop  # noqa: E402
from chattycat.server import app as server_app  # noqa: E402
from chattycat.server.app import ChatServer, ServerConfig  # noqa: E402
from chattycat.server.effects import PasswordJob, SaveAccount, StoredAccount, WriteBatch  # noqa: E402
from chattycat.server.model import RoomsConfig  # noqa: E402
from chattycat.server.passwords import PasswordWorker, hash_password, run_job  # noqa: E402
from chattycat.server.sqlite_store import SQLiteStore  # noqa: E402
from tests.abuse.attack import connect_from, frame  # noqa: E402
from tests.abuse.flood import percentile, quiet_round_trips  # noqa: E402


class InlineWorker:
    """What the server would do without a worker: derive on the loop's thread."""

    def __init__(self, handoff: Callable[[Callable[[], None]], object]) -> None:
        self.runs = 0

    def submit(self, job: PasswordJob, done: Callable[[bool | str], None]) -> None:
        self.runs += 1
        done(run_job(job))

    def close(self) -> None:
        pass


class CountingWorker(PasswordWorker):
    """The server's worker, counting the jobs it is given."""

    runs = 0

    def submit(self, job: PasswordJob, done: Callable[[bool | str], None]) -> None:
        CountingWorker.runs += 1
        super().submit(job, done)


def serve(db: str, worker: type) -> tuple[EventLoop, ChatServer, threading.Thread, int]:
    server_app.PasswordWorker = worker  # type: ignore[attr-defined,assignment]  # swap the class
    ready: queue.Queue[tuple[EventLoop, ChatServer, int]] = queue.Queue()

    def run() -> None:
        loop = EventLoop()
        store = SQLiteStore(db)
        rooms = RoomsConfig(max_failed_hellos=1_000, handshake_timeout_s=60.0)
        server = ChatServer(loop, store, ServerConfig(host="127.0.0.1", port=0, rooms=rooms,
                                                      max_unwelcomed_per_ip=None,
                                                      ip_open_rate_per_s=0))
        server.on_stopped = loop.stop
        port = server.start()[0][1]
        ready.put((loop, server, port))
        loop.run_forever()
        store.close()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    loop, server, port = ready.get(timeout=10)
    return loop, server, thread, port


def guess(port: int, source: str, stop: threading.Event) -> None:
    """Wrong passwords, one hello at a time, each on a fresh connection."""
    while not stop.is_set():
        with contextlib.suppress(OSError, TimeoutError), \
                contextlib.closing(connect_from(port, source, timeout_s=1.0)) as sock:
            sock.sendall(frame({"type": "hello", "name": "alice", "protocol": 1,
                                "password": "not the password"}))
            # The answer is held back (per address); the derivation runs anyway.
            time.sleep(0.05)


def measure(db: str, worker: type, seconds: float, guessers: int) -> tuple[list[float], int]:
    loop, server, thread, port = serve(db, worker)
    stop = threading.Event()
    threads = [threading.Thread(target=guess, args=(port, f"127.0.0.{2 + i}", stop), daemon=True)
               for i in range(guessers)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        try:
            times = quiet_round_trips(port, seconds)
        except TimeoutError:
            times = []  # the quiet client could not even sign in (or a ping got no pong)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        loop.call_soon_threadsafe(server.stop)
        thread.join(10)
    used = server.passwords
    return times, used.runs if isinstance(used, InlineWorker) else CountingWorker.runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--guessers", type=int, default=8)
    args = parser.parse_args()
    began = time.perf_counter()
    record = hash_password("the real password")
    took_ms = 1000 * (time.perf_counter() - began)
    print(f"one scrypt derivation (n=2**14, r=8, p=1): {took_ms:.0f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "h.db")
        store = SQLiteStore(db)
        store.apply(WriteBatch(1, (SaveAccount(StoredAccount("alice", "alice", record)),)))
        store.close()
        modes = (("worker thread", CountingWorker), ("inline on the loop", InlineWorker))
        for label, worker in modes:
            CountingWorker.runs = 0
            times, runs = measure(db, worker, args.seconds, args.guessers)
            ms = [t * 1000 for t in times]
            if not ms:
                print(f"{label:>20}: the quiet client timed out (no welcome or pong in 5 s); "
                      f"{runs} derivations")
                continue
            print(f"{label:>20}: quiet ping p50 {percentile(ms, 0.5):.1f} ms, "
                  f"p99 {percentile(ms, 0.99):.1f} ms, worst {max(ms):.1f} ms; "
                  f"{runs} derivations in {args.seconds:g} s")


if __name__ == "__main__":
    main()
