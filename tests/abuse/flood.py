"""Flooding connections on threads, and a quiet client's round trip measured meanwhile."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from tests.abuse.attack import FrameReader, connect_from, frame

#: What a flooder sends, as (needs hello first?, one batch of frames).
FLOODS: dict[str, tuple[bool, bytes]] = {
    "ping": (True, b"".join(frame({"type": "ping", "token": i}) for i in range(2000))),
    "pre-hello": (False, b"".join(frame({"type": "rooms"}) for _ in range(2000))),
    "bad-frame": (True, b"".join(frame("not an object") for _ in range(2000))),
    "say": (True, b"".join(frame({"type": "say", "room": "lobby", "text": "spam"})
                          for _ in range(2000))),
}


class Flooder(threading.Thread):
    """Sends one kind of flood over and over, reconnecting when the server hangs up."""

    def __init__(self, port: int, kind: str, index: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.kind, self.index, self.stop_event = port, kind, index, stop
        self.connections = 0

    def run(self) -> None:
        needs_hello, batch = FLOODS[self.kind]
        while not self.stop_event.is_set():
            try:
                sock = connect_from(self.port, timeout_s=1.0)
            except OSError:
                time.sleep(0.01)
                continue
            self.connections += 1
            with contextlib.closing(sock):
                # Nobody reads what the server answers: a flooder does not care.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
                try:
                    if needs_hello:
                        name = f"flood{self.index}x{self.connections}"
                        sock.sendall(frame({"type": "hello", "name": name, "protocol": 1}))
                    while not self.stop_event.is_set():
                        sock.sendall(batch)
                except OSError:
                    pass


def quiet_round_trips(port: int, seconds: float, interval_s: float = 0.06) -> list[float]:
    """Ping round trips (seconds) of a signed-in client on 127.0.0.1 over ``seconds``.

    About 16 pings a second: under the server's ping bucket (20 a second), so that
    every one is answered.
    """
    sock = connect_from(port, source="127.0.0.1")
    reader = FrameReader(sock)
    times: list[float] = []
    with contextlib.closing(sock):
        sock.sendall(frame({"type": "hello", "name": "quiet", "protocol": 1}))
        reader.until("welcome")
        reader.until("history")
        deadline = time.monotonic() + seconds
        token = 0
        while time.monotonic() < deadline:
            token += 1
            start = time.perf_counter()
            sock.sendall(frame({"type": "ping", "token": token}))
            while True:
                got = reader.until("pong", timeout_s=10)
                if got.get("token") == token:
                    break
            times.append(time.perf_counter() - start)
            time.sleep(interval_s)
    return times


def under_flood(port: int, kind: str, connections: int, seconds: float,
                measure: Callable[[int, float], list[float]] = quiet_round_trips,
                ) -> tuple[list[float], int]:
    """Round trips measured while ``connections`` flooders send ``kind``; and their connects."""
    stop = threading.Event()
    flooders = [Flooder(port, kind, i, stop) for i in range(connections)]
    for flooder in flooders:
        flooder.start()
    try:
        time.sleep(0.3)  # let the flood build up
        return measure(port, seconds), sum(f.connections for f in flooders)
    finally:
        stop.set()
        for flooder in flooders:
            flooder.join(5)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
