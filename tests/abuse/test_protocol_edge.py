"""Findings 5 and 6: huge integers, and rooms without limit, stop at the protocol edge."""

from __future__ import annotations

import pytest

from tests.conftest import StartServer
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

HUGE = 2**63


def test_integers_of_2_63_are_bad_requests_and_the_connection_stays(
    server_process: StartServer,
) -> None:
    server = server_process()
    alice = server.connect()
    alice.hello("alice")
    for query in ({"after": HUGE}, {"before": HUGE}, {"after": 10**30}):
        alice.send({"type": "history", "room": "lobby", "ref": 1, **query})
        error = alice.recv_until("error")
        assert (error["code"], error["ref"]) == ("bad_request", 1)
    alice.send({"type": "history", "room": "lobby", "after": HUGE - 1, "ref": 2})
    assert alice.recv_until("history")["ref"] == 2
    assert "Traceback" not in server.log and "OverflowError" not in server.log


def test_a_hello_that_fails_broadcasts_nothing(server_process: StartServer) -> None:
    server = server_process()
    watcher = server.connect()
    watcher.hello("watcher")
    mallory = server.connect()
    mallory.send({"type": "hello", "name": "mallory", "protocol": 1,
                  "resume": {"rooms": {"lobby": HUGE}}})
    assert mallory.recv()["code"] == "bad_request"
    mallory.send({"type": "hello", "name": "mallory", "protocol": 1,
                  "resume": {"rooms": {f"r{i}": 0 for i in range(4000)}}})
    assert mallory.recv()["code"] == "bad_request"
    watcher.expect_no_frame(0.5)
    mallory.hello("mallory")  # the connection is still good for a proper hello
    assert watcher.recv_until("joined")["name"] == "mallory"


def test_rooms_per_user_are_capped(server_process: StartServer) -> None:
    server = server_process("--max-rooms-per-user", "5", "--flood-rate", "0")
    client: WireClient = server.connect()
    client.hello("alice")  # lobby
    for i in range(10):
        client.send({"type": "join", "room": f"r{i}", "ref": i})
    replies = [client.recv_until("history" if i < 4 else "error") for i in range(10)]
    assert [r["type"] for r in replies] == ["history"] * 4 + ["error"] * 6
    assert {r["code"] for r in replies[4:]} == {"bad_request"}
    client.send({"type": "rooms"})
    assert len(client.recv_until("room_list")["rooms"]) == 5
