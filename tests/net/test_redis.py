"""The Redis client on our loop, against a real redis-server (tests/redis_server.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chattycat.errors import RedisConnectionError, RedisReplyError
from chattycat.net.loop import EventLoop
from chattycat.net.redis import (
    RedisAddress,
    RedisClient,
    RedisSubscriber,
    encode_command,
    parse_redis_url,
)
from tests.redis_server import RedisServer, needs_redis

WAIT_S = 10.0
FAST_BACKOFF = (0.01, 0.05)


# -- URLs (pure) -------------------------------------------------------------------------


def test_parse_redis_url_defaults_to_port_6379_and_db_0() -> None:
    assert parse_redis_url("redis://localhost") == RedisAddress("localhost", 6379, 0)


def test_parse_redis_url_reads_user_password_port_and_db() -> None:
    address = parse_redis_url("redis://alice:p%40ss@127.0.0.1:6380/3")
    assert address == RedisAddress("127.0.0.1", 6380, 3, password="p@ss", username="alice")
    assert "p@ss" not in repr(address) and "p@ss" not in str(address)


def test_parse_redis_url_password_only_and_ipv6() -> None:
    assert parse_redis_url("redis://:secret@[::1]:7000/2") == RedisAddress(
        "::1", 7000, 2, password="secret")
    assert str(parse_redis_url("redis://[::1]")) == "redis://[::1]:6379/0"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("rediss://host", "TLS"),
        ("http://host", "redis://"),
        ("redis://", "no host"),
        ("redis://host/zero", "database must be a number"),
        ("redis://host:99999", "bad Redis URL"),
        ("redis://host?db=1", "options"),
        ("redis://alice@host", "password"),
    ],
)
def test_parse_redis_url_refuses_with_one_line_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        parse_redis_url(url)
    assert "\n" not in str(caught.value)


def test_parse_redis_url_error_hides_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url("redis://:hunter2@host/x")
    assert "hunter2" not in str(caught.value)


# -- RESP encoding (pure) ---------------------------------------------------------------


def test_encode_command_writes_an_array_of_bulk_strings() -> None:
    assert encode_command("SET", b"k\r\n", 12, 1.5) == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n$3\r\n1.5\r\n")


def test_encode_command_refuses_bools_other_types_and_nothing() -> None:
    with pytest.raises(TypeError):
        encode_command("SET", "k", True)
    with pytest.raises(TypeError):
        encode_command("SET", "k", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode_command()


ARGS = st.lists(
    st.one_of(st.binary(), st.text(), st.integers(), st.floats(allow_nan=False)),
    min_size=1, max_size=8,
)


def _expected(arg: bytes | str | int | float) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int):
        return str(arg).encode()
    return repr(arg).encode()


@given(commands=st.lists(ARGS, min_size=1, max_size=5), cut=st.integers(min_value=1))
def test_encode_command_round_trips_through_hiredis_in_any_split(
    commands: list[list[bytes | str | int | float]], cut: int
) -> None:
    stream = b"".join(encode_command(*args) for args in commands)
    reader = hiredis.Reader()
    step = 1 + cut % max(1, len(stream))
    parsed = []
    for start in range(0, len(stream), step):
        reader.feed(stream[start:start + step])
        while (reply := reader.gets()) is not False:
            parsed.append(reply)
    assert parsed == [[_expected(arg) for arg in args] for args in commands]


# -- against a real Redis ----------------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


class Events:
    """What a client reported, for assertions."""

    def __init__(self) -> None:
        self.ups = 0
        self.downs: list[BaseException] = []

    def up(self) -> None:
        self.ups += 1

    def down(self, exc: BaseException) -> None:
        self.downs.append(exc)


def run(loop: EventLoop, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    assert loop.run_until(condition, timeout_s=timeout_s), "timed out waiting"


def call(loop: EventLoop, client: RedisClient, *args: Any) -> Any:
    replies: list[Any] = []
    client.call(args, replies.append)
    run(loop, lambda: bool(replies))
    return replies[0]


@pytest.fixture
def connected(
    loop: EventLoop, redis_server: RedisServer
) -> Iterator[tuple[RedisClient, Events]]:
    events = Events()
    client = RedisClient(loop, redis_server.url, on_up=events.up, on_down=events.down,
                         backoff_s=FAST_BACKOFF)
    client.start()
    run(loop, lambda: client.connected)
    yield client, events
    client.close()


def test_ten_thousand_calls_in_one_pass_are_answered_in_order(
    loop: EventLoop, connected: tuple[RedisClient, Events]
) -> None:
    client, _ = connected
    replies: list[Any] = []
    for _ in range(10_000):
        client.call(("INCR", "counter"), replies.append)
    assert client.pending() == 10_000
    run(loop, lambda: len(replies) == 10_000)
    assert replies == list(range(1, 10_001))
    assert client.pending() == 0


def test_call_many_returns_the_replies_together(
    loop: EventLoop, connected: tuple[RedisClient, Events]
) -> None:
    client, _ = connected
    results: list[list[Any]] = []
    client.call_many([("SET", "a", 1), ("GET", "a"), ("INCR", "a"), ("GET", "nothing")],
                     results.append)
    run(loop, lambda: bool(results))
    assert results == [[b"OK", b"1", 2, None]]


def test_error_reply_is_a_reply_error_and_the_connection_stays(
    loop: EventLoop, connected: tuple[RedisClient, Events]
) -> None:
    client, events = connected
    assert call(loop, client, "SET", "k", "v") == b"OK"
    error = call(loop, client, "LPUSH", "k", "x")
    assert isinstance(error, RedisReplyError) and error.code == "WRONGTYPE"
    assert call(loop, client, "PING") == b"PONG"
    assert events.downs == [] and events.ups == 1


def test_handshake_selects_the_database_and_names_the_connection(
    loop: EventLoop, redis_server: RedisServer
) -> None:
    client = RedisClient(loop, redis_server.url.replace("/0", "/3"), name="node-7")
    client.start()
    run(loop, lambda: client.connected)
    try:
        assert call(loop, client, "SET", "where", "three") == b"OK"
        assert call(loop, client, "CLIENT", "GETNAME") == b"node-7"
    finally:
        client.close()
    with redis_server.client(db=3) as check:
        assert check.get("where") == b"three"


@needs_redis
def test_password_is_sent_with_auth_and_a_wrong_one_keeps_it_down(
    loop: EventLoop, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis", password="s3cret") as server:
        good = RedisClient(loop, server.url)
        events = Events()
        bad = RedisClient(loop, server.url.replace("s3cret", "wrong"), on_down=events.down,
                          backoff_s=FAST_BACKOFF)
        good.start()
        bad.start()
        run(loop, lambda: good.connected and len(events.downs) == 1)
        assert call(loop, good, "PING") == b"PONG"
        assert "AUTH" in str(events.downs[0]) and not bad.connected
        good.close()
        bad.close()


def test_call_while_down_fails_on_the_next_pass_not_inside_call(loop: EventLoop) -> None:
    events = Events()
    client = RedisClient(loop, "redis://127.0.0.1:1/0", on_up=events.up, on_down=events.down,
                         backoff_s=FAST_BACKOFF)
    replies: list[Any] = []
    client.call(("PING",), replies.append)
    assert replies == []
    run(loop, lambda: bool(replies), timeout_s=1.0)
    assert isinstance(replies[0], RedisConnectionError)
    client.start()  # nothing listens on port 1: refused, retried, one outage
    run(loop, lambda: bool(events.downs), timeout_s=2.0)
    loop.run_until(lambda: False, timeout_s=0.3)
    assert len(events.downs) == 1 and events.ups == 0
    client.close()


@needs_redis
def test_handshake_is_bounded_even_without_a_reply_timeout(
    loop: EventLoop, redis_server: RedisServer
) -> None:
    events = Events()
    client = RedisClient(loop, redis_server.url, on_down=events.down, on_up=events.up,
                         reply_timeout_s=0, connect_timeout_s=0.3, backoff_s=FAST_BACKOFF)
    redis_server.pause()  # the kernel accepts the connection; Redis never answers
    try:
        client.start()
        run(loop, lambda: bool(events.downs), timeout_s=3.0)
        assert "no reply" in str(events.downs[0])
    finally:
        redis_server.resume()
    run(loop, lambda: events.ups == 1)
    client.close()


def test_close_fails_outstanding_calls_and_does_not_reconnect(
    loop: EventLoop, connected: tuple[RedisClient, Events]
) -> None:
    client, events = connected
    replies: list[Any] = []
    client.call(("BLPOP", "empty-list", 5), replies.append)
    client.close()
    assert isinstance(replies[0], RedisConnectionError)
    loop.run_until(lambda: False, timeout_s=0.2)
    assert not client.connected and events.ups == 1 and events.downs == []


def test_callback_exception_goes_to_the_loop_handler_and_the_client_goes_on(
    loop: EventLoop, connected: tuple[RedisClient, Events]
) -> None:
    client, _ = connected
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda exc, context: reported.append(exc))

    def explode(reply: Any) -> None:
        raise RuntimeError("bug in a callback")

    client.call(("PING",), explode)
    assert call(loop, client, "ECHO", "still") == b"still"
    run(loop, lambda: bool(reported))
    assert isinstance(reported[0], RuntimeError)


def test_reconnects_after_client_kill_and_fails_the_calls_in_flight(
    loop: EventLoop, redis_server: RedisServer, connected: tuple[RedisClient, Events]
) -> None:
    client, events = connected
    my_id = call(loop, client, "CLIENT", "ID")
    in_flight: list[Any] = []
    client.call(("BLPOP", "empty-list", 5), in_flight.append)
    loop.run_until(lambda: False, timeout_s=0.05)  # the BLPOP reaches Redis
    with redis_server.client() as admin:
        admin.execute_command("CLIENT", "KILL", "ID", my_id)
    run(loop, lambda: events.ups == 2)
    assert isinstance(in_flight[0], RedisConnectionError)
    assert len(events.downs) == 1
    assert call(loop, client, "PING") == b"PONG"


def test_server_killed_and_restarted_means_one_down_and_one_up(
    loop: EventLoop,
    redis_server: RedisServer,
    connected: tuple[RedisClient, Events],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, events = connected
    caplog.set_level(logging.INFO, logger="chattycat.net.redis")
    redis_server.kill()
    run(loop, lambda: bool(events.downs))
    loop.run_until(lambda: False, timeout_s=0.5)  # many retries at FAST_BACKOFF
    assert len(events.downs) == 1
    failed: list[Any] = []
    client.call(("PING",), failed.append)
    run(loop, lambda: bool(failed))
    assert isinstance(failed[0], RedisConnectionError)
    redis_server.restart()
    run(loop, lambda: events.ups == 2)
    assert call(loop, client, "PING") == b"PONG"
    levels = [record.levelno for record in caplog.records if record.name == "chattycat.net.redis"]
    assert levels.count(logging.WARNING) == 1 and levels.count(logging.INFO) == 1


def test_reply_timeout_on_a_hung_server_without_blocking_the_loop(
    loop: EventLoop, redis_server: RedisServer
) -> None:
    events = Events()
    client = RedisClient(loop, redis_server.url, on_up=events.up, on_down=events.down,
                         reply_timeout_s=0.3, connect_timeout_s=0.3, backoff_s=FAST_BACKOFF)
    client.start()
    run(loop, lambda: client.connected)
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(loop.time())
        loop.call_later(0.02, tick)

    loop.call_soon(tick)
    redis_server.pause()
    try:
        replies: list[Any] = []
        client.call(("PING",), replies.append)
        started = loop.time()
        run(loop, lambda: bool(replies), timeout_s=3.0)
        assert isinstance(replies[0], RedisConnectionError)
        assert "no reply" in str(replies[0]) and loop.time() - started >= 0.29
        assert len(events.downs) == 1
        assert len(ticks) >= 5  # timers kept firing while Redis said nothing
    finally:
        redis_server.resume()
    run(loop, lambda: events.ups == 2)
    assert call(loop, client, "PING") == b"PONG"
    client.close()


def test_reply_timeout_zero_allows_long_blocking_commands(
    loop: EventLoop, redis_server: RedisServer
) -> None:
    client = RedisClient(loop, redis_server.url, reply_timeout_s=0)
    client.start()
    run(loop, lambda: client.connected)
    try:
        assert call(loop, client, "BLPOP", "empty-list", 0.2) is None
    finally:
        client.close()


def test_subscriber_receives_messages_and_resubscribes_after_a_reconnect(
    loop: EventLoop, redis_server: RedisServer
) -> None:
    events = Events()
    messages: list[tuple[bytes, bytes]] = []
    subscriber = RedisSubscriber(
        loop, redis_server.url, ["room:a", "room:b"],
        lambda channel, data: messages.append((channel, data)),
        on_up=events.up, on_down=events.down, backoff_s=FAST_BACKOFF,
    )
    subscriber.start()
    run(loop, lambda: events.ups == 1)
    with redis_server.client() as publisher:
        assert publisher.publish("room:a", "one") == 1
        run(loop, lambda: len(messages) == 1)
        publisher.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        run(loop, lambda: events.ups == 2)
        assert len(events.downs) == 1
        assert publisher.publish("room:b", "two") == 1
        subscriber.subscribe(["room:c"])
        assert subscriber.pending() == 1  # the confirmation
        run(loop, lambda: len(messages) == 2 and subscriber.pending() == 0)
        assert publisher.publish("room:c", "three") == 1
        run(loop, lambda: len(messages) == 3)
        subscriber.unsubscribe(["room:a"])
        run(loop, lambda: subscriber.pending() == 0)
        assert publisher.publish("room:a", "gone") == 0
    assert messages == [(b"room:a", b"one"), (b"room:b", b"two"), (b"room:c", b"three")]
    subscriber.close()


def test_subscriber_ping_notices_a_hung_server(
    loop: EventLoop, redis_server: RedisServer
) -> None:
    events = Events()
    subscriber = RedisSubscriber(
        loop, redis_server.url, ["room:a"], lambda channel, data: None,
        on_up=events.up, on_down=events.down, ping_interval_s=0.1, reply_timeout_s=0.3,
        connect_timeout_s=0.3, backoff_s=FAST_BACKOFF,
    )
    subscriber.start()
    run(loop, lambda: events.ups == 1)
    loop.run_until(lambda: False, timeout_s=0.3)  # pings answered: still up
    assert subscriber.connected and events.downs == []
    redis_server.pause()
    try:
        run(loop, lambda: bool(events.downs), timeout_s=3.0)
    finally:
        redis_server.resume()
    run(loop, lambda: events.ups == 2)
    subscriber.close()


def test_commands_of_one_pass_leave_in_one_send(
    loop: EventLoop, connected: tuple[RedisClient, Events]
) -> None:
    client, _ = connected
    transport = client._link.transport  # type: ignore[union-attr]
    sends: list[int] = []
    real_send = transport._send_buffers  # type: ignore[union-attr]

    def counting_send(buffers: Any) -> int:
        sends.append(len(buffers))
        return real_send(buffers)  # type: ignore[no-any-return]

    transport._send_buffers = counting_send  # type: ignore[union-attr]
    replies: list[Any] = []
    for index in range(2_000):
        client.call(("ECHO", index), replies.append)
    client.call_many([("PING",), ("PING",)], replies.append)
    run(loop, lambda: len(replies) == 2_001)
    assert sends == [1]
    assert replies[:3] == [b"0", b"1", b"2"] and replies[-1] == [b"PONG", b"PONG"]
