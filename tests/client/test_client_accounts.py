"""The Client with accounts and a server password, against a real ChatServer (PROTOCOL 10)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from chattycat.client.client import ClientState, Failed
from chattycat.net.loop import EventLoop
from chattycat.protocol.messages import Registered
from chattycat.server.accounts import AccountMode
from tests.client.test_client import QUIET, Harness

PASSWORD = "correct horse battery"
WAIT_S = 15.0  # a held auth_failed and a real scrypt derivation or two


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def chat(loop: EventLoop, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(loop, tmp_path / "history.db", replace(QUIET, server_password="shh"))
    yield harness
    for client in harness.clients:
        client.close()
    if harness.server is not None:
        harness.stop_server()


def test_register_then_sign_in_with_the_password(chat: Harness) -> None:
    alice, events = chat.online("alice", server_password="shh")
    alice.register(PASSWORD)
    chat.wait(lambda: bool(events.of(Registered)), timeout_s=WAIT_S)
    assert events.of(Registered)[0].name == "alice"
    alice.quit()
    again, _ = chat.online("alice", server_password="shh", password=PASSWORD)
    assert again.state is ClientState.ONLINE


def test_a_wrong_password_is_one_failed_event_and_no_retry(chat: Harness) -> None:
    alice, events = chat.online("alice", server_password="shh")
    alice.register(PASSWORD)
    chat.wait(lambda: bool(events.of(Registered)), timeout_s=WAIT_S)
    alice.quit()
    impostor, seen = chat.client("alice", server_password="shh", password="wrong wrong")
    chat.wait(lambda: impostor.state is ClientState.CLOSED, timeout_s=WAIT_S)
    (failed,) = seen.of(Failed)
    assert failed.code == "auth_failed" and "wrong name or password" in failed.reason


def test_a_missing_server_password_fails_once(chat: Harness) -> None:
    client, seen = chat.client("bob")
    chat.wait(lambda: client.state is ClientState.CLOSED, timeout_s=WAIT_S)
    assert [e.code for e in seen.of(Failed) if isinstance(e, Failed)] == ["auth_failed"]


def test_register_checks_the_password_length(chat: Harness) -> None:
    alice, _ = chat.online("alice", server_password="shh")
    with pytest.raises(ValueError, match="8 to 1024"):
        alice.register("short")


def test_accounts_mode_is_a_server_setting(loop: EventLoop, tmp_path: Path) -> None:
    harness = Harness(loop, tmp_path / "h.db", replace(QUIET, accounts=AccountMode.OFF))
    try:
        alice, events = harness.online("alice")
        alice.register(PASSWORD)
        harness.wait(lambda: any(getattr(e, "code", None) == "bad_request"
                                 for e in events.events))
    finally:
        for client in harness.clients:
            client.close()
        harness.stop_server()
