"""Specification of the shared front-end controller, with a fake client: no I/O at all."""

from __future__ import annotations

from typing import Any

import pytest

from chattycat.client.client import Closed, Connected, ConnectionLost, Reconnecting
from chattycat.protocol.messages import History, Joined, Message, Parted, Renamed, Welcome
from chattycat.ui.controller import DEFAULT_HISTORY_PAGE, ChatController
from chattycat.ui.describe import DisplayLine, Role
from tests.fake_client import FakeClient

TS = 1_700_000_000.0
RED = "#e06c75"


def connected(name: str = "alice") -> Connected:
    return Connected(Welcome(name, RED, "s3cret", "chattycat/1.0", 65536, 30), resumed=False)


def make(*rooms: str, online: bool = True, **kwargs: Any
         ) -> tuple[ChatController, FakeClient, list[str | None]]:
    client = FakeClient()
    quits: list[str | None] = []
    controller = ChatController(client, "alice", rooms=rooms, on_quit=quits.append,
                                clock=lambda: TS, **kwargs)
    if online:
        controller.handle(connected())
        for room in rooms:
            controller.handle(Joined(room, "alice", RED, TS))
    return controller, client, quits


def texts(lines: list[DisplayLine]) -> list[str]:
    return [line.text for line in lines]


def only_error(lines: list[DisplayLine]) -> str:
    [line] = lines
    assert [span.role for span in line.spans] == [Role.ERROR]
    return line.text


# -- the current room ---------------------------------------------------------------------


def test_first_requested_room_is_current_before_connecting() -> None:
    controller, _, _ = make("dev", "ops", online=False)
    assert (controller.current_room, controller.rooms) == ("dev", ["dev", "ops"])


def test_first_room_the_server_joins_us_to_becomes_current() -> None:
    controller, _, _ = make()
    assert controller.current_room is None
    controller.handle(Joined("lobby", "alice", RED, TS))
    controller.handle(Joined("dev", "ALICE", RED, TS))  # names compare case-insensitively
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby", "dev"])


def test_others_joining_change_nothing() -> None:
    controller, _, _ = make("lobby")
    controller.handle(Joined("dev", "bob", RED, TS))
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby"])


def test_join_switches_once_the_server_confirms() -> None:
    controller, client, _ = make("lobby")
    assert controller.submit("/join dev") == []
    assert client.calls == [("join", "dev")]
    assert controller.current_room == "lobby"
    controller.handle(Joined("dev", "alice", RED, TS))
    assert controller.current_room == "dev"


def test_join_of_a_joined_room_switches_at_once_and_asks_again() -> None:
    controller, client, _ = make("lobby", "dev")
    controller.submit("/join dev")
    assert controller.current_room == "dev"
    assert client.calls == [("join", "dev")]


def test_join_can_switch_at_once_for_scripts() -> None:
    controller, _, _ = make("lobby", join_switches_at_once=True)
    controller.submit("/join dev")
    assert controller.current_room == "dev"


def test_room_switches_to_a_joined_room_only() -> None:
    controller, client, _ = make("lobby", "dev")
    assert texts(controller.submit("/room dev")) == ["now talking in #dev"]
    assert controller.current_room == "dev"
    assert only_error(controller.submit("/room ops")) == "you are not in #ops: /join ops"
    assert controller.current_room == "dev"
    assert client.calls == []
    assert controller.switch_room("lobby") and not controller.switch_room("ops")


def test_part_of_the_current_room_switches_to_another_at_once() -> None:
    controller, client, _ = make("lobby", "dev", "ops")
    controller.submit("/room dev")
    controller.submit("/part")
    assert client.calls == [("part", "dev")]
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby", "ops"])
    controller.handle(Parted("dev", "alice", "part"))  # the confirmation changes nothing
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby", "ops"])


def test_part_of_another_room_keeps_the_current_one() -> None:
    controller, client, _ = make("lobby", "dev")
    controller.submit("/part dev")
    assert client.calls == [("part", "dev")]
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby"])


def test_part_when_not_member_is_not_in_room() -> None:
    controller, client, _ = make("lobby")
    assert only_error(controller.submit("/part dev")) == "you are not in #dev"
    assert client.calls == []


def test_being_parted_by_the_server_switches_and_the_last_room_leaves_none() -> None:
    controller, _, _ = make("lobby", "dev")
    controller.handle(Parted("lobby", "alice", "part"))
    assert controller.current_room == "dev"
    controller.handle(Parted("lobby", "bob", "part"))  # someone else: nothing changes
    controller.handle(Parted("dev", "alice", "quit"))
    assert (controller.current_room, controller.rooms) == (None, [])


