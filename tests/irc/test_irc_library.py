"""A maintained IRC client library (jaraco's ``irc``) on the IRC door, beside a native client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chattycat.server.irc import open_irc_door
from tests.conftest import InProcessServer, StartInProcess

irc_client = pytest.importorskip("irc.client", reason="the 'irc' test dependency is missing")

TIMEOUT_S = 5.0


@pytest.fixture
def irc_server(chat_server: StartInProcess) -> Iterator[tuple[InProcessServer, int]]:
    running = chat_server()
    addresses = running.call(lambda: open_irc_door(running.server, "127.0.0.1", 0))
    yield running, addresses[0][1]


class Recorder:
    """A library connection and the events it saw, by type."""

    def __init__(self, port: int, nick: str) -> None:
        self.reactor = irc_client.Reactor()
        self.events: list[Any] = []
        self.reactor.add_global_handler("all_events", self._record)
        self.connection = self.reactor.server().connect("127.0.0.1", port, nick)

    def _record(self, connection: Any, event: Any) -> None:
        self.events.append(event)

    def wait(self, match: Callable[[Any], bool]) -> Any:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            for event in self.events:
                if match(event):
                    self.events.remove(event)
                    return event
            self.reactor.process_once(0.05)
        raise TimeoutError(f"no such event; saw {[e.type for e in self.events]}")

    def close(self) -> None:
        self.connection.close()


def test_library_client_and_native_client_talk(irc_server: tuple[InProcessServer, int]) -> None:
    running, port = irc_server
    native = running.user("bob")
    client = Recorder(port, "alice")
    try:
        client.wait(lambda e: e.type == "welcome")
        client.wait(lambda e: e.type == "join" and e.target == "#lobby")
        client.connection.join("#dev")
        client.wait(lambda e: e.type == "endofnames" and e.arguments[0] == "#dev")
        native.send({"type": "join", "room": "dev"})
        client.wait(lambda e: e.type == "join" and e.source.nick == "bob")
        native.say("dev", "hello from native")
        event = client.wait(lambda e: e.type == "pubmsg")
        assert (event.source.nick, event.target, event.arguments) == (
            "bob", "#dev", ["hello from native"])
        native.say("dev", "smiles", action=True)
        event = client.wait(lambda e: e.type == "action")
        assert event.arguments == ["smiles"]
        client.connection.privmsg("#dev", "hello from irc")
        client.connection.action("#dev", "nods")
        said = native.recv_until("message", where=lambda f: f["from"] == "alice")
        acted = native.recv_until("message", where=lambda f: f.get("action") is True)
        assert (said["text"], acted["text"]) == ("hello from irc", "nods")
        client.connection.nick("alicia")
        assert native.recv_until("renamed")["new"] == "alicia"
        native.send({"type": "nick", "name": "robert"})
        event = client.wait(lambda e: e.type == "nick" and e.source.nick == "bob")
        assert event.target == "robert"
        client.connection.part("#dev")
        assert native.recv_until("parted")["name"] == "alicia"
    finally:
        client.close()
