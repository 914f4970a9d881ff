"""Specification of terminal rendering: styles, wrapping, and no terminal injection.

The events are described by ``chattycat.ui.describe`` (its own words are specified
in tests/ui/test_describe.py); here they go through the controller, as in the
interactive client, and come out as rich text.
"""

from __future__ import annotations

import re
import time
from io import StringIO
from typing import Any, NamedTuple

from hypothesis import given
from hypothesis import strategies as st
from rich.color import Color
from rich.console import Console
from rich.text import Text

from chattycat.client.client import Closed, Connected, ConnectionLost, Failed, Reconnecting
from chattycat.client.session import ClientSession
from chattycat.protocol.messages import (
    Error,
    History,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Renamed,
    RoomInfo,
    RoomList,
    Roster,
    Welcome,
    Whisper,
)
from chattycat.ui.controller import ChatController
from chattycat.ui.term.style import make_console, render_to_ansi, to_text

TS = 1_700_000_000.0
CLOCK_TS = 1_700_000_123.0
RED = "#e06c75"
BLUE = "#61afef"
SGR = re.compile(r"\x1b\[[0-9;]*m")


def console() -> Console:
    return Console(file=StringIO(), width=100, color_system="truecolor", force_terminal=True)


class Line(NamedTuple):
    text: Text
    bell: bool


class Renderer:
    """Events through the shared controller into rich text, as the interactive client does."""

    def __init__(self, me: str, *, current_room: str | None, clock: Any) -> None:
        client: Any = None  # rendering events makes no client calls
        self.controller = ChatController(client, me, on_quit=print, clock=clock)
        self.session = ClientSession(me)  # the name's owner, as in the client
        self.current_room = current_room

    @property
    def me(self) -> str:
        return self.controller.me

    def render(self, event: Any) -> list[Line]:
        lines = self.controller.handle(event)
        # Then the session's news, as the client sends it after each event.
        if isinstance(event, Connected):
            self.session.welcomed(event.welcome.name, new_session=False)
        elif isinstance(event, Renamed):
            self.session.receive(event)
        snapshot = self.session.take_snapshot()
        if snapshot is not None:
            self.controller.handle(snapshot)
        return [Line(to_text(line, self.current_room), line.bell) for line in lines]

    def info(self, text: str) -> Line:
        return Line(to_text(self.controller.info(text), self.current_room), False)

    def local_error(self, text: str) -> Line:
        return Line(to_text(self.controller.local_error(text), self.current_room), False)


def renderer(me: str = "carol", room: str | None = "lobby") -> Renderer:
    return Renderer(me, current_room=room, clock=lambda: CLOCK_TS)


