"""Specification of the shared front-end controller, with a fake client: no I/O at all."""

from __future__ import annotations

from typing import Any

import pytest

from chattycat.client.client import Closed, Connected, ConnectionLost, Reconnecting
from chattycat.client.events import RoomState, SessionChanged
from chattycat.protocol.messages import (
    History,
    Join,
    Joined,
    Member,
    Message,
    Parted,
    Renamed,
    Welcome,
)
from chattycat.ui.controller import DEFAULT_HISTORY_PAGE, ChatController
from chattycat.ui.describe import DisplayLine, Role
from tests.ui.fake_client import FakeClient

TS = 1_700_000_000.0
RED = "#e06c75"


def connected(name: str = "alice") -> Connected:
    return Connected(Welcome(name, RED, "s3cret", "chattycat/1.0", 65536, 30), resumed=False)


def make(*rooms: str, online: bool = True, **kwargs: Any
         ) -> tuple[ChatController, FakeClient, list[str | None]]:
    client = FakeClient("alice", rooms)
    quits: list[str | None] = []
    controller = ChatController(client, "alice", rooms=rooms, on_quit=quits.append,
                                clock=lambda: TS, **kwargs)
    client.on_event = controller.handle
    if online:
        controller.handle(connected())
        for room in rooms:
            client.arrive(Joined(room, "alice", RED, TS))
    return controller, client, quits


def shown_by(controller: ChatController, client: FakeClient) -> list[DisplayLine]:
    """From now on, what the client's events show (instead of dropping it)."""
    lines: list[DisplayLine] = []
    client.on_event = lambda event: lines.extend(controller.handle(event))
    return lines


def texts(lines: list[DisplayLine]) -> list[str]:
    return [line.text for line in lines]


def only_error(lines: list[DisplayLine]) -> str:
    [line] = lines
    assert [span.role for span in line.spans] == [Role.ERROR]
    return line.text


def snapshot(*rooms: str, me: str = "alice") -> SessionChanged:
    return SessionChanged(me, tuple(RoomState(room, True, (), None) for room in rooms))


# -- the current room ---------------------------------------------------------------------


def test_first_requested_room_is_current_before_connecting() -> None:
    controller, _, _ = make("dev", "ops", online=False)
    assert (controller.current_room, controller.rooms) == ("dev", ["dev", "ops"])


def test_first_room_the_server_joins_us_to_becomes_current() -> None:
    controller, client, _ = make()
    assert controller.current_room is None
    client.arrive(Joined("lobby", "alice", RED, TS))
    client.arrive(Joined("dev", "ALICE", RED, TS))  # names compare case-insensitively
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby", "dev"])


def test_others_joining_change_nothing() -> None:
    controller, client, _ = make("lobby")
    client.arrive(Joined("dev", "bob", RED, TS))
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby"])


def test_join_makes_the_room_current_at_once() -> None:
    controller, client, _ = make("lobby")
    assert controller.submit("/join dev") == []
    assert client.calls == [("join", "dev")]
    assert (controller.current_room, controller.rooms) == ("dev", ["lobby", "dev"])
    controller.submit("hi dev")
    assert client.calls[-1] == ("say", "dev", "hi dev", False)
    client.arrive(Joined("dev", "alice", RED, TS))
    assert controller.current_room == "dev"


@pytest.mark.parametrize("part", ["/part", "/part qa"])
def test_part_right_after_join_leaves_that_room_and_is_not_lost(part: str) -> None:
    # The reported defect: "/join qa" then at once "/part" said "you are not
    # in #qa", the part was lost, and later lines went to #qa.
    controller, client, _ = make("lobby")
    shown = shown_by(controller, client)
    assert controller.submit("/join qa") == []
    assert controller.submit(part) == []
    assert client.calls == [("join", "qa"), ("part", "qa")]
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby"])
    controller.submit("after")
    assert client.calls[-1] == ("say", "lobby", "after", False)
    # The server carries the join out, then the part; neither brings #qa back.
    client.arrive(Joined("qa", "alice", RED, TS))
    client.arrive(Parted("qa", "alice", "part"))
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby"])
    assert "you are not in #qa" not in texts(shown)


def test_join_of_a_joined_room_switches_at_once_and_asks_again() -> None:
    controller, client, _ = make("lobby", "dev")
    controller.submit("/join dev")
    assert controller.current_room == "dev"
    assert client.calls == [("join", "dev")]


def test_a_refused_join_switches_back() -> None:
    controller, client, _ = make("lobby")
    controller.submit("/join secret")
    client.session.refused("r-1", Join("secret", ref="r-1"))  # e.g. error bad_room
    client.publish()
    assert (controller.current_room, controller.rooms) == ("lobby", ["lobby"])


