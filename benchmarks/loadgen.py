"""Load generator for a ChattyCat server (stdlib only, asyncio).

Connects N clients spread over K rooms, lets S of them send chat messages,
and measures what a chat server is judged by: fan-out deliveries per second,
end-to-end latency (send -> every member's copy), acknowledgement latency
(send -> the sender's own copy), connect+hello time, and, given the server's
PID, its memory per connection and CPU time per delivered message.

Each message's text carries its send time (``perf_counter_ns`` of this
process) and the sender's index, so a receiver finds both with two
``bytes.find`` calls instead of a ``json.loads``: at a few hundred thousand
frames a second the client, not the server, would otherwise be what is
measured. The client's own CPU use is reported so that this stays visible.

    python benchmarks/loadgen.py --port 9999 --clients 100 --senders 10 --window 16
    python benchmarks/loadgen.py --port 9999 --clients 200 --rooms 20 --senders 200 --rate 400
    python benchmarks/loadgen.py --port 9999 --history 10000

The server should run with ``--flood-rate 0``, or the senders get ``rate_limited``, and
with ``--max-per-ip 0 --max-unwelcomed-per-ip 0 --ip-open-rate 0``, or it turns away
most clients of one address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

HEADER = struct.Struct(">I")
MESSAGE_PREFIX = b'{"type":"message"'
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# Connections opened at once; more would overflow the server's accept backlog.
CONNECT_CONCURRENCY = 200
CONNECT_TIMEOUT_S = 120.0
# After the last client is ready, wait for the joined/roster flood to stop.
QUIET_S = 0.3
QUIET_MAX_S = 10.0
DRAIN_TIMEOUT_S = 10.0
RATE_TICK_S = 0.005


def encode(obj: dict[str, Any]) -> bytes:
    """One frame: 4-byte big-endian length + compact UTF-8 JSON."""
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(payload)) + payload


# -- the server process, from /proc ---------------------------------------------------


def server_rss_kib(pid: int | None) -> int | None:
    """VmRSS of ``pid`` in KiB (None without a PID)."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def server_cpu_s(pid: int | None) -> float | None:
    """utime + stime of ``pid`` in seconds (None without a PID)."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces; the fields after its ")" are fixed.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


# -- one simulated client -------------------------------------------------------------


@dataclass
class Tally:
    """Counters shared by every client of a run."""

    tag: bytes
    deliveries: int = 0
    acks: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    ack_latencies_ns: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    last_frame_ns: int = 0


class ChatClient(asyncio.Protocol):
    """One connection: hello, join its room, then count and time deliveries."""

    def __init__(self, index: int, name: str, room: str, tally: Tally,
                 on_ack: Callable[[ChatClient], None]) -> None:
        self.index, self.name, self.room = index, name, room
        self.tally, self.on_ack = tally, on_ack
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.sent = 0
        self.in_flight = 0
        self.replies: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._text_marker = b'"text":"' + tally.tag + b" "
        self._pad = ""

    def factory(self) -> ChatClient:
        """This client, as ``create_connection``'s protocol factory."""
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send({"type": "hello", "name": self.name, "protocol": 1})

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.lost += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"{self.name}: connection lost ({exc})"))

    def send(self, obj: dict[str, Any]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode(obj))

    def say(self, size: int) -> None:
        """Send one timed chat message."""
        self.sent += 1
        self.in_flight += 1
        text = f"{self.tally.tag.decode()} {time.perf_counter_ns()} {self.index} "
        text += "x" * max(0, size - len(text))
        self.send({"type": "say", "room": self.room, "text": text, "id": f"m{self.sent}"})

    def request(self, obj: dict[str, Any]) -> asyncio.Queue[dict[str, Any]]:
        """Send ``obj`` with a fresh ``ref``; the frames echoing it arrive in the queue."""
        ref = f"r{len(self.replies)}"
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.replies[ref] = queue
        self.send(obj | {"ref": ref})
        return queue

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()  # every frame of this chunk arrived together
        self.tally.last_frame_ns = now
        buf = self.buffer + data if self.buffer else data
        offset, end = 0, len(buf)
        while end - offset >= 4:
            (length,) = HEADER.unpack_from(buf, offset)
            start, stop = offset + 4, offset + 4 + length
            if stop > end:
                break
            if buf.startswith(MESSAGE_PREFIX, start):
                self._on_message(buf, start, stop, now)
            else:
                self._on_frame(json.loads(buf[start:stop]))
            offset = stop
        self.buffer = buf[offset:]

    def _on_message(self, buf: bytes, start: int, stop: int, now: int) -> None:
        at = buf.find(self._text_marker, start, stop)
        if at < 0:
            return  # not one of this run's messages
        at += len(self._text_marker)
        gap = buf.find(b" ", at, stop)
        sent_ns = int(buf[at:gap])
        sender = int(buf[gap + 1 : buf.find(b" ", gap + 1, stop)])
        tally = self.tally
        tally.deliveries += 1
        tally.latencies_ns.append(now - sent_ns)
        if sender == self.index:
            tally.acks += 1
            tally.ack_latencies_ns.append(now - sent_ns)
            self.in_flight -= 1
            self.on_ack(self)

    def _on_frame(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "welcome" and self.room != "lobby":
            self.send({"type": "join", "room": self.room})
            self.send({"type": "part", "room": "lobby"})
        elif kind == "history" and obj.get("room") == self.room and not obj.get("more"):
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == "ping":
            self.send({"type": "pong", "token": obj.get("token")})
        elif kind == "error":
            self.tally.errors[str(obj.get("code"))] += 1
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"{self.name}: {obj}"))
        queue = self.replies.get(str(obj.get("ref")))
        if queue is not None:
            queue.put_nowait(obj)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# -- a load run -----------------------------------------------------------------------


