"""Specification of what is said about each client event: words, roles, bells, sanitizing."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from chattycat.client.client import Closed, Connected, ConnectionLost, Failed, Reconnecting
from chattycat.protocol.messages import (
    Error,
    History,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Registered,
    Renamed,
    RoomInfo,
    RoomList,
    Roster,
    Welcome,
    Whisper,
)
from chattycat.ui.describe import DisplayLine, EventDescriber, Role, Span, safe_color

TS = 1_700_000_000.0
CLOCK_TS = 1_700_000_123.0
RED = "#e06c75"
BLUE = "#61afef"
ME = "carol"


def describer(**kwargs: Any) -> EventDescriber:
    return EventDescriber(clock=lambda: CLOCK_TS, **kwargs)


def one(event: Any, me: str = ME, d: EventDescriber | None = None) -> DisplayLine:
    [line] = (d or describer()).describe(event, me)
    return line


def msg(text: str = "hi", sender: str = "alice", room: str = "lobby", seq: int = 1,
        **kw: Any) -> Message:
    return Message(room, seq, sender, kw.pop("color", RED), text, TS, **kw)


def roles(line: DisplayLine) -> list[tuple[str, Role]]:
    return [(span.text, span.role) for span in line.spans]


# -- chat -------------------------------------------------------------------------------


def test_message_is_name_in_its_color_then_text_tagged_with_its_room() -> None:
    line = one(msg("hello there"))
    assert line.spans == (Span("alice", Role.NAME, RED), Span(": "), Span("hello there"))
    assert (line.ts, line.room, line.bell) == (TS, "lobby", False)
    assert line.text == "alice: hello there"


def test_action_is_star_name_text() -> None:
    line = one(msg("waves", action=True))
    assert roles(line) == [("* ", Role.ACTION), ("alice", Role.NAME), (" ", Role.TEXT),
                           ("waves", Role.TEXT)]


def test_mention_of_own_name_is_marked_and_rings() -> None:
    line = one(msg("hey CAROL, look"))
    assert roles(line)[2:] == [("hey ", Role.TEXT), ("CAROL", Role.MENTION),
                               (", look", Role.TEXT)]
    assert line.bell


@pytest.mark.parametrize(("text", "mentioned"),
                         [("also, alright", False), ("@al: ping", True), ("al", True)])
def test_mention_needs_a_whole_word(text: str, mentioned: bool) -> None:
    assert one(msg(text), me="al").bell is mentioned


def test_own_message_naming_oneself_is_not_a_mention() -> None:
    line = one(msg("alice here", sender="alice"), me="alice")
    assert not line.bell
    assert Role.MENTION not in [span.role for span in line.spans]


def test_incoming_whisper_rings_and_own_echo_does_not() -> None:
    line = one(Whisper("alice", ME, RED, "psst", TS))
    assert line.text == "[whisper] alice \u2192 carol: psst"
    assert line.spans[0] == Span("[whisper]", Role.WHISPER)
    assert Span("carol", Role.NAME) in line.spans  # the recipient has no known color
    assert (line.room, line.bell) == (None, True)
    assert not one(Whisper(ME, "alice", BLUE, "psst", TS)).bell


def test_whispered_action() -> None:
    assert one(Whisper("alice", ME, RED, "waves", TS, action=True)).text == (
        "[whisper] * alice \u2192 carol waves"
    )


def test_history_has_one_header_and_does_not_ring() -> None:
    d = describer()
    first = d.describe(History("lobby", (msg("a"), msg("carol?", seq=2)), more=True), ME)
    second = d.describe(History("lobby", (msg("b", seq=3),)), ME)
    assert [line.text for line in first] == [
        "\u2014 history of #lobby \u2014", "alice: a", "alice: carol?"
    ]
    assert first[0].ts == CLOCK_TS and first[0].room == "lobby"
    assert first[0].spans[0].role is Role.INFO
    assert [line.text for line in second] == ["alice: b"]
    assert not any(line.bell for line in first)
    assert Role.MENTION in [span.role for span in first[2].spans]  # marked, silent


def test_truncated_history_points_to_the_history_command() -> None:
    [head, _] = describer().describe(History("lobby", (msg(),), truncated=True), ME)
    assert head.text.endswith("(older messages skipped: /history to page back)")


def test_an_empty_page_says_there_is_nothing_older() -> None:
    # The client drops histories with nothing new, so an empty one is the
    # answer to /history: before, it printed nothing at all.
    [line] = describer().describe(History("lobby", ()), ME)
    assert (line.text, line.room) == ("no older messages in #lobby", "lobby")
    assert [span.role for span in line.spans] == [Role.INFO]


def test_an_empty_last_part_of_a_page_adds_nothing() -> None:
    d = describer()
    d.describe(History("lobby", (msg(),), more=True), ME)
    assert d.describe(History("lobby", ()), ME) == []


# -- membership -------------------------------------------------------------------------


def test_joined() -> None:
    line = one(Joined("dev", "bob", BLUE, TS))
    assert roles(line) == [("\u2192 ", Role.JOIN), ("bob", Role.NAME), (" joined #dev", Role.JOIN)]
    assert line.spans[1].color == BLUE
    assert (line.ts, line.room) == (TS, None)


@pytest.mark.parametrize(("reason", "text"), [
    ("part", "\u2190 bob left #dev"),
    ("quit", "\u2190 bob left #dev (quit)"),
    ("disconnected", "\u2190 bob left #dev (disconnected)"),
    ("bye", "\u2190 bob left #dev (quit: bye)"),
])
def test_parted_says_why(reason: str, text: str) -> None:
    line = one(Parted("dev", "bob", reason))
    assert line.text == text
    assert line.ts == CLOCK_TS
    assert line.spans[-1].role is Role.PART


def test_parted_name_gets_the_color_the_caller_knows() -> None:
    d = describer(member_color=lambda room, name: BLUE if (room, name) == ("dev", "bob") else None)
    assert one(Parted("dev", "bob", "part"), d=d).spans[1] == Span("bob", Role.NAME, BLUE)


def test_roster_lists_colored_names_and_a_continuation_has_no_header() -> None:
    d = describer()
    first = one(Roster("dev", (Member("alice", RED), Member("bob", BLUE)), more=True), d=d)
    rest = one(Roster("dev", (Member("zed", "nonsense"),)), d=d)
    assert (first.text, first.room) == ("members of #dev: alice, bob", "dev")
    assert Span("bob", Role.NAME, BLUE) in first.spans
    assert rest.spans == (Span("zed", Role.NAME),)


def test_an_empty_roster_says_nobody_is_there() -> None:
    # Before, "/who" on a room with history but no members printed a bare header.
    [line] = describer().describe(Roster("dev", ()), ME)
    assert (line.text, line.room) == ("nobody is in #dev", "dev")


def test_room_list() -> None:
    line = one(RoomList((RoomInfo("dev", 2), RoomInfo("lobby", 5))))
    assert line.text == "rooms: #dev (2), #lobby (5)"
    assert Span("#dev", Role.ROOM) in line.spans
    assert one(RoomList(())).text == "no rooms have members"


def test_rename_of_someone_else_and_of_oneself() -> None:
    assert one(Renamed("bob", "rob", BLUE)).text == "bob is now known as rob"
    own = one(Renamed("Carol", "caz", RED))
    assert own.text == "you are now known as caz"
    assert own.spans[-1] == Span("caz", Role.NAME, RED)


# -- server and connection --------------------------------------------------------------


def test_notice_and_error() -> None:
    assert roles(one(Notice("shutdown", "going down"))) == [
        ("notice shutdown: going down", Role.NOTICE)
    ]
    assert roles(one(Error("not_in_room", "you are not in #dev"))) == [
        ("error not_in_room: you are not in #dev", Role.ERROR)
    ]


def test_connection_lines() -> None:
    welcome = Welcome("carol", RED, "s3cret", "chattycat/1.0", 65536, 30)
    connected = one(Connected(welcome, False))
    assert connected.text == "connected as carol (chattycat/1.0)"
    assert [span.role for span in connected.spans] == [Role.ONLINE, Role.NAME, Role.INFO]
    assert one(Connected(welcome, True)).text.startswith("reconnected as carol")
    lost = one(ConnectionLost("connection reset", 3.2))
    assert lost.text == "connection lost (connection reset), reconnecting in 4 s"
    assert lost.spans[0].role is Role.OFFLINE
    assert one(ConnectionLost("x", 0.0)).text == "connection lost (x)"
    assert one(Reconnecting(2)).text == "reconnecting (attempt 2)\u2026"
    failed = one(Failed("name taken", "name_taken"))
    assert roles(failed) == [("failed [name_taken]: name taken", Role.ERROR)]
    assert one(Failed("refused", None)).text == "failed: refused"
    assert roles(one(Closed())) == [("disconnected", Role.INFO)]


def test_unknown_event_says_nothing() -> None:
    assert describer().describe(object(), ME) == []  # type: ignore[arg-type]


def test_local_lines() -> None:
    d = describer()
    assert roles(d.info("help text")) == [("help text", Role.INFO)]
    error = d.local_error("no such command")
    assert (roles(error), error.ts, error.room) == ([("no such command", Role.ERROR)], CLOCK_TS,
                                                    None)


# -- framing ----------------------------------------------------------------------------


def test_framed_line_has_time_and_room_tag_only_outside_its_room() -> None:
    line = one(msg())
    stamp = time.strftime("%H:%M:%S", time.localtime(TS))
    assert line.framed("lobby")[:2] == (Span(stamp, Role.TIME), Span(" "))
    assert "".join(s.text for s in line.framed("lobby")) == f"{stamp} alice: hi"
    assert "".join(s.text for s in line.framed(None)) == f"{stamp} [lobby] alice: hi"
    assert Span("[lobby]", Role.ROOM) in line.framed("dev")


@pytest.mark.parametrize(("color", "safe"), [
    (RED, RED), ("#E06C75", RED), ("red", None), ("#e06c7", None), ("#e06c75; x", None),
])
def test_only_rrggbb_colors_are_kept(color: str, safe: str | None) -> None:
    assert safe_color(color) == safe
    assert one(msg(color=color)).spans[0].color == safe


# -- untrusted text ---------------------------------------------------------------------

EVIL = "x\x1b[2J\u202eevil\x07\n"
RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_network_text_is_sanitized_in_every_line() -> None:
    events: list[Any] = [
        msg(EVIL, sender=EVIL, room=EVIL),
        Whisper(EVIL, EVIL, EVIL, EVIL, TS),
        Joined(EVIL, EVIL, EVIL, TS),
        Parted(EVIL, EVIL, EVIL),
        Roster(EVIL, (Member(EVIL, EVIL),)),
        History(EVIL, (msg(EVIL, sender=EVIL),)),
        RoomList((RoomInfo(EVIL, 3),)),
        Renamed(EVIL, EVIL, EVIL),
        Notice(EVIL, EVIL),
        Error(EVIL, EVIL),
        ConnectionLost(EVIL, 1.0),
        Failed(EVIL, EVIL),
        Connected(Welcome(EVIL, EVIL, "s", EVIL, 1024, 30.0), False),
    ]
    d = describer()
    for event in events:
        for line in d.describe(event, EVIL):
            framed = line.framed(None)
            assert not [s.text for s in framed if RAW_CONTROL.search(s.text)], event
            assert all(s.color in (None, RED) for s in framed)  # msg() is RED
    assert "\u241b[2J" in one(Notice("n", EVIL)).text  # shown, inert


def test_registered_says_the_name_is_an_account_now() -> None:
    line = one(Registered("alice"))
    assert line.text == "alice is registered: sign in with its password"
