"""FramedProtocol's fairness budget: a burst of frames is handed on over several passes."""

from __future__ import annotations

import socket
import threading

import pytest

from chattycat.net.framed import FramedProtocol
from chattycat.net.listener import listen
from chattycat.net.loop import EventLoop
from chattycat.protocol.framing import FrameDecoder, encode_frame

pytestmark = pytest.mark.timeout(30)


class PassCounter(FramedProtocol[FrameDecoder]):
    """Counts payloads, and in how many distinct loop passes they arrived."""

    payloads_per_pass = 10

    def __init__(self, loop: EventLoop, done: threading.Event, expected: int) -> None:
        super().__init__(FrameDecoder(65536))
        self.loop = loop
        self.done = done
        self.expected = expected
        self.payloads: list[bytes] = []
        self.per_pass: list[int] = []
        self._counted_this_pass = False

    def payload_received(self, payload: bytes) -> None:
        self.payloads.append(payload)
        if not self._counted_this_pass:
            self._counted_this_pass = True
            self.per_pass.append(0)
            self.loop.call_before_poll(self._end_of_pass)
        self.per_pass[-1] += 1
        if len(self.payloads) == self.expected:
            self.done.set()

    def _end_of_pass(self) -> None:
        self._counted_this_pass = False


def test_a_burst_is_decoded_at_most_budget_frames_per_pass_in_order() -> None:
    loop = EventLoop()
    done = threading.Event()
    protocols: list[PassCounter] = []

    def make() -> PassCounter:
        protocols.append(PassCounter(loop, done, 500))
        return protocols[-1]

    listener = listen(loop, make, "127.0.0.1", 0)
    host, port = listener.addresses()[0]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"".join(encode_frame(b"%d" % i) for i in range(500)))
            assert done.wait(10)
        protocol = protocols[0]
        assert protocol.payloads == [b"%d" % i for i in range(500)]
        assert max(protocol.per_pass) <= 10
        assert len(protocol.per_pass) >= 50
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        listener.close()
        loop.close()
