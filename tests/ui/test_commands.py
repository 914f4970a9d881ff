"""Parsing what the user types: every command, hints for mistakes, the // escape."""

from __future__ import annotations

import pytest

from chattycat.protocol.messages import MAX_TEXT_CHARS
from chattycat.ui import commands as cmd
from chattycat.ui.commands import parse_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", cmd.SayText("hello")),
        ("  indented text  ", cmd.SayText("  indented text  ")),
        ("hi /there", cmd.SayText("hi /there")),
        ("/join dev", cmd.JoinRoom("dev")),
        ("/JOIN dev", cmd.JoinRoom("dev")),
        ("/part", cmd.PartRoom(None)),
        ("/part dev", cmd.PartRoom("dev")),
        ("/room dev", cmd.SwitchRoom("dev")),
        ("/msg bob psst, over here", cmd.Msg("bob", "psst, over here")),
        ("/me waves", cmd.Me("waves")),
        ("/nick bobby", cmd.NickCmd("bobby")),
        ("/who", cmd.WhoCmd(None)),
        ("/who dev", cmd.WhoCmd("dev")),
        ("/rooms", cmd.ListRooms()),
        ("/history", cmd.HistoryCmd(None)),
        ("/history 20", cmd.HistoryCmd(20)),
        ("/quit", cmd.QuitCmd(None)),
        ("/quit see you later", cmd.QuitCmd("see you later")),
        ("/help", cmd.Help()),
    ],
)
def test_each_command_parses_to_its_typed_object(line: str, expected: cmd.Command) -> None:
    assert parse_line(line) == expected


def test_double_slash_sends_the_text_with_one_slash_literally() -> None:
    assert parse_line("//join dev") == cmd.SayText("/join dev")
    assert parse_line("//") == cmd.SayText("/")


@pytest.mark.parametrize("line", ["", "   ", "\t"])
def test_empty_lines_are_ignored(line: str) -> None:
    assert parse_line(line) == cmd.Ignore()


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("/jion dev", "did you mean /join ROOM"),
        ("/hist", "did you mean /history"),
        ("/q", "did you mean /quit"),
        ("/frobnicate", "/help"),
        ("/", "'//'"),
        ("/join", "usage: /join ROOM"),
        ("/join Dev", "bad room name"),
        ("/join a b", "usage: /join ROOM"),
        ("/room", "usage: /room ROOM"),
        ("/part b@d", "bad room name"),
        ("/msg bob", "usage: /msg NAME TEXT"),
        ("/msg", "usage: /msg NAME TEXT"),
        ("/msg b@d hi", "bad name"),
        ("/me", "usage: /me TEXT"),
        ("/nick", "usage: /nick NAME"),
        ("/nick two words", "usage: /nick NAME"),
        ("/nick b@d", "bad name"),
        ("/history x", "usage: /history [N]"),
        ("/history 0", "usage: /history [N]"),
        ("/history 501", "usage: /history [N]"),
        ("/rooms now", "usage: /rooms"),
    ],
)
def test_mistyped_commands_get_a_one_line_hint_not_a_message(line: str, fragment: str) -> None:
    result = parse_line(line)
    assert isinstance(result, cmd.Hint)
    assert fragment in result.text
    assert "\n" not in result.text


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("/join Bad Room!",
         "usage: /join ROOM (room names are 1-32 characters from a-z 0-9 _ -)"),
        ("/part two rooms",
         "usage: /part [ROOM] (room names are 1-32 characters from a-z 0-9 _ -)"),
        ("/nick bad name",
         "usage: /nick NAME (names are 1-32 characters from A-Z a-z 0-9 _ -)"),
        ("/join", "usage: /join ROOM"),  # nothing typed: nothing to explain
    ],
)
def test_a_name_that_cannot_be_one_gets_the_naming_rule(line: str, hint: str) -> None:
    # Before, "/join Bad Room!" and "/nick bad name" answered only "usage: ...".
    assert parse_line(line) == cmd.Hint(hint)


def test_too_long_message_is_a_hint() -> None:
    result = parse_line("x" * (MAX_TEXT_CHARS + 1))
    assert isinstance(result, cmd.Hint)
    assert parse_line("x" * MAX_TEXT_CHARS) == cmd.SayText("x" * MAX_TEXT_CHARS)
    assert isinstance(parse_line("/me " + "x" * (MAX_TEXT_CHARS + 1)), cmd.Hint)


def test_help_lists_every_command_once_per_line() -> None:
    lines = cmd.help_lines()
    for name in cmd.COMMANDS:
        assert any(line.startswith(f"/{name}") for line in lines)
    assert any(line.startswith("//") for line in lines)
