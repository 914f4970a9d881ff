"""A client and a server that disagree about TLS are told so, in those words.

Real servers on 127.0.0.1 (in-process, certificates from trustme); the
client on the test's loop. Before, the plain client said "connection closed"
and the TLS client "TLS error: WRONG_VERSION_NUMBER".
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme

from chattycat.client.client import Client, ClientEvent, ClientState, Failed
from chattycat.client.connection import (
    EXPECTS_TLS,
    NOT_TLS,
    describe_failure,
    describe_too_large,
    looks_like_tls_record,
)
from chattycat.net.loop import EventLoop
from tests.conftest import StartInProcess

WAIT_S = 5.0


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


def failure_of(loop: EventLoop, port: int, context: ssl.SSLContext | None) -> str:
    """The reason a client with ``context`` (None: plain) gives up on ``port``."""
    events: list[ClientEvent] = []
    client = Client(loop, "alice", port=port, ssl_context=context, server_hostname="localhost",
                    on_event=events.append)
    client.start()
    try:
        assert loop.run_until(lambda: client.state is ClientState.CLOSED, timeout_s=WAIT_S)
    finally:
        client.close()
    [failed] = [e for e in events if isinstance(e, Failed)]
    assert isinstance(failed, Failed)
    return failed.reason


def test_a_plain_client_at_a_tls_server_is_told_to_use_tls(
    loop: EventLoop, chat_server: StartInProcess, ca: trustme.CA,
) -> None:
    server = chat_server(ssl_context=server_context(ca))
    reason = failure_of(loop, server.port, None)
    assert reason.startswith(f"cannot connect to 127.0.0.1:{server.port}: ")
    assert "expects TLS (use --tls)" in reason


def test_a_tls_client_at_a_plain_server_is_told_it_does_not_speak_tls(
    loop: EventLoop, chat_server: StartInProcess, ca: trustme.CA,
) -> None:
    server = chat_server()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    reason = failure_of(loop, server.port, context)
    assert reason == f"cannot connect to 127.0.0.1:{server.port}: {NOT_TLS}"


def test_a_tls_alert_read_as_a_frame_header_is_recognised() -> None:
    # What a TLS server that does answer a plain hello sends: an alert record.
    alert = bytes([0x15, 0x03, 0x03, 0x00])
    assert looks_like_tls_record(alert)
    assert describe_too_large(int.from_bytes(alert, "big"), 65536) == EXPECTS_TLS
    assert not looks_like_tls_record((70_000).to_bytes(4, "big"))
    assert describe_too_large(70_000, 65536).startswith("bad data from the server (")


def test_ssl_errors_other_than_plain_bytes_keep_their_reason() -> None:
    wrong_version = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong_version.reason = "WRONG_VERSION_NUMBER"  # type: ignore[misc]
    assert describe_failure(wrong_version) == NOT_TLS
    other = ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] handshake failure")
    other.reason = "SSLV3_ALERT_HANDSHAKE_FAILURE"  # type: ignore[misc]
    assert describe_failure(other) == "TLS error: SSLV3_ALERT_HANDSHAKE_FAILURE"
