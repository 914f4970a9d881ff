"""Specification of typed frames: parsing, validation and serialization (PROTOCOL 1-8).

Valid frames round-trip through their JSON payload unchanged; every invalid
payload is answered with exactly the error code PROTOCOL.md prescribes, echoing
the request's ``ref``; and no payload whatsoever makes the parser raise
anything but :class:`RemoteProtocolError`.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chattycat.errors import ErrorCode, RemoteProtocolError
from chattycat.protocol.framing import encode_frame
from chattycat.protocol.messages import (
    Error,
    Frame,
    Hello,
    HistoryQuery,
    Join,
    Joined,
    Message,
    Nick,
    Ping,
    Quit,
    Request,
    Rooms,
    Say,
    Whisper,
    WhisperTo,
    decode_payload,
    encode,
    is_valid_name,
    is_valid_room,
    parse_event,
    parse_request,
    to_payload,
)
from tests.strategies import (
    EVENT_STRATEGIES,
    KNOWN_EVENT_TYPES,
    KNOWN_REQUEST_TYPES,
    REQUEST_STRATEGIES,
    arbitrary_typed_objects,
    events,
    frames,
    requests,
)

HEAVY = settings(max_examples=200, deadline=None)
PER_TYPE = settings(max_examples=60, deadline=None)

REF = "r-1"


def payload(obj: object) -> bytes:
    return json.dumps(obj).encode()


def rejected(obj: object) -> RemoteProtocolError:
    """The error parse_request raises for ``obj`` (a JSON value, or raw bytes)."""
    raw = obj if isinstance(obj, bytes) else payload(obj)
    with pytest.raises(RemoteProtocolError) as caught:
        parse_request(raw)
    # PROTOCOL 1: everything but frame_too_large leaves the connection open.
    assert not caught.value.fatal
    return caught.value


# -- round trips ----------------------------------------------------------------------


@PER_TYPE
@pytest.mark.parametrize("kind", REQUEST_STRATEGIES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_request_type_round_trips_through_its_payload(
    kind: type[Request], data: st.DataObject
) -> None:
    request = data.draw(REQUEST_STRATEGIES[kind])
    assert parse_request(to_payload(request)) == request


@PER_TYPE
@pytest.mark.parametrize("kind", EVENT_STRATEGIES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_event_type_round_trips_through_its_payload(
    kind: type[Frame], data: st.DataObject
) -> None:
    event = data.draw(EVENT_STRATEGIES[kind])
    assert parse_event(to_payload(event)) == event


@HEAVY
@given(request=requests)
@example(Say(room="r" * 32, text="x" * 4000, id="i" * 64, action=True, ref="f" * 64))
@example(Say(room="lobby", text="\U0001f408" * 4000))  # 4000 characters, 16000 bytes
@example(HistoryQuery(room="dev", after=0, limit=1, ref=0))
@example(HistoryQuery(room="dev", before=0, limit=500))
@example(Ping(token=0))
@example(Ping(token=""))
@example(Hello(name="A" * 32, resume={}))
def test_parse_request_of_to_payload_is_identity(request: Request) -> None:
    assert parse_request(to_payload(request)) == request


@HEAVY
@given(event=events)
def test_parse_event_of_to_payload_is_identity(event: Frame) -> None:
    assert parse_event(to_payload(event)) == event


@given(frame=frames)
def test_encode_is_the_payload_in_a_length_prefixed_frame(frame: Frame) -> None:
    assert encode(frame) == encode_frame(to_payload(frame))


# -- serialization ------------------------------------------------------------------


def test_to_payload_is_compact_json() -> None:
    assert to_payload(Say(room="lobby", text="hi", id="c-17")) == (
        b'{"type":"say","room":"lobby","text":"hi","id":"c-17"}'
    )


def test_to_payload_writes_non_ascii_as_raw_utf8_not_escapes() -> None:
    text = "h\u00e9llo w\u00f6rld \u2713 \u732b \U0001f408"
    raw = to_payload(Say(room="lobby", text=text))
    assert text.encode("utf-8") in raw
    assert b"\\u" not in raw


# A JSON string, escapes included: what may hold whitespace in a compact payload.
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


@given(frame=frames)
@example(frame=Whisper("0", "0", "#000000", "0", 5.960464477539063e-08))
def test_to_payload_is_strict_utf8_json_with_no_insignificant_whitespace(frame: Frame) -> None:
    raw = to_payload(frame)
    obj = json.loads(raw.decode("utf-8"), parse_constant=lambda name: pytest.fail(name))
    assert obj == frame.to_dict()
    # Byte for byte the encoder's choice (orjson writes 5e-8 where json writes
    # 5e-08: both are JSON); what must hold is that nothing but strings is spaced.
    outside_strings = JSON_STRING.sub(b'""', raw)
    assert not any(byte in outside_strings for byte in b" \t\r\n"), raw


@given(text=st.text(st.characters(min_codepoint=0xA0, exclude_categories=["Cs"]), min_size=1))
def test_non_ascii_text_appears_verbatim_as_utf8(text: str) -> None:
    assert text.encode("utf-8") in to_payload(Say(room="lobby", text=text))


def test_unset_optional_members_are_left_out() -> None:
    assert json.loads(to_payload(Say(room="lobby", text="hi"))) == {
        "type": "say",
        "room": "lobby",
        "text": "hi",
    }
    assert json.loads(to_payload(Ping())) == {"type": "ping"}


def test_message_sender_is_from_on_the_wire() -> None:
    message = Message(room="lobby", seq=42, sender="alice", color="#e06c75", text="hi", ts=1.5)
    obj = json.loads(to_payload(message))
    assert obj["from"] == "alice"
    assert "sender" not in obj


# -- bad_frame: the payload is not a JSON object with a string type --------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty-payload"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b'{"type":"ping","token":"\xed\xa0\x80"}', id="utf8-encoded-surrogate"),
        pytest.param(b'{"type":"rooms"', id="truncated-json"),
        pytest.param(b"{'type':'rooms'}", id="single-quotes"),
        pytest.param(b'{"type":"rooms"} {}', id="trailing-garbage"),
        pytest.param(b'["type","rooms"]', id="array"),
        pytest.param(b'"rooms"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"{}", id="no-type"),
        pytest.param(b'{"type":null}', id="null-type"),
        pytest.param(b'{"type":7}', id="number-type"),
        pytest.param(b'{"type":["rooms"]}', id="list-type"),
        pytest.param(b'{"Type":"rooms"}', id="type-key-is-case-sensitive"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_payload_that_is_not_a_utf8_json_object_with_string_type_is_bad_frame(
    raw: bytes,
) -> None:
    assert rejected(raw).code is ErrorCode.BAD_FRAME
    with pytest.raises(RemoteProtocolError) as caught:
        parse_event(raw)
    assert caught.value.code is ErrorCode.BAD_FRAME


def test_decode_payload_returns_the_json_object() -> None:
    assert decode_payload(b'{"type":"rooms","ref":3}') == {"type": "rooms", "ref": 3}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"type":"rooms","x":NaN}', id="NaN"),
        pytest.param(b'{"type":"ping","token":Infinity}', id="Infinity"),
        pytest.param(b'{"type":"history","room":"dev","after":-Infinity}', id="-Infinity"),
    ],
)
def test_non_json_number_literals_are_bad_frame(raw: bytes) -> None:
    assert rejected(raw).code is ErrorCode.BAD_FRAME


def test_to_payload_refuses_to_write_a_non_json_number() -> None:
    with pytest.raises(ValueError):
        to_payload(Joined(room="lobby", name="alice", color="#e06c75", ts=float("nan")))


# -- unknown_type ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["shout", "", "Hello", "SAY", "welcome", "joined", "message"])
def test_unknown_request_type_is_unknown_type_with_ref_echoed(kind: str) -> None:
    error = rejected({"type": kind, "ref": REF})
    assert error.code is ErrorCode.UNKNOWN_TYPE
    assert error.ref == REF


def test_unknown_type_with_an_unusable_ref_is_still_unknown_type() -> None:
    error = rejected({"type": "shout", "ref": ["not", "a", "ref"]})
    assert error.code is ErrorCode.UNKNOWN_TYPE
    assert error.ref is None


@pytest.mark.parametrize("kind", ["shout", "", "say", "join", "hello", "future_event"])
def test_parse_event_of_an_unknown_type_returns_none(kind: str) -> None:
    assert parse_event(payload({"type": kind, "ref": REF, "anything": [1, 2]})) is None


def test_ping_and_pong_are_known_in_both_directions() -> None:
    assert "ping" in KNOWN_REQUEST_TYPES and "ping" in KNOWN_EVENT_TYPES
    assert parse_event(b'{"type":"ping","token":"x"}') == Ping(token="x")
    assert parse_request(b'{"type":"ping","token":"x"}') == Ping(token="x")


# -- bad_request: known type, missing / wrongly typed / out-of-range member ------------

TOO_LONG_TEXT = "x" * 4001
TOO_LONG_ID = "i" * 65

BAD_REQUESTS: list[Any] = [
    # hello
    pytest.param({"type": "hello", "protocol": 1}, id="hello-missing-name"),
    pytest.param({"type": "hello", "name": 5, "protocol": 1}, id="hello-name-number"),
    pytest.param({"type": "hello", "name": "alice"}, id="hello-missing-protocol"),
    pytest.param({"type": "hello", "name": "alice", "protocol": "1"}, id="hello-protocol-str"),
    pytest.param({"type": "hello", "name": "alice", "protocol": True}, id="hello-protocol-bool"),
    pytest.param({"type": "hello", "name": "alice", "protocol": 1.0}, id="hello-protocol-float"),
    pytest.param({"type": "hello", "name": "alice", "protocol": 1, "session": 5}, id="session-int"),
    pytest.param({"type": "hello", "name": "al", "protocol": 1, "resume": []}, id="resume-list"),
    pytest.param(
        {"type": "hello", "name": "al", "protocol": 1, "resume": {"rooms": []}},
        id="resume-rooms-list",
    ),
    pytest.param(
        {"type": "hello", "name": "al", "protocol": 1, "resume": {"rooms": {"lobby": -1}}},
        id="resume-seq-negative",
    ),
    pytest.param(
        {"type": "hello", "name": "al", "protocol": 1, "resume": {"rooms": {"lobby": "4"}}},
        id="resume-seq-str",
    ),
    pytest.param(
        {"type": "hello", "name": "al", "protocol": 1, "resume": {"rooms": {"lobby": True}}},
        id="resume-seq-bool",
    ),
    # join / part / who
    pytest.param({"type": "join"}, id="join-missing-room"),
    pytest.param({"type": "join", "room": None}, id="join-room-null"),
    pytest.param({"type": "join", "room": 7}, id="join-room-number"),
    pytest.param({"type": "part", "room": ["dev"]}, id="part-room-list"),
    pytest.param({"type": "who"}, id="who-missing-room"),
    # say
    pytest.param({"type": "say", "room": "lobby"}, id="say-missing-text"),
    pytest.param({"type": "say", "text": "hi"}, id="say-missing-room"),
    pytest.param({"type": "say", "room": "lobby", "text": ""}, id="say-text-empty"),
    pytest.param({"type": "say", "room": "lobby", "text": TOO_LONG_TEXT}, id="say-text-4001"),
    pytest.param({"type": "say", "room": "lobby", "text": 5}, id="say-text-number"),
    pytest.param({"type": "say", "room": "lobby", "text": None}, id="say-text-null"),
    pytest.param({"type": "say", "room": "lobby", "text": "\ud800"}, id="say-lone-surrogate"),
    pytest.param({"type": "say", "room": "lobby", "text": "a\udc00b"}, id="say-lone-low-surr"),
    pytest.param({"type": "say", "room": "lobby", "text": "hi", "id": TOO_LONG_ID}, id="id-65"),
    pytest.param({"type": "say", "room": "lobby", "text": "hi", "id": 17}, id="say-id-number"),
    pytest.param({"type": "say", "room": "lobby", "text": "hi", "action": "yes"}, id="action-str"),
    pytest.param({"type": "say", "room": "lobby", "text": "hi", "action": 1}, id="action-int"),
    # whisper
    pytest.param({"type": "whisper", "text": "psst"}, id="whisper-missing-to"),
    pytest.param({"type": "whisper", "to": 5, "text": "psst"}, id="whisper-to-number"),
    pytest.param({"type": "whisper", "to": "bob"}, id="whisper-missing-text"),
    pytest.param({"type": "whisper", "to": "bob", "text": ""}, id="whisper-text-empty"),
    pytest.param({"type": "whisper", "to": "bob", "text": TOO_LONG_TEXT}, id="whisper-text-4001"),
    pytest.param({"type": "whisper", "to": "bob", "text": "p", "id": TOO_LONG_ID}, id="wh-id-65"),
    # history
    pytest.param({"type": "history"}, id="history-missing-room"),
    pytest.param({"type": "history", "room": "dev", "limit": 0}, id="history-limit-0"),
    pytest.param({"type": "history", "room": "dev", "limit": 501}, id="history-limit-501"),
    pytest.param({"type": "history", "room": "dev", "limit": -5}, id="history-limit-negative"),
    pytest.param({"type": "history", "room": "dev", "limit": True}, id="history-limit-bool"),
    pytest.param({"type": "history", "room": "dev", "limit": 10.0}, id="history-limit-float"),
    pytest.param({"type": "history", "room": "dev", "limit": "10"}, id="history-limit-str"),
    pytest.param({"type": "history", "room": "dev", "after": "40"}, id="history-after-str"),
    pytest.param({"type": "history", "room": "dev", "after": -1}, id="history-after-negative"),
    pytest.param({"type": "history", "room": "dev", "before": False}, id="history-before-bool"),
    pytest.param(
        {"type": "history", "room": "dev", "after": 1, "before": 9}, id="history-after-and-before"
    ),
    # nick / ping / pong / quit
    pytest.param({"type": "nick"}, id="nick-missing-name"),
    pytest.param({"type": "nick", "name": 5}, id="nick-name-number"),
    pytest.param({"type": "ping", "token": True}, id="ping-token-bool"),
    pytest.param({"type": "ping", "token": 1.5}, id="ping-token-float"),
    pytest.param({"type": "pong", "token": {"x": 1}}, id="pong-token-object"),
    pytest.param({"type": "quit", "reason": 5}, id="quit-reason-number"),
    pytest.param({"type": "quit", "reason": TOO_LONG_TEXT}, id="quit-reason-4001"),
]


@pytest.mark.parametrize("obj", BAD_REQUESTS)
def test_invalid_member_of_known_type_is_bad_request_with_ref_echoed(obj: dict[str, Any]) -> None:
    error = rejected({**obj, "ref": REF})
    assert error.code is ErrorCode.BAD_REQUEST
    assert error.ref == REF


def test_lone_surrogate_escape_in_text_is_bad_request() -> None:
    raw = b'{"type":"say","room":"lobby","text":"\\ud800","ref":1}'
    error = rejected(raw)
    assert error.code is ErrorCode.BAD_REQUEST
    assert error.ref == 1


def test_error_frame_built_from_a_rejection_carries_code_and_ref() -> None:
    error = rejected({"type": "say", "room": "lobby", "text": "", "ref": 9})
    frame = Error.from_exception(error)
    assert frame == Error(code="bad_request", message=error.message, ref=9)
    assert json.loads(to_payload(frame))["ref"] == 9


# -- boundaries that are inside the range -----------------------------------------------


@pytest.mark.parametrize("text", ["x", "x" * 4000, "\u732b" * 4000, "\U0001f408" * 4000])
def test_text_of_1_to_4000_characters_is_accepted(text: str) -> None:
    request = parse_request(payload({"type": "say", "room": "lobby", "text": text}))
    assert request == Say(room="lobby", text=text)


def test_text_may_hold_any_non_surrogate_character_including_controls() -> None:
    text = "\x00\t\n\x7f\u2028\ufeff\U0010ffff"
    assert parse_request(payload({"type": "say", "room": "lobby", "text": text})) == Say(
        room="lobby", text=text
    )


def test_id_of_64_characters_is_accepted() -> None:
    obj = {"type": "say", "room": "lobby", "text": "hi", "id": "i" * 64}
    assert parse_request(payload(obj)) == Say(room="lobby", text="hi", id="i" * 64)


@pytest.mark.parametrize("limit", [1, 50, 500])
def test_history_limit_from_1_to_500_is_accepted(limit: int) -> None:
    obj = {"type": "history", "room": "dev", "before": 40, "limit": limit}
    assert parse_request(payload(obj)) == HistoryQuery(room="dev", before=40, limit=limit)


def test_history_limit_defaults_to_50() -> None:
    assert parse_request(b'{"type":"history","room":"dev","after":40}') == HistoryQuery(
        room="dev", after=40, limit=50
    )


def test_hello_resume_is_read_as_room_to_highest_seq() -> None:
    obj = {"type": "hello", "name": "alice", "protocol": 1, "session": "s3cr3t",
           "resume": {"rooms": {"lobby": 41, "dev": 7}}}  # fmt: skip
    assert parse_request(payload(obj)) == Hello(
        name="alice", session="s3cr3t", resume={"lobby": 41, "dev": 7}
    )


# -- names and rooms --------------------------------------------------------------------

BAD_NAMES = ["", "a" * 33, "al ice", "al!ce", "al.ice", "\u00e5lice", "alice\n", "\u540d\u524d"]
GOOD_NAMES = ["a", "A" * 32, "Al_ice-9", "_", "-"]
BAD_ROOMS = ["", "a" * 33, "Dev", "LOBBY", "my room", "dev\n", "d\u00e9v", "dev!", "#dev"]
GOOD_ROOMS = ["a", "z" * 32, "dev_ops-2", "_", "-", "0"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("kind", ["hello", "nick"])
def test_bad_user_name_is_bad_name_with_ref_echoed(kind: str, name: str) -> None:
    error = rejected({"type": kind, "name": name, "protocol": 1, "ref": REF})
    assert error.code is ErrorCode.BAD_NAME
    assert error.ref == REF


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_user_names_are_accepted(name: str) -> None:
    assert is_valid_name(name)
    assert parse_request(payload({"type": "nick", "name": name})) == Nick(name=name)


@pytest.mark.parametrize("room", BAD_ROOMS)
@pytest.mark.parametrize("kind", ["join", "part", "who", "say", "history"])
def test_bad_room_name_is_bad_room_with_ref_echoed(kind: str, room: str) -> None:
    error = rejected({"type": kind, "room": room, "text": "hi", "ref": REF})
    assert error.code is ErrorCode.BAD_ROOM
    assert error.ref == REF


@pytest.mark.parametrize("room", BAD_ROOMS)
def test_bad_room_name_in_hello_resume_is_bad_room(room: str) -> None:
    obj = {"type": "hello", "name": "alice", "protocol": 1, "resume": {"rooms": {room: 1}},
           "ref": REF}  # fmt: skip
    error = rejected(obj)
    assert error.code is ErrorCode.BAD_ROOM
    assert error.ref == REF


@pytest.mark.parametrize("room", GOOD_ROOMS)
def test_good_room_names_are_accepted(room: str) -> None:
    assert is_valid_room(room)
    assert parse_request(payload({"type": "join", "room": room})) == Join(room=room)


# -- ref and forward compatibility -------------------------------------------------------


@pytest.mark.parametrize("ref", ["", "c-17", "r" * 64, 0, -3, 2**70])
def test_ref_is_echoed_on_the_parsed_request(ref: str | int) -> None:
    assert parse_request(payload({"type": "rooms", "ref": ref})) == Rooms(ref=ref)
    assert parse_request(payload({"type": "join", "room": "dev", "ref": ref})).ref == ref


@pytest.mark.parametrize("ref", ["r" * 65, True, 1.5, [1], {"id": 1}, "\ud800"], ids=repr)
def test_unusable_ref_is_bad_request_and_not_echoed(ref: object) -> None:
    error = rejected({"type": "rooms", "ref": ref})
    assert error.code is ErrorCode.BAD_REQUEST
    assert error.ref is None


def test_unknown_extra_members_are_ignored() -> None:
    obj = {"type": "say", "room": "lobby", "text": "hi", "ref": 4, "priority": "high",
           "extensions": {"x": [1, None]}, "action": True}  # fmt: skip
    assert parse_request(payload(obj)) == Say(room="lobby", text="hi", action=True, ref=4)


def test_unknown_extra_members_are_ignored_in_events() -> None:
    obj = {"type": "joined", "room": "dev", "name": "alice", "color": "#e06c75", "ts": 1.5,
           "badge": "admin"}  # fmt: skip
    assert parse_event(payload(obj)) == Joined(room="dev", name="alice", color="#e06c75", ts=1.5)


def test_whisper_request_parses_to_whisper_to() -> None:
    raw = b'{"type":"whisper","to":"bob","text":"psst","id":"c-18"}'
    assert parse_request(raw) == WhisperTo(to="bob", text="psst", id="c-18")


def test_quit_reason_is_optional() -> None:
    assert parse_request(b'{"type":"quit"}') == Quit()
    assert parse_request(b'{"type":"quit","reason":"bye"}') == Quit(reason="bye")


# -- robustness: junk never raises anything but RemoteProtocolError ----------------------


@HEAVY
@given(obj=arbitrary_typed_objects())
def test_arbitrary_object_of_known_type_raises_only_remote_protocol_error(
    obj: dict[str, Any],
) -> None:
    for parse in (parse_request, parse_event):
        with contextlib.suppress(RemoteProtocolError):
            parse(obj)
        with contextlib.suppress(RemoteProtocolError):
            parse(payload(obj))  # json.dumps escapes any lone surrogate as \udXXX


@HEAVY
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_remote_protocol_error(raw: bytes) -> None:
    for parse in (parse_request, parse_event):
        with contextlib.suppress(RemoteProtocolError):
            parse(raw)


@HEAVY
@given(frame=frames, data=st.data())
def test_corrupted_valid_payloads_raise_only_remote_protocol_error(
    frame: Frame, data: st.DataObject
) -> None:
    raw = bytearray(to_payload(frame))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for parse in (parse_request, parse_event):
        with contextlib.suppress(RemoteProtocolError):
            parse(bytes(raw[:cut]))