def test_a_joined_room_stays_current_until_the_session_has_heard_of_it() -> None:
    # The desktop client's session runs on another thread: a snapshot taken
    # before it saw the join must not switch the user away again.
    controller, client, _ = make("lobby")
    client.on_event = None
    controller.submit("/join dev")
    controller.handle(snapshot("lobby"))
    assert controller.current_room == "dev"
    controller.handle(snapshot("lobby", "dev"))
    controller.handle(snapshot("lobby"))  # now its going is news
    assert controller.current_room == "lobby"


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
    client.arrive(Parted("dev", "alice", "part"))  # the confirmation changes nothing
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
    controller, client, _ = make("lobby", "dev")
    client.arrive(Parted("lobby", "alice", "part"))
    assert controller.current_room == "dev"
    client.arrive(Parted("lobby", "bob", "part"))  # someone else: nothing changes
    client.arrive(Parted("dev", "alice", "quit"))
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
    controller, client, _ = make("lobby", "dev")
    page = (Message("lobby", 41, "bob", RED, "a", TS), Message("lobby", 42, "bob", RED, "b", TS))
    client.arrive(History("lobby", page))  # what the join showed
    client.arrive(Message("lobby", 50, "bob", RED, "new", TS))
    client.arrive(Message("dev", 7, "bob", RED, "elsewhere", TS))
    controller.submit("/history 20")
    assert client.calls == [("history", "lobby", 41, 20)]


def test_history_with_nothing_older_says_so_without_asking() -> None:
    # Before, "/history" with nothing older printed nothing at all.
    controller, client, _ = make("lobby")
    client.arrive(Message("lobby", 1, "bob", RED, "the very first", TS))
    assert texts(controller.submit("/history")) == ["no older messages in #lobby"]
    assert client.calls == []


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
    ("/join Bad Room!", "usage: /join ROOM (room names are 1-32 characters from a-z 0-9 _ -)"),
    ("/nick bad name", "usage: /nick NAME (names are 1-32 characters from A-Z a-z 0-9 _ -)"),
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


def test_me_and_members_come_from_the_session() -> None:
    controller, client, _ = make("lobby")
    shown = shown_by(controller, client)
    client.arrive(Renamed("ALICE", "al", RED))
    assert texts(shown) == ["you are now known as al"]  # described with the name from before
    assert controller.me == "al"
    client.arrive(Renamed("bob", "rob", RED))
    assert controller.me == "al"
    client.arrive(Message("lobby", 1, "bob", RED, "hi al", TS))
    assert shown[-1].bell
    client.arrive(Joined("lobby", "carol", "#61afef", TS))
    assert controller.members() == (Member("al", RED), Member("carol", "#61afef"))
    client.arrive(Parted("lobby", "carol", "quit"))
    parted = shown[-1]
    assert parted.text == "\u2190 carol left #lobby (quit)"
    assert parted.spans[1].color == "#61afef"  # the color the member list knew


def test_me_follows_the_welcome() -> None:
    controller, client, _ = make("lobby", online=False)
    client.session.welcomed("alice2", new_session=False)  # e.g. the server changed the case
    client.publish()
    assert controller.me == "alice2"


def test_events_are_described() -> None:
    controller, _, _ = make("lobby")
    assert texts(controller.handle(Joined("lobby", "bob", RED, TS))) == ["\u2192 bob joined #lobby"]


# -- /register ----------------------------------------------------------------------------


def test_register_with_a_password_calls_the_client() -> None:
    controller, client, _ = make("lobby")
    controller.submit("/register correct horse")
    assert client.calls[-1] == ("register", "correct horse")


def test_a_bare_register_takes_the_next_line_as_the_password_and_never_shows_it() -> None:
    controller, client, _ = make("lobby")
    controller.submit("/register")
    assert controller.awaiting_password
    lines = controller.submit("/join not-a-command")
    assert client.calls[-1] == ("register", "/join not-a-command")
    assert not controller.awaiting_password
    assert all("not-a-command" not in text for text in texts(lines))


def test_an_empty_line_cancels_a_bare_register() -> None:
    controller, client, _ = make("lobby")
    controller.submit("/register")
    assert only_error(controller.submit("")) == "/register cancelled"
    assert not any(call[0] == "register" for call in client.calls)


def test_a_short_password_is_one_error_line() -> None:
    controller, client, _ = make("lobby")
    client.fail = ValueError("a password has 8 to 1024 characters")
    assert only_error(controller.submit("/register short")) == (
        "a password has 8 to 1024 characters")