@dataclass
class LoadConfig:
    """What to run; see the command-line help for each field."""

    host: str = "127.0.0.1"
    port: int = 9999
    clients: int = 100
    rooms: int = 1
    senders: int = 10
    rate: float = 0.0  # total messages/s; 0 = as fast as acks allow, `window` in flight
    window: int = 16
    duration_s: float = 10.0
    size: int = 64
    server_pid: int | None = None
    label: str = "load"


@dataclass
class LoadResult:
    """The figures of one run (times in ms unless the name says otherwise)."""

    label: str
    clients: int
    rooms: int
    senders: int
    mode: str
    connect_s: float
    connect_p99_ms: float
    connect_server_cpu_s: float | None
    messages_per_s: float
    deliveries_per_s: float
    e2e_p50_ms: float
    e2e_p99_ms: float
    e2e_max_ms: float
    ack_p50_ms: float
    ack_p99_ms: float
    rss_before_mib: float | None
    rss_after_mib: float | None
    kib_per_conn: float | None
    server_cpu_pct: float | None
    cpu_us_per_delivery: float | None
    client_cpu_pct: float
    undelivered: int
    errors: dict[str, int]


class LoadRun:
    """Connects the clients, drives the senders, and collects a LoadResult."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.tally = Tally(tag=("b" + secrets.token_hex(3)).encode())
        self.clients: list[ChatClient] = []
        self.sending = False
        self.expected = 0  # deliveries owed for the messages sent so far
        self.room_sizes: Counter[str] = Counter()

    def _room_of(self, index: int) -> str:
        return "lobby" if self.config.rooms == 1 else f"room{index % self.config.rooms}"

    def _on_ack(self, client: ChatClient) -> None:
        if self.sending and not self.config.rate:
            self._say(client)

    def _say(self, client: ChatClient) -> None:
        self.expected += self.room_sizes[client.room]
        client.say(self.config.size)

    async def _connect_one(self, index: int, gate: asyncio.Semaphore) -> float:
        loop = asyncio.get_running_loop()
        room = self._room_of(index)
        client = ChatClient(index, f"{self.tally.tag.decode()}-{index}", room, self.tally,
                            self._on_ack)
        async with gate:
            started = time.perf_counter()
            await loop.create_connection(client.factory, self.config.host, self.config.port)
            await client.ready
        self.clients.append(client)
        self.room_sizes[room] += 1
        return time.perf_counter() - started

    async def _wait_quiet(self) -> None:
        deadline = time.perf_counter() + QUIET_MAX_S
        while time.perf_counter() < deadline:
            await asyncio.sleep(QUIET_S / 3)
            if time.perf_counter_ns() - self.tally.last_frame_ns > QUIET_S * 1e9:
                return

    async def run(self) -> LoadResult:
        cfg = self.config
        rss_before = server_rss_kib(cfg.server_pid)
        cpu_before = server_cpu_s(cfg.server_pid)
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        started = time.perf_counter()
        each = await asyncio.wait_for(
            asyncio.gather(*(self._connect_one(i, gate) for i in range(cfg.clients))),
            CONNECT_TIMEOUT_S,
        )
        connect_s = time.perf_counter() - started
        await self._wait_quiet()
        rss_after = server_rss_kib(cfg.server_pid)
        cpu_after = server_cpu_s(cfg.server_pid)
        connect_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        try:
            result = await self._measure(connect_s, sorted(each), rss_before, rss_after)
            result.connect_server_cpu_s = connect_cpu
            return result
        finally:
            for client in self.clients:
                client.close()
            await asyncio.sleep(0.1)

    async def _measure(self, connect_s: float, each: list[float], rss_before: int | None,
                       rss_after: int | None) -> LoadResult:
        cfg = self.config
        senders = self.clients[: cfg.senders]
        tally = self.tally
        cpu0, client_cpu0 = server_cpu_s(cfg.server_pid), time.process_time()
        t0 = time.perf_counter()
        self.sending = True
        if senders and cfg.rate:
            await self._paced(senders, t0)
        else:
            for client in senders:
                for _ in range(cfg.window):
                    self._say(client)
            await asyncio.sleep(cfg.duration_s)
        self.sending = False
        elapsed = time.perf_counter() - t0
        delivered, acked = tally.deliveries, tally.acks
        deadline = time.perf_counter() + DRAIN_TIMEOUT_S
        while tally.deliveries < self.expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        wall = time.perf_counter() - t0
        cpu1, client_cpu1 = server_cpu_s(cfg.server_pid), time.process_time()
        lat = sorted(tally.latencies_ns)
        ack = sorted(tally.ack_latencies_ns)
        cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        mode = "idle" if not senders else (f"{cfg.rate:g}/s" if cfg.rate else f"w{cfg.window}")

        def ms(values: list[int], q: float) -> float:
            return percentile(values, q) / 1e6

        return LoadResult(
            label=cfg.label, clients=cfg.clients, rooms=cfg.rooms, senders=len(senders),
            mode=mode, connect_s=connect_s, connect_p99_ms=percentile(each, 0.99) * 1e3,
            connect_server_cpu_s=None,
            messages_per_s=acked / elapsed, deliveries_per_s=delivered / elapsed,
            e2e_p50_ms=ms(lat, 0.5), e2e_p99_ms=ms(lat, 0.99), e2e_max_ms=ms(lat, 1.0),
            ack_p50_ms=ms(ack, 0.5), ack_p99_ms=ms(ack, 0.99),
            rss_before_mib=None if rss_before is None else rss_before / 1024,
            rss_after_mib=None if rss_after is None else rss_after / 1024,
            kib_per_conn=(None if rss_before is None or rss_after is None
                          else (rss_after - rss_before) / cfg.clients),
            server_cpu_pct=None if cpu is None else 100 * cpu / wall,
            cpu_us_per_delivery=(None if cpu is None or not tally.deliveries
                                 else 1e6 * cpu / tally.deliveries),
            client_cpu_pct=100 * (client_cpu1 - client_cpu0) / wall,
            undelivered=self.expected - tally.deliveries,
            errors=dict(tally.errors) | ({"lost": tally.lost} if tally.lost else {}),
        )

    async def _paced(self, senders: list[ChatClient], t0: float) -> None:
        """Send ``rate`` messages/s in total, round-robin over the senders."""
        cfg, sent, turn = self.config, 0, 0
        while (now := time.perf_counter()) < t0 + cfg.duration_s:
            due = int((now - t0) * cfg.rate)
            while sent < due:
                self._say(senders[turn % len(senders)])
                sent, turn = sent + 1, turn + 1
            await asyncio.sleep(RATE_TICK_S)


# -- history: joining a room with a long past -----------------------------------------


@dataclass
class HistoryResult:
    """Join and ``history`` query times against a room of ``stored`` messages."""

    stored: int
    preload_msgs_per_s: float
    join_p50_ms: float
    join_p99_ms: float
    join_messages: int
    query_limit: int
    query_p50_ms: float
    query_p99_ms: float
    query_messages: int
    query_frames: int


async def _history_messages(client: ChatClient, request: dict[str, Any]) -> tuple[int, int]:
    """Send ``request``; count the messages and frames of its (possibly split) history reply."""
    replies = client.request(request)
    messages = frames = 0
    while True:
        frame = await asyncio.wait_for(replies.get(), 30)
        if frame.get("type") == "error":
            raise RuntimeError(f"{request['type']} failed: {frame}")
        if frame.get("type") != "history":
            continue  # a join's roster
        messages, frames = messages + len(frame["messages"]), frames + 1
        if not frame.get("more"):
            return messages, frames


async def run_history(config: LoadConfig, stored: int, reps: int, limit: int) -> HistoryResult:
    """Fill room ``hist`` with ``stored`` messages, then time joins and history queries."""
    loop = asyncio.get_running_loop()
    tally = Tally(tag=("h" + secrets.token_hex(3)).encode())
    writer = ChatClient(0, f"{tally.tag.decode()}-w", "hist", tally, lambda c: None)
    await loop.create_connection(writer.factory, config.host, config.port)
    await asyncio.wait_for(writer.ready, 30)
    started = time.perf_counter()
    for burst in range(0, stored, 500):
        for _ in range(min(500, stored - burst)):
            writer.say(config.size)
        while writer.in_flight:
            await asyncio.sleep(0.005)
    preload_rate = stored / (time.perf_counter() - started)
    joins, queries = [], []
    join_messages = query_messages = query_frames = 0
    for rep in range(reps):
        client = ChatClient(rep + 1, f"{tally.tag.decode()}-r{rep}", "lobby", tally,
                            lambda c: None)
        await loop.create_connection(client.factory, config.host, config.port)
        await asyncio.wait_for(client.ready, 30)
        t = time.perf_counter()
        join_messages, _ = await _history_messages(client, {"type": "join", "room": "hist"})
        joins.append(time.perf_counter() - t)
        t = time.perf_counter()
        query_messages, query_frames = await _history_messages(
            client, {"type": "history", "room": "hist", "limit": limit})
        queries.append(time.perf_counter() - t)
        client.close()
    writer.close()
    joins.sort()
    queries.sort()
    return HistoryResult(
        stored=stored, preload_msgs_per_s=preload_rate,
        join_p50_ms=percentile(joins, 0.5) * 1e3, join_p99_ms=percentile(joins, 0.99) * 1e3,
        join_messages=join_messages, query_limit=limit,
        query_p50_ms=percentile(queries, 0.5) * 1e3, query_p99_ms=percentile(queries, 0.99) * 1e3,
        query_messages=query_messages, query_frames=query_frames,
    )


# -- markdown -------------------------------------------------------------------------

LOAD_COLUMNS = [
    ("scenario", "label", "{}"), ("clients", "clients", "{}"), ("rooms", "rooms", "{}"),
    ("senders", "senders", "{}"), ("send mode", "mode", "{}"),
    ("connect+hello all (s)", "connect_s", "{:.2f}"),
    ("server CPU in connect (s)", "connect_server_cpu_s", "{:.2f}"),
    ("msgs/s stored", "messages_per_s", "{:,.0f}"),
    ("deliveries/s", "deliveries_per_s", "{:,.0f}"),
    ("e2e p50/p99/max (ms)", ("e2e_p50_ms", "e2e_p99_ms", "e2e_max_ms"), "{:.1f}"),
    ("ack p50/p99 (ms)", ("ack_p50_ms", "ack_p99_ms"), "{:.1f}"),
    ("server RSS before→after (MiB)", ("rss_before_mib", "rss_after_mib"), "{:.1f}"),
    ("KiB/conn", "kib_per_conn", "{:.1f}"),
    ("server CPU %", "server_cpu_pct", "{:.1f}"),
    ("server CPU µs/delivery", "cpu_us_per_delivery", "{:.2f}"),
    ("loadgen CPU %", "client_cpu_pct", "{:.0f}"),
    ("errors", "errors", "{}"),
]
HISTORY_COLUMNS = [
    ("stored msgs", "stored", "{:,}"), ("preload msgs/s", "preload_msgs_per_s", "{:,.0f}"),
    ("join p50/p99 (ms)", ("join_p50_ms", "join_p99_ms"), "{:.2f}"),
    ("msgs in join history", "join_messages", "{}"),
    ("history limit", "query_limit", "{}"),
    ("query p50/p99 (ms)", ("query_p50_ms", "query_p99_ms"), "{:.2f}"),
    ("msgs / frames in reply", ("query_messages", "query_frames"), "{}"),
]


def _cell(values: dict[str, Any], keys: str | tuple[str, ...], fmt: str) -> str:
    parts = []
    for key in (keys,) if isinstance(keys, str) else keys:
        value = values[key]
        if value is None or (isinstance(value, float) and value != value):
            parts.append("-")
        elif isinstance(value, dict):
            parts.append(", ".join(f"{k}:{v}" for k, v in value.items()) or "0")
        else:
            parts.append(fmt.format(value))
    return " / ".join(parts)


def markdown_header(columns: list[tuple[str, Any, str]]) -> str:
    """The header and separator lines of a table with ``columns``."""
    names = [name for name, _, _ in columns]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names)


def markdown_row(result: LoadResult | HistoryResult, columns: list[tuple[str, Any, str]]) -> str:
    """One table row for ``result``."""
    values = asdict(result)
    return "| " + " | ".join(_cell(values, keys, fmt) for _, keys, fmt in columns) + " |"


# -- command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--clients", type=int, default=100, help="connections (default 100)")
    parser.add_argument("--rooms", type=int, default=1,
                        help="rooms the clients are spread over; 1 = everyone in lobby")
    parser.add_argument("--senders", type=int, default=10, help="clients that send (0: idle)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="total messages/s; 0 = as fast as acks allow (see --window)")
    parser.add_argument("--window", type=int, default=16,
                        help="messages in flight per sender when --rate is 0")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument("--size", type=int, default=64, help="characters of text per message")
    parser.add_argument("--server-pid", type=int, default=None,
                        help="read the server's RSS and CPU time from /proc")
    parser.add_argument("--label", default="load", help="first column of the row")
    parser.add_argument("--history", type=int, default=0, metavar="N",
                        help="instead: store N messages in a room, then time joins and queries")
    parser.add_argument("--history-limit", type=int, default=500)
    parser.add_argument("--reps", type=int, default=20, help="joins timed with --history")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--no-header", action="store_true", help="print the row only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0 < args.duration <= 600 or args.clients < 1 or args.senders > args.clients:
        print("loadgen: need 0 < --duration <= 600 and 0 <= --senders <= --clients",
              file=sys.stderr)
        return 2
    config = LoadConfig(
        host=args.host, port=args.port, clients=args.clients, rooms=args.rooms,
        senders=args.senders, rate=args.rate, window=args.window, duration_s=args.duration,
        size=args.size, server_pid=args.server_pid, label=args.label,
    )
    result: LoadResult | HistoryResult
    if args.history:
        result = asyncio.run(run_history(config, args.history, args.reps, args.history_limit))
        columns = HISTORY_COLUMNS
    else:
        result = asyncio.run(LoadRun(config).run())
        columns = LOAD_COLUMNS
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        if not args.no_header:
            print(markdown_header(columns))
        print(markdown_row(result, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
