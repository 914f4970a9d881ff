"""A fake server on the test's loop that records every frame and answers by script.

Client tests use it where a real server could not misbehave on purpose:
never acknowledging a message, dying after the welcome, pinging first.
"""

from __future__ import annotations

import json

from chattycat.net.transport import Protocol, Transport
from chattycat.protocol.framing import FrameDecoder, encode_frame

__all__ = ["ScriptedServer", "welcome_for"]

Frame = dict[str, object]


def welcome_for(hello: Frame, server: str, heartbeat: float = 0) -> Frame:
    """The ``welcome`` these fakes give any hello: session ``s1``, color #112233."""
    return {"type": "welcome", "name": hello["name"], "color": "#112233", "protocol": 1,
            "server": server, "session": "s1", "max_frame": 65536, "heartbeat": heartbeat}


class ScriptedServer(Protocol):
    """One connection: every frame is kept in :attr:`frames`, then :meth:`answer`\\ ed."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.decoder = FrameDecoder()
        self.transport: Transport | None = None

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.decoder.feed(data)
        for payload in self.decoder:
            frame = json.loads(payload)
            self.frames.append(frame)
            self.answer(frame)

    def answer(self, frame: Frame) -> None:
        """What the script says to ``frame`` (nothing, here)."""

    def send(self, frame: Frame) -> None:
        assert self.transport is not None
        self.transport.write(encode_frame(json.dumps(frame).encode()))

    def of_type(self, kind: str) -> list[Frame]:
        return [f for f in self.frames if f["type"] == kind]