# -- commands -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "call"),
    [
        ("hello all", ("say", "lobby", "hello all", False)),
        ("//shrug", ("say", "lobby", "/shrug", False)),
        ("/me waves", ("say", "lobby", "waves", True)),
        ("/msg bob psst there", ("whisper", "bob", "psst there")),
        ("/who", ("who", "lobby")),
        ("/who dev", ("who", "dev")),
        ("/rooms", ("list_rooms",)),
        ("/nick al", ("nick", "al")),
        ("/history", ("history", "lobby", None, DEFAULT_HISTORY_PAGE)),
        ("/history 20", ("history", "lobby", None, 20)),
        ("/part", ("part", "lobby")),
    ],
)
def test_each_command_becomes_one_client_call(line: str, call: tuple[Any, ...]) -> None:
    controller, client, _ = make("lobby")
    assert controller.submit(line) == []
    assert client.calls == [call]


@pytest.mark.parametrize("line", ["hello", "/me waves", "/who", "/history"])
def test_commands_for_the_current_room_need_one(line: str) -> None:
    controller, client, _ = make()
    assert only_error(controller.submit(line)) == "you are in no room: /join ROOM first"
    assert client.calls == []


def test_who_remembers_which_roster_was_asked_for() -> None:
    controller, _, _ = make("lobby")
    controller.submit("/who dev")
    assert controller.rosters_asked == {"dev"}


def test_history_pages_back_from_the_oldest_message_seen() -> None:
    controller, client, _ = make("lobby")
    controller.handle(Message("lobby", 50, "bob", RED, "new", TS))
    page = (Message("lobby", 41, "bob", RED, "a", TS), Message("lobby", 42, "bob", RED, "b", TS))
    controller.handle(History("lobby", page))
    controller.handle(Message("dev", 7, "bob", RED, "elsewhere", TS))
    controller.submit("/history 20")
    assert client.calls == [("history", "lobby", 41, 20)]


def test_quit_goes_to_the_front_end() -> None:
    controller, client, quits = make("lobby")
    controller.submit("/quit gone fishing")
    controller.submit("/quit")
    assert quits == ["gone fishing", None]
    assert client.calls == []


def test_help_lists_the_commands_then_the_front_ends_own_lines() -> None:
    controller, _, _ = make("lobby", help_extra=["Tab completes names"])
    shown = texts(controller.submit("/help"))
    for command in ("/join", "/part", "/room", "/msg", "/me", "/who", "/history", "/quit"):
        assert any(text.startswith(command) for text in shown)
    assert shown[-1] == "Tab completes names"
    assert all(line.spans[0].role is Role.INFO for line in controller.submit("/help"))


@pytest.mark.parametrize(("line", "hint"), [
    ("/jion dev", "unknown command /jion; did you mean /join ROOM? (/help lists all)"),
    ("/msg bob", "usage: /msg NAME TEXT"),
    ("/join Bad!", "bad room name 'Bad!': room names are 1-32 characters from a-z 0-9 _ -"),
])
def test_bad_lines_are_hints_and_send_nothing(line: str, hint: str) -> None:
    controller, client, _ = make("lobby")
    assert only_error(controller.submit(line)) == hint
    assert client.calls == []


def test_empty_line_does_nothing() -> None:
    controller, client, _ = make("lobby")
    assert controller.submit("   ") == []
    assert client.calls == []


@pytest.mark.parametrize("error", [RuntimeError("the client is closed"), ValueError("bad name")])
def test_a_refused_call_is_one_error_line(error: Exception) -> None:
    controller, client, _ = make("lobby")
    client.fail = error
    assert only_error(controller.submit("/nick x")) == str(error)


# -- offline notes and the connection -----------------------------------------------------


def test_saying_while_offline_is_queued_with_a_note() -> None:
    controller, client, _ = make("lobby", online=False)
    assert texts(controller.submit("anyone?")) == ["not connected: will be sent once reconnected"]
    assert texts(controller.submit("/msg bob psst")) == [
        "not connected: will be sent once reconnected"
    ]
    assert client.calls == [("say", "lobby", "anyone?", False), ("whisper", "bob", "psst")]


def test_the_offline_note_can_be_turned_off() -> None:
    controller, _, _ = make("lobby", online=False, note_offline=False)
    assert controller.submit("anyone?") == []


@pytest.mark.parametrize("event", [ConnectionLost("reset", 1.0), Reconnecting(1), Closed()])
def test_online_follows_the_connection(event: Any) -> None:
    controller, _, _ = make("lobby")
    assert controller.online
    controller.handle(event)
    assert not controller.online
    assert controller.submit("hi")[0].text.startswith("not connected")


# -- the user's name ----------------------------------------------------------------------


def test_me_follows_welcome_and_own_renames() -> None:
    controller, _, _ = make("lobby")
    controller.handle(connected("alice2"))
    assert controller.me == "alice2"
    [line] = controller.handle(Renamed("ALICE2", "al", RED))
    assert line.text == "you are now known as al"  # described with the name from before
    assert controller.me == "al"
    controller.handle(Renamed("bob", "rob", RED))
    assert controller.me == "al"
    [mention] = controller.handle(Message("lobby", 1, "bob", RED, "hi al", TS))
    assert mention.bell


def test_events_are_described() -> None:
    controller, _, _ = make("lobby")
    assert texts(controller.handle(Joined("lobby", "bob", RED, TS))) == ["\u2192 bob joined #lobby"]
