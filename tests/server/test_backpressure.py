"""--max-outbuf is judged on what a client has not taken, after the server sent.

A client that reads promptly may ask for far more than --max-outbuf in one
request (a page of history, a resume) and must get all of it; a client that
stops reading must be dropped once its unsent output passes --max-outbuf,
and the server's memory must stay bounded while the others keep chatting.
Both run against a real ``chattycat serve`` over real sockets.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, StartServer
from tests.wire import ConnectionClosed, Frame, WireClient

MAX_OUTBUF_BYTES = 1024 * 1024  # the default of --max-outbuf
TEXT_CHARS = 3900  # about 4 KB a message on the wire
QUIET = ("--flood-rate", "0", "--heartbeat", "0")


def text(index: int) -> str:
    return f"{index:06d}".ljust(TEXT_CHARS, "z")


def store_messages(writer: WireClient, count: int, batch: int = 50) -> None:
    """Say ``count`` ~4 KB messages in the lobby, waiting for every acknowledgement."""
    for start in range(0, count, batch):
        ids = [str(i) for i in range(start, min(start + batch, count))]
        for message_id in ids:
            writer.say("lobby", text(int(message_id)), id=message_id)
        acked = 0
        while acked < len(ids):
            if writer.recv()["type"] == "message":
                acked += 1  # acks come in order; the writer is alone in the room


def history_texts(frames: list[Frame]) -> list[str]:
    return [m["text"] for f in frames if f["type"] == "history" for m in f["messages"]]


def assert_still_served(client: WireClient) -> None:
    client.send({"type": "ping", "token": "still there?"})
    frames = client.recv_all_until("pong", timeout_s=10)
    assert not [f for f in frames if f["type"] == "error"], frames


def test_a_fast_reader_gets_a_history_page_larger_than_max_outbuf(
    server_process: StartServer,
) -> None:
    proc = server_process(*QUIET)
    writer = proc.connect()
    writer.hello("writer")
    store_messages(writer, 500)
    reader = proc.connect(timeout_s=10)
    reader.hello("reader")
    reader.send({"type": "history", "room": "lobby", "limit": 500, "ref": "page"})
    frames = reader.recv_all_until(
        "history", timeout_s=30, where=lambda f: f.get("ref") == "page" and not f.get("more")
    )
    page = [f for f in frames if f.get("ref") == "page"]
    texts = history_texts(page)
    assert sum(f["_size"] for f in page) > 1.5 * MAX_OUTBUF_BYTES  # one reply, well past it
    assert texts == [text(i) for i in range(500)]
    assert not [f for f in frames if f["type"] == "error"]
    assert_still_served(reader)
    assert "slow consumer" not in proc.log


def test_a_page_the_kernel_cannot_take_at_once_is_not_a_slow_consumer(
    server_process: StartServer,
) -> None:
    # On a real network the kernel takes only part of a large reply at once;
    # a small receive buffer makes loopback behave the same. The reader asked
    # for the page and reads it steadily: it must get all of it.
    proc = server_process(*QUIET)
    writer = proc.connect()
    writer.hello("writer")
    store_messages(writer, 500)
    reader = proc.connect(timeout_s=10, rcvbuf_bytes=4096)
    reader.hello("reader")
    reader.send({"type": "history", "room": "lobby", "limit": 500, "ref": "page"})
    time.sleep(0.2)  # the server has written the page; most of it waits in user space
    frames = reader.recv_all_until(
        "history", timeout_s=30, where=lambda f: f.get("ref") == "page" and not f.get("more")
    )
    assert history_texts([f for f in frames if f.get("ref") == "page"]) == [
        text(i) for i in range(500)]
    assert_still_served(reader)
    assert "slow consumer" not in proc.log


def test_a_fast_reader_resumes_over_1000_messages(server_process: StartServer) -> None:
    proc = server_process(*QUIET)
    writer = proc.connect()
    writer.hello("writer")
    store_messages(writer, 1000)
    reader = proc.connect(timeout_s=10)
    reader.send({"type": "hello", "name": "reader", "protocol": 1,
                 "resume": {"rooms": {"lobby": 0}}})
    frames = reader.recv_all_until("history", timeout_s=30, where=lambda f: not f.get("more"))
    assert frames[0]["type"] == "welcome"
    assert history_texts(frames) == [text(i) for i in range(1000)]
    assert not [f for f in frames if f["type"] == "error"]
    assert_still_served(reader)
    assert "slow consumer" not in proc.log


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid`` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


class Watcher:
    """Reads a signed-in client on a thread: message latencies, and whether ``slow`` left."""

    def __init__(self, client: WireClient) -> None:
        self.client = client
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.slow_parted = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                frame = self.client.recv(10)
            except (TimeoutError, ConnectionClosed):
                return
            if frame["type"] == "message" and frame["id"] in self.sent_at:
                self.latencies.append(time.monotonic() - self.sent_at[frame["id"]])
                if frame["id"] == "done":
                    self.done.set()
            elif frame["type"] == "parted" and frame["name"] == "slow":
                self.slow_parted.set()

    def join(self) -> None:
        self._thread.join(15)


def chat(proc: ServerProcess, flooder: WireClient, watcher: Watcher, first: int, count: int,
         peak: list[int]) -> None:
    """``count`` messages in batches of 10, recording the server's RSS after each batch."""
    for batch_start in range(first, first + count, 10):
        for i in range(batch_start, batch_start + 10):
            watcher.sent_at[str(i)] = time.monotonic()
            flooder.say("lobby", text(i), id=str(i))
        for _ in range(10):
            flooder.recv_until("message")
        peak.append(rss_bytes(proc.pid))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_a_reader_that_stops_is_dropped_at_max_outbuf_and_memory_stays_bounded(
    server_process: StartServer,
) -> None:
    proc = server_process(*QUIET)
    flooder = proc.connect()
    flooder.hello("flooder")
    watching = proc.connect()
    watching.hello("watcher")
    watcher = Watcher(watching)
    # Warm up first, so the baseline includes the store's page cache and the
    # interpreter's steady state, not only an idle process.
    chat(proc, flooder, watcher, 0, 600, [])
    baseline = rss_bytes(proc.pid)

    slow = proc.connect(rcvbuf_bytes=4096)
    slow.hello("slow")  # ...and never reads again until the end
    rss: list[int] = []
    sent = 600
    while not watcher.slow_parted.is_set() and sent < 600 + 4000:  # at most ~16 MB
        chat(proc, flooder, watcher, sent, 100, rss)
        sent += 100
    assert watcher.slow_parted.wait(5), "the reader that stopped was never dropped"
    chat(proc, flooder, watcher, sent, 200, rss)  # the others keep chatting afterwards
    watcher.sent_at["done"] = time.monotonic()
    flooder.say("lobby", "done", id="done")
    watcher.join()
    assert watcher.done.is_set() and max(watcher.latencies) < 2.0
    assert proc.wait_for_log("connection \\d+ is a slow consumer: closing", timeout_s=1)
    # What the server held for it never went far past --max-outbuf (the rest
    # was in the kernel's socket buffers, which are not in the RSS).
    assert max(rss) - baseline < 4 * MAX_OUTBUF_BYTES, (baseline, max(rss))
    frames = slow.expect_eof(timeout_s=15)
    assert {f["code"] for f in frames if f["type"] == "error"} <= {"slow_consumer"}