def stamp(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def msg(text: str = "hi", sender: str = "alice", room: str = "lobby", **kw: object) -> Message:
    return Message(room, 1, sender, kw.pop("color", RED), text, TS, **kw)  # type: ignore[arg-type]


def one(lines: list[Line]) -> Line:
    assert len(lines) == 1
    return lines[0]


def style_of(text: Text, substring: str) -> tuple[Color | None, bool, bool]:
    """(color, bold, reverse) of the first char of ``substring`` in ``text``."""
    offset = text.plain.index(substring)
    style = text.get_style_at_offset(console(), offset)
    return style.color, bool(style.bold), bool(style.reverse)


# -- chat lines -----------------------------------------------------------------------------


def test_message_line_is_timestamp_sender_and_text() -> None:
    line = one(renderer().render(msg("hello there")))
    assert line.text.plain == f"{stamp(TS)} alice: hello there"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", line.text.plain[:8])
    assert not line.bell


def test_sender_name_carries_the_server_assigned_color() -> None:
    line = one(renderer().render(msg(color=RED)))
    color, bold, _ = style_of(line.text, "alice")
    assert color == Color.parse(RED)
    assert bold
    ansi = render_to_ansi(line.text, console())
    assert "38;2;224;108;117" in ansi  # truecolor SGR for #e06c75


def test_timestamp_is_dimmed() -> None:
    line = one(renderer().render(msg()))
    assert line.text.get_style_at_offset(console(), 0).dim


def test_color_that_is_not_rrggbb_is_ignored() -> None:
    line = one(renderer().render(msg(color="red on white")))
    color, bold, _ = style_of(line.text, "alice")
    assert color is None
    assert bold


def test_room_prefix_only_when_not_the_current_room() -> None:
    r = renderer(room="lobby")
    assert "[lobby]" not in one(r.render(msg(room="lobby"))).text.plain
    assert one(r.render(msg(room="dev"))).text.plain == f"{stamp(TS)} [dev] alice: hi"
    r.current_room = "dev"
    assert "[dev]" not in one(r.render(msg(room="dev"))).text.plain


def test_action_is_star_name_text() -> None:
    line = one(renderer().render(msg("waves", action=True)))
    assert line.text.plain == f"{stamp(TS)} * alice waves"


def test_mention_of_own_name_is_highlighted_and_rings() -> None:
    line = one(renderer(me="carol").render(msg("hey CAROL, look")))
    assert line.bell
    _, bold, reverse = style_of(line.text, "CAROL")
    assert bold and reverse
    _, _, reverse = style_of(line.text, "look")
    assert not reverse


def test_mention_needs_a_whole_word() -> None:
    r = renderer(me="al")
    assert not one(r.render(msg("also, alright"))).bell
    assert one(r.render(msg("@al: ping"))).bell


def test_own_message_mentioning_oneself_does_not_ring() -> None:
    line = one(renderer(me="alice").render(msg("alice here", sender="alice")))
    assert not line.bell


def test_whisper_is_marked_and_rings_the_recipient() -> None:
    w = Whisper("alice", "carol", RED, "psst", TS)
    line = one(renderer(me="carol").render(w))
    assert line.text.plain == f"{stamp(TS)} [whisper] alice \u2192 carol: psst"
    offset = line.text.plain.index("[whisper]")
    style = line.text.get_style_at_offset(console(), offset)
    assert style.italic and style.color == Color.parse("magenta")
    assert line.bell


def test_own_whisper_echo_does_not_ring() -> None:
    w = Whisper("carol", "alice", BLUE, "psst", TS)
    assert not one(renderer(me="carol").render(w)).bell


def test_history_has_a_separator_then_normal_lines_without_bell() -> None:
    h = History("lobby", (msg("first"), msg("carol: second", sender="bob")))
    lines = renderer(me="carol").render(h)
    assert [line.text.plain for line in lines] == [
        f"{stamp(CLOCK_TS)} \u2014 history of #lobby \u2014",
        f"{stamp(TS)} alice: first",
        f"{stamp(TS)} bob: carol: second",
    ]
    assert not any(line.bell for line in lines)
    _, _, reverse = style_of(lines[2].text, "carol")
    assert reverse  # still highlighted


def test_history_split_over_frames_has_one_separator() -> None:
    r = renderer()
    first = r.render(History("lobby", (msg("a"),), more=True))
    second = r.render(History("lobby", (msg("b"),)))
    assert len(first) == 2 and len(second) == 1


def test_an_empty_history_page_says_there_is_nothing_older() -> None:
    assert one(renderer().render(History("lobby", ()))).text.plain.endswith(
        "no older messages in #lobby"
    )


def test_truncated_history_says_so() -> None:
    lines = renderer().render(History("lobby", (msg(),), truncated=True))
    assert "/history" in lines[0].text.plain


# -- membership and server lines ------------------------------------------------------------


def test_joined_line() -> None:
    line = one(renderer().render(Joined("dev", "bob", BLUE, TS)))
    assert line.text.plain == f"{stamp(TS)} \u2192 bob joined #dev"
    color, _, _ = style_of(line.text, "bob")
    assert color == Color.parse(BLUE)
    style = line.text.get_style_at_offset(console(), line.text.plain.index("joined"))
    assert style.dim and style.color == Color.parse("green")


def test_parted_line_shows_the_reason() -> None:
    r = renderer()
    plain = [one(r.render(Parted("dev", "bob", reason))).text.plain[9:]
             for reason in ("part", "quit", "disconnected", "bye")]
    assert plain == [
        "\u2190 bob left #dev",
        "\u2190 bob left #dev (quit)",
        "\u2190 bob left #dev (disconnected)",
        "\u2190 bob left #dev (quit: bye)",
    ]


def test_timestamp_of_events_without_ts_comes_from_the_clock() -> None:
    line = one(renderer().render(Parted("dev", "bob", "part")))
    assert line.text.plain.startswith(stamp(CLOCK_TS))


def test_roster_lists_colored_names() -> None:
    roster = Roster("dev", (Member("alice", RED), Member("bob", BLUE)))
    line = one(renderer(room="dev").render(roster))
    assert line.text.plain.endswith("members of #dev: alice, bob")
    assert style_of(line.text, "bob")[0] == Color.parse(BLUE)


def test_room_list() -> None:
    line = one(renderer().render(RoomList((RoomInfo("dev", 2), RoomInfo("lobby", 5)))))
    assert line.text.plain.endswith("rooms: #dev (2), #lobby (5)")
    assert one(renderer().render(RoomList(()))).text.plain.endswith("no rooms have members")


def test_rename_of_someone_else_and_of_oneself() -> None:
    r = renderer(me="carol")
    assert one(r.render(Renamed("bob", "rob", BLUE))).text.plain.endswith(
        "bob is now known as rob"
    )
    assert one(r.render(Renamed("carol", "caz", RED))).text.plain.endswith(
        "you are now known as caz"
    )
    assert r.me == "caz"
    assert one(r.render(msg("hi caz"))).bell


def test_notice_is_yellow_and_error_bold_red() -> None:
    notice = one(renderer().render(Notice("shutdown", "server going down")))
    assert notice.text.plain.endswith("notice shutdown: server going down")
    assert style_of(notice.text, "notice")[0] == Color.parse("yellow")
    error = one(renderer().render(Error("not_in_room", "you are not in #dev")))
    assert error.text.plain.endswith("error not_in_room: you are not in #dev")
    color, bold, _ = style_of(error.text, "error")
    assert color == Color.parse("red") and bold


def test_connection_state_lines() -> None:
    welcome = Welcome("carol", RED, "s3cret", "chattycat/1.0", 65536, 30)
    r = renderer(me="")
    assert one(r.render(Connected(welcome, False))).text.plain.endswith(
        "connected as carol (chattycat/1.0)"
    )
    assert r.me == "carol"
    assert "reconnected as carol" in one(r.render(Connected(welcome, True))).text.plain
    assert one(r.render(ConnectionLost("connection reset", 3.2))).text.plain.endswith(
        "connection lost (connection reset), reconnecting in 4 s"
    )
    assert one(r.render(Reconnecting(2))).text.plain.endswith("reconnecting (attempt 2)\u2026")
    assert one(r.render(Failed("name taken", "name_taken"))).text.plain.endswith(
        "failed [name_taken]: name taken"
    )
    assert one(r.render(Closed())).text.plain.endswith("disconnected")


def test_unknown_event_renders_nothing() -> None:
    assert renderer().render(object()) == []


def test_local_lines() -> None:
    r = renderer()
    assert r.info("help text").text.plain.endswith("help text")
    error = r.local_error("no such command")
    assert style_of(error.text, "no such")[0] == Color.parse("red")


# -- output ---------------------------------------------------------------------------------


def test_render_to_ansi_wraps_to_the_console_width() -> None:
    line = one(renderer().render(msg("word " * 30)))
    out = render_to_ansi(line.text, make_console(40, no_color=True))
    rows = out.split("\n")
    assert len(rows) > 1
    assert all(len(row) <= 40 for row in rows)


def test_no_color_console_gives_plain_text() -> None:
    line = one(renderer(me="carol").render(msg("hi carol")))
    out = render_to_ansi(line.text, make_console(100, no_color=True))
    assert out == f"{stamp(TS)} alice: hi carol"


def test_render_to_ansi_has_no_trailing_newline() -> None:
    out = render_to_ansi(Text("x"), console())
    assert SGR.sub("", out) == "x"


HOSTILE = st.sampled_from(
    ["\x1b[2J", "\x9b", "\r", "\n", "\x07", "\x1b]0;pwned\x07", "\u202e", "\u2066",
     "[bold]markup[/]", "[red]", ":smile:", "\x00", "\x7f", "\x85"]
)
NETWORK_TEXT = st.lists(st.one_of(HOSTILE, st.text(max_size=8)), max_size=6).map("".join)


def _events(text: str, name: str) -> list[object]:
    m = Message("lobby", 1, name, RED, text or "x", TS)
    return [
        m,
        Message("dev", 2, name, name, text or "x", TS, action=True),
        Whisper(name, text, name, text, TS),
        Joined(text, name, name, TS),
        Parted(text, name, text),
        Roster(text, (Member(name, text),)),
        History(text, (m,)),
        RoomList((RoomInfo(text, 3),)),
        Renamed(name, text, name),
        Notice(name, text),
        Error(name, text),
        ConnectionLost(text, 1.0),
        Failed(text, name),
        Connected(Welcome(name, text, "s", text, 1024, 30.0), False),
    ]


@given(text=NETWORK_TEXT, name=NETWORK_TEXT)
def test_network_text_cannot_inject_terminal_controls(text: str, name: str) -> None:
    r = Renderer(name, current_room="lobby", clock=lambda: TS)
    con = console()
    for event in _events(text, name):
        for line in r.render(event):
            out = render_to_ansi(line.text, con)
            bare = SGR.sub("", out)
            # Rich may wrap a long line with "\n"; nothing else below 0x20,
            # no DEL, no C1 (0x9b is a CSI), no bidi override.
            assert not [ch for ch in bare if (ord(ch) < 0x20 and ch != "\n")
                        or 0x7F <= ord(ch) <= 0x9F or ch in "\u202e\u2066"], repr(bare)


@given(text=st.sampled_from(["[bold]markup[/]", "[link=http://x]y[/link]", ":smile:", "[/]"]))
def test_markup_looking_text_is_shown_literally(text: str) -> None:
    line = one(renderer().render(msg(text, sender="alice")))
    out = SGR.sub("", render_to_ansi(line.text, console()))
    assert out.endswith(f"alice: {text}")
