"""Specification of frames as values: checked when built, read and written from their fields.

h11's rule: building a frame the protocol does not allow is a bug in the code
building it (:class:`LocalProtocolError`, raised at once, where the bug is);
receiving one is the peer's fault (:class:`RemoteProtocolError`, carrying
the code to answer with). One declaration per member gives both, with the same
code and text, and derives ``to_dict``/``from_dict``, whose bytes must stay
exactly those version 0.1 wrote by hand.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from chattycat.protocol.fields import STRING, WireObject, wire, wire_codec
from chattycat.protocol.messages import (
    Error,
    Frame,
    Hello,
    History,
    HistoryQuery,
    Join,
    Joined,
    Member,
    Message,
    Nick,
    Notice,
    Part,
    Parted,
    Ping,
    Pong,
    Quit,
    Renamed,
    Request,
    RoomInfo,
    RoomList,
    Rooms,
    Roster,
    Say,
    Welcome,
    Whisper,
    WhisperTo,
    Who,
    parse_event,
    parse_request,
    to_payload,
)
from tests.strategies import EVENT_STRATEGIES, REQUEST_STRATEGIES, members, room_infos

PER_TYPE = settings(max_examples=60, deadline=None)

WIRE_TYPES: dict[type[Any], st.SearchStrategy[Any]] = {
    **REQUEST_STRATEGIES,
    **EVENT_STRATEGIES,
    Member: members,
    RoomInfo: room_infos,
}


def wire_key(kind: type[Any], attr: str) -> str:
    """The JSON member name of field ``attr``, as its metadata declares it."""
    meta = next(f.metadata for f in fields(kind) if f.name == attr)
    return str(meta["wire"] or attr)


def on_the_wire(kind: type[Any], attr: str, value: object) -> object:
    """``value`` as the member would carry it in JSON (``resume`` is wrapped in ``rooms``)."""
    meta = next(f.metadata for f in fields(kind) if f.name == attr)
    to_wire = meta["kind"].to_wire
    return value if to_wire is None or not isinstance(value, dict) else to_wire(value)


def parse(frame: Frame, obj: dict[str, Any]) -> Any:
    """Read ``obj`` the way the receiving side of ``frame`` would."""
    return parse_request(obj) if isinstance(frame, Request) else parse_event(obj)


# -- round trips through to_dict / from_dict ------------------------------------------


@PER_TYPE
@pytest.mark.parametrize("kind", WIRE_TYPES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_wire_type_round_trips_through_to_dict_and_from_dict(
    kind: type[Any], data: st.DataObject
) -> None:
    value = data.draw(WIRE_TYPES[kind])
    obj = value.to_dict()
    assert kind.from_dict(obj) == value
    assert kind.from_dict(json.loads(json.dumps(obj))) == value


@PER_TYPE
@pytest.mark.parametrize("kind", [*REQUEST_STRATEGIES, *EVENT_STRATEGIES], ids=lambda c: c.__name__)
@given(data=st.data())
def test_to_dict_of_every_frame_starts_with_its_type(
    kind: type[Frame], data: st.DataObject
) -> None:
    obj = data.draw(WIRE_TYPES[kind]).to_dict()
    assert next(iter(obj.items())) == ("type", kind.TYPE)


# -- a bad value: the builder's bug, or the peer's violation ------------------------------


def test_say_to_a_bad_room_raises_local_protocol_error_when_built() -> None:
    with pytest.raises(LocalProtocolError) as caught:
        Say("NOT A ROOM", "")
    # The room is checked before the text, as the server reads them.
    assert caught.value.code is ErrorCode.BAD_ROOM
    assert not isinstance(caught.value, RemoteProtocolError)


def test_local_protocol_error_is_a_value_error_like_any_bad_argument() -> None:
    with pytest.raises(ValueError):
        Join("Not A Room")


def test_the_same_say_from_a_peer_is_a_remote_protocol_error_echoing_its_ref() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_request({"type": "say", "room": "NOT A ROOM", "text": "", "ref": 7})
    assert (caught.value.code, caught.value.ref) == (ErrorCode.BAD_ROOM, 7)
    assert not isinstance(caught.value, LocalProtocolError)


# Whatever the member, a JSON list of scalars is never a valid value for it.
never_valid = st.lists(st.integers() | st.text(max_size=3), min_size=1, max_size=3)


@PER_TYPE
@pytest.mark.parametrize("kind", WIRE_TYPES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_any_member_of_any_type_with_a_value_of_the_wrong_kind_is_refused_both_ways(
    kind: type[Any], data: st.DataObject
) -> None:
    valid = data.draw(WIRE_TYPES[kind])
    attr = data.draw(st.sampled_from([f.name for f in fields(kind)]))
    bad = data.draw(never_valid)
    with pytest.raises(LocalProtocolError) as built:
        replace(valid, **{attr: bad})
    obj = valid.to_dict() | {wire_key(kind, attr): bad}
    with pytest.raises(RemoteProtocolError) as read:
        kind.from_dict(obj)
    assert built.value.code is read.value.code is ErrorCode.BAD_REQUEST


SAY = Say("lobby", "hi")
HELLO = Hello("alice")
HISTORY_QUERY = HistoryQuery("dev")
MESSAGE = Message("lobby", 1, "alice", "#e06c75", "hi", 1.5)
WELCOME = Welcome("alice", "#e06c75", "s3cret", "chattycat/1.0", 65536, 30)

BROKEN_RULES: list[Any] = [
    # requests: the rules the server enforces
    pytest.param(SAY, "room", "NOT A ROOM", ErrorCode.BAD_ROOM, id="say-room"),
    pytest.param(Join("dev"), "room", "Dev", ErrorCode.BAD_ROOM, id="join-upper-case"),
    pytest.param(Part("dev"), "room", "", ErrorCode.BAD_ROOM, id="part-empty-room"),
    pytest.param(Who("dev"), "room", "d" * 33, ErrorCode.BAD_ROOM, id="who-room-33"),
    pytest.param(HISTORY_QUERY, "room", "#dev", ErrorCode.BAD_ROOM, id="history-room"),
    pytest.param(HELLO, "name", "bad name", ErrorCode.BAD_NAME, id="hello-name"),
    pytest.param(Nick("al"), "name", "a" * 33, ErrorCode.BAD_NAME, id="nick-name-33"),
    pytest.param(HELLO, "resume", {"Lobby": 1}, ErrorCode.BAD_ROOM, id="resume-room"),
    pytest.param(HELLO, "resume", {"lobby": -1}, ErrorCode.BAD_REQUEST, id="resume-seq"),
    pytest.param(HELLO, "protocol", -1, ErrorCode.BAD_REQUEST, id="hello-protocol"),
    pytest.param(HELLO, "session", "s" * 257, ErrorCode.BAD_REQUEST, id="hello-session"),
    pytest.param(SAY, "text", "", ErrorCode.BAD_REQUEST, id="say-text-empty"),
    pytest.param(SAY, "text", "x" * 4001, ErrorCode.BAD_REQUEST, id="say-text-4001"),
    pytest.param(SAY, "text", "a\ud800", ErrorCode.BAD_REQUEST, id="say-lone-surrogate"),
    pytest.param(SAY, "text", None, ErrorCode.BAD_REQUEST, id="say-text-missing"),
    pytest.param(SAY, "id", "i" * 65, ErrorCode.BAD_REQUEST, id="say-id-65"),
    pytest.param(SAY, "action", 1, ErrorCode.BAD_REQUEST, id="say-action-int"),
    pytest.param(SAY, "ref", "r" * 65, ErrorCode.BAD_REQUEST, id="ref-65"),
    pytest.param(SAY, "ref", 10**64, ErrorCode.BAD_REQUEST, id="ref-65-digits"),
    pytest.param(Rooms(), "ref", True, ErrorCode.BAD_REQUEST, id="ref-bool"),
    pytest.param(WhisperTo("bob", "psst"), "to", 5, ErrorCode.BAD_REQUEST, id="whisper-to"),
    pytest.param(WhisperTo("bob", "psst"), "text", "", ErrorCode.BAD_REQUEST, id="whisper-text"),
    pytest.param(HISTORY_QUERY, "limit", 0, ErrorCode.BAD_REQUEST, id="history-limit-0"),
    pytest.param(HISTORY_QUERY, "limit", 501, ErrorCode.BAD_REQUEST, id="history-limit-501"),
    pytest.param(HISTORY_QUERY, "after", -1, ErrorCode.BAD_REQUEST, id="history-after"),
    pytest.param(HISTORY_QUERY, "before", True, ErrorCode.BAD_REQUEST, id="history-before"),
    pytest.param(Ping(), "token", 1.5, ErrorCode.BAD_REQUEST, id="ping-token-float"),
    pytest.param(Pong(), "token", "t" * 257, ErrorCode.BAD_REQUEST, id="pong-token-257"),
    pytest.param(Quit(), "reason", "x" * 4001, ErrorCode.BAD_REQUEST, id="quit-reason"),
    # events: checked by JSON type, as a client reads them
    pytest.param(MESSAGE, "seq", -1, ErrorCode.BAD_REQUEST, id="message-seq"),
    pytest.param(MESSAGE, "ts", "1.5", ErrorCode.BAD_REQUEST, id="message-ts"),
    pytest.param(MESSAGE, "sender", None, ErrorCode.BAD_REQUEST, id="message-from"),
    pytest.param(MESSAGE, "text", 5, ErrorCode.BAD_REQUEST, id="message-text"),
    pytest.param(MESSAGE, "action", "yes", ErrorCode.BAD_REQUEST, id="message-action"),
    pytest.param(WELCOME, "heartbeat", True, ErrorCode.BAD_REQUEST, id="welcome-heartbeat"),
    pytest.param(WELCOME, "max_frame", -1, ErrorCode.BAD_REQUEST, id="welcome-max-frame"),
    pytest.param(WELCOME, "ref", [1], ErrorCode.BAD_REQUEST, id="welcome-ref"),
    pytest.param(
        Joined("dev", "al", "#fff", 1.0), "ts", None, ErrorCode.BAD_REQUEST, id="joined-ts"
    ),
    pytest.param(Parted("dev", "al", "part"), "reason", 5, ErrorCode.BAD_REQUEST, id="parted"),
    pytest.param(Renamed("al", "bo", "#fff"), "new", 5, ErrorCode.BAD_REQUEST, id="renamed"),
    pytest.param(Notice("motd", "hi"), "text", None, ErrorCode.BAD_REQUEST, id="notice-text"),
    pytest.param(Error("internal", "oops"), "message", 5, ErrorCode.BAD_REQUEST, id="error"),
    pytest.param(
        Whisper("al", "bo", "#fff", "psst", 1.0), "to", 5, ErrorCode.BAD_REQUEST, id="whisper"
    ),
]


@pytest.mark.parametrize(("valid", "attr", "bad", "code"), BROKEN_RULES)
def test_building_a_frame_with_an_invalid_value_raises_local_protocol_error(
    valid: Frame, attr: str, bad: object, code: ErrorCode
) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        replace(valid, **{attr: bad})
    assert caught.value.code is code


@pytest.mark.parametrize(("valid", "attr", "bad", "code"), BROKEN_RULES)
def test_parsing_the_same_invalid_member_raises_remote_protocol_error_with_the_same_code_and_text(
    valid: Frame, attr: str, bad: object, code: ErrorCode
) -> None:
    with pytest.raises(LocalProtocolError) as built:
        replace(valid, **{attr: bad})
    obj = valid.to_dict() | {wire_key(type(valid), attr): on_the_wire(type(valid), attr, bad)}
    if "ref" not in obj:
        obj["ref"] = "r-1"
    with pytest.raises(RemoteProtocolError) as read:
        parse(valid, obj)
    assert (read.value.code, read.value.message) == (code, built.value.message)
    assert not read.value.fatal
    if isinstance(valid, Request) and attr != "ref":
        assert read.value.ref == "r-1"


def test_after_and_before_together_are_refused_both_ways() -> None:
    with pytest.raises(LocalProtocolError) as built:
        HistoryQuery("dev", after=1, before=9)
    with pytest.raises(RemoteProtocolError) as read:
        parse_request({"type": "history", "room": "dev", "after": 1, "before": 9, "ref": 2})
    assert (read.value.code, read.value.message, read.value.ref) == (
        ErrorCode.BAD_REQUEST,
        built.value.message,
        2,
    )


def test_list_members_must_be_tuples_of_their_type_when_built() -> None:
    with pytest.raises(LocalProtocolError):
        Roster("dev", [Member("al", "#fff")])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        History("dev", (Member("al", "#fff"),))  # type: ignore[arg-type]
    assert RoomList((RoomInfo("dev", 2),)).rooms == (RoomInfo("dev", 2),)


def test_a_bad_entry_of_a_peer_list_is_the_peer_error() -> None:
    obj = {"type": "roster", "room": "dev", "members": [{"name": "al"}], "ref": "w"}
    with pytest.raises(RemoteProtocolError) as caught:
        parse_event(obj)
    assert (caught.value.code, caught.value.ref) == (ErrorCode.BAD_REQUEST, "w")


def test_error_without_message_text_reads_as_empty_text() -> None:
    assert parse_event({"type": "error", "code": "internal"}) == Error("internal", "")


def test_events_are_not_held_to_the_naming_rules() -> None:
    # A client stays usable against a server that stretches the rules.
    odd = Message("Not A Room", 1, "not a name!", "red", "hi", 1.0)
    assert parse_event(to_payload(odd)) == odd


def test_every_protocol_error_raised_is_one_of_the_two_kinds() -> None:
    for exc in (LocalProtocolError, RemoteProtocolError):
        assert issubclass(exc, ProtocolError)
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)


# -- bytes: exactly what version 0.1 wrote ---------------------------------------------

GOLDEN: list[Any] = [
    pytest.param(
        Hello("alice", session="s", resume={"lobby": 41}, ref=1),
        b'{"type":"hello","ref":1,"name":"alice","protocol":1,"session":"s",'
        b'"resume":{"rooms":{"lobby":41}}}',
        id="hello",
    ),
    pytest.param(
        HistoryQuery("dev", before=40, limit=100, ref="h"),
        b'{"type":"history","ref":"h","room":"dev","limit":100,"before":40}',
        id="history-query",
    ),
    pytest.param(
        Say("lobby", "hi", "c-17", action=True),
        b'{"type":"say","room":"lobby","text":"hi","id":"c-17","action":true}',
        id="say",
    ),
    pytest.param(Ping(token=0), b'{"type":"ping","token":0}', id="ping-token-0"),
    pytest.param(Quit("bye"), b'{"type":"quit","reason":"bye"}', id="quit"),
    pytest.param(
        replace(WELCOME, ref=3),
        b'{"type":"welcome","name":"alice","color":"#e06c75","protocol":1,'
        b'"server":"chattycat/1.0","session":"s3cret","max_frame":65536,"heartbeat":30,"ref":3}',
        id="welcome",
    ),
    pytest.param(
        Message("lobby", 42, "alice", "#e06c75", "hi", 1.5, "c-17", True),
        b'{"type":"message","room":"lobby","seq":42,"from":"alice","color":"#e06c75",'
        b'"text":"hi","ts":1.5,"id":"c-17","action":true}',
        id="message",
    ),
    pytest.param(
        Whisper("alice", "bob", "#e06c75", "psst", 2),
        b'{"type":"whisper","from":"alice","to":"bob","color":"#e06c75","text":"psst","ts":2}',
        id="whisper",
    ),
    pytest.param(
        Roster("dev", (Member("al", "#fff"),), more=True, ref=5),
        b'{"type":"roster","room":"dev","members":[{"name":"al","color":"#fff"}],'
        b'"more":true,"ref":5}',
        id="roster",
    ),
    pytest.param(
        History("dev", (), truncated=True),
        b'{"type":"history","room":"dev","messages":[],"truncated":true}',
        id="history",
    ),
    pytest.param(
        RoomList((RoomInfo("lobby", 3),)),
        b'{"type":"room_list","rooms":[{"room":"lobby","members":3}]}',
        id="room-list",
    ),
    pytest.param(
        Error("bad_room", "no", ref="r", id="c-1"),
        b'{"type":"error","code":"bad_room","message":"no","ref":"r","id":"c-1"}',
        id="error",
    ),
    pytest.param(
        Parted("dev", "al", "part"), b'{"type":"parted","room":"dev","name":"al","reason":"part"}'
    ),
]


@pytest.mark.parametrize(("frame", "raw"), GOLDEN)
def test_payload_bytes_and_member_order_are_those_of_version_0_1(frame: Frame, raw: bytes) -> None:
    assert to_payload(frame) == raw


def test_a_default_that_is_not_none_or_false_is_always_written() -> None:
    assert b'"limit":50' in to_payload(HistoryQuery("dev"))
    assert b'"protocol":1' in to_payload(Hello("alice"))


def test_falsy_values_other_than_none_and_false_are_written() -> None:
    assert to_payload(Ping(token="")) == b'{"type":"ping","token":""}'
    assert to_payload(Hello("al", resume={})) == (
        b'{"type":"hello","name":"al","protocol":1,"resume":{"rooms":{}}}'
    )


# -- the machinery ------------------------------------------------------------------------


def test_frames_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAY.text = "changed"  # type: ignore[misc]


def test_a_wire_class_needs_wire_metadata_on_every_field() -> None:
    @dataclass(frozen=True, slots=True)
    class Bare(WireObject):
        name: str

    with pytest.raises(TypeError, match=r"Bare\.name"):
        wire_codec(Bare)


def test_a_wire_class_without_wire_codec_cannot_be_built_or_read() -> None:
    @dataclass(frozen=True, slots=True)
    class Forgotten(WireObject):
        name: str = field(metadata=wire(STRING))

    with pytest.raises(TypeError, match="wire_codec"):
        Forgotten("x")
    with pytest.raises(TypeError, match="wire_codec"):
        Forgotten.from_dict({"name": "x"})


def test_a_derived_class_reads_and_writes_its_wire_names_in_wire_order() -> None:
    @wire_codec
    @dataclass(frozen=True, slots=True)
    class Shout(Frame):
        TYPE: ClassVar[str] = "shout"
        WIRE_ORDER: ClassVar[tuple[str, ...]] = ("loud", "sender")
        sender: str = field(metadata=wire(STRING, "from"))
        loud: str = field(metadata=wire(STRING))

    shout = Shout("al", "HI")
    assert shout.to_dict() == {"type": "shout", "loud": "HI", "from": "al"}
    assert list(shout.to_dict()) == ["type", "loud", "from"]
    assert Shout.from_dict({"from": "al", "loud": "HI"}) == shout
    with pytest.raises(RemoteProtocolError, match="'from' is required"):
        Shout.from_dict({"loud": "HI"})
    with pytest.raises(LocalProtocolError, match="'from' must be a string"):
        Shout(5, "HI")  # type: ignore[arg-type]
