"""How the scripted client finishes: on the client's events, bounded without progress.

A fake server on the test's loop welcomes, joins the lobby and answers pings,
but never acknowledges a message, so the session must give up on its own.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest

from chattycat.client.client import Client, ClientState
from chattycat.net.listener import listen
from chattycat.net.loop import EventLoop
from chattycat.ui.scripted import PlainSession
from tests.scripted_server import ScriptedServer, welcome_for

WAIT_S = 5.0


class ForgetfulServer(ScriptedServer):
    """Welcomes, joins the lobby and answers pings; records but never answers says."""

    def answer(self, frame: dict[str, object]) -> None:
        if frame["type"] == "hello":
            self.send(welcome_for(frame, "fake"))
            self.send({"type": "joined", "room": "lobby", "name": frame["name"],
                       "color": "#112233", "ts": 1.0})
        elif frame["type"] == "ping":
            self.send({"type": "pong", "token": frame["token"]})


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


def test_unacknowledged_messages_are_given_up_on_after_the_grace_period(
    loop: EventLoop,
) -> None:
    servers: list[ForgetfulServer] = []
    listener = listen(loop, lambda: servers.append(ForgetfulServer()) or servers[-1],
                      "127.0.0.1", 0)
    read_end, write_end = os.pipe()
    os.write(write_end, b"hello\nworld\n")
    os.close(write_end)  # the whole script, then end of input
    out = io.StringIO()
    client = Client(loop, "bot", port=listener.addresses()[0][1])
    session = PlainSession(client, loop, out=out, stdin_fd=read_end, grace_s=0.3)
    try:
        start = loop.time()
        assert session.run() == 0
        elapsed = loop.time() - start
        loop.run_until(lambda: servers[0].frames[-1]["type"] == "quit", timeout_s=WAIT_S)
    finally:
        client.close()
        listener.close()
        os.close(read_end)
    lines = out.getvalue().splitlines()
    assert lines[-1].endswith("giving up on 2 unacknowledged messages"), lines
    assert 0.3 <= elapsed < WAIT_S
    sent = [f["type"] for f in servers[0].frames]
    assert sent[:4] == ["hello", "say", "say", "ping"]  # the barrier after the last line
    assert sent[-1] == "quit"
    assert client.state is ClientState.CLOSED
