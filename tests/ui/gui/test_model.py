"""Specification of the desktop client's view model: no Tk, no sockets, a fake client."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chattycat.client.client import Closed, Connected, ConnectionLost, Failed, Reconnecting
from chattycat.client.events import RoomState, SessionChanged
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
from chattycat.ui.gui.model import (
    MAX_SCROLLBACK_LINES,
    ActionFailed,
    ChatModel,
    Tag,
    ViewChanges,
    ViewLine,
    ViewSpan,
    color_tag,
)
from tests.ui.fake_client import FakeClient

TS = 1_700_000_000.0
RED = "#e06c75"
BLUE = "#61afef"
GREEN = "#98c379"
STAMP = r"\d\d:\d\d:\d\d"


class Clock:
    def __init__(self) -> None:
        self.now = TS

    def __call__(self) -> float:
        return self.now


def welcome(name: str = "alice", color: str = RED) -> Connected:
    return Connected(Welcome(name, color, "s3cret", "chattycat/1.0", 65536, 30), resumed=False)


def message(
    room: str, sender: str, text: str, seq: int = 1, *, color: str = BLUE, action: bool = False
) -> Message:
    return Message(room, seq, sender, color, text, TS, action=action)


def make_model(*rooms: str, online: bool = True) -> tuple[ChatModel, FakeClient]:
    client = FakeClient("alice", rooms)
    model = ChatModel(client, "alice", rooms=rooms, clock=Clock())
    client.on_event = model.handle
    if online:
        model.handle(welcome())
        for room in rooms:
            client.arrive(Joined(room, "alice", RED, TS))
    model.take_changes()
    return model, client


def texts(model: ChatModel, room: str | None = None) -> list[str]:
    lines = model.view_lines() if room is None else model.scrollback(room)
    return [line.text for line in lines]


def last(model: ChatModel) -> ViewLine:
    return model.view_lines()[-1]


def tag_of(line: ViewLine, text: str) -> str | None:
    return next(span.tag for span in line.spans if span.text == text)


# -- the current room --------------------------------------------------------------


def test_first_requested_room_is_current_before_connecting() -> None:
    model, _ = make_model("dev", "ops", online=False)
    assert model.current_room == "dev"
    assert model.rooms == ["dev", "ops"]


def test_everything_is_to_be_drawn_at_first() -> None:
    model = ChatModel(FakeClient(), "alice", rooms=["dev"])
    changes = model.take_changes()
    assert changes.view_reset and changes.rooms_changed and changes.members_changed
    assert model.take_changes() == ViewChanges()


def test_default_room_becomes_current_when_the_server_joins_us() -> None:
    model, client = make_model()
    assert model.current_room is None
    client.arrive(Joined("lobby", "alice", RED, TS))
    assert model.current_room == "lobby"
    assert model.rooms == ["lobby"]
    assert model.take_changes().view_reset
    assert texts(model)[-1].endswith("\u2192 alice joined #lobby")  # in the room's own view


def test_join_of_a_new_room_switches_at_once() -> None:
    model, client = make_model("lobby")
    model.submit("/join dev")
    assert client.calls == [("join", "dev")]
    assert (model.current_room, model.rooms) == ("dev", ["lobby", "dev"])
    client.arrive(Joined("dev", "alice", RED, TS))
    assert model.current_room == "dev"
    assert texts(model)[-1].endswith("\u2192 alice joined #dev")


def test_a_join_shows_its_room_before_the_client_thread_has_seen_it() -> None:
    # The client runs on another thread: its snapshot with the new room comes later.
    model, client = make_model("lobby")
    client.on_event = None
    model.submit("/join dev")
    assert model.current_room == "dev"
    assert model.view_lines() == []
    model.info("joining")
    assert texts(model)[-1].endswith("joining")
    model.handle(client.session.snapshot())
    assert model.rooms == ["lobby", "dev"]


def test_join_of_a_joined_room_switches_at_once_and_asks_again() -> None:
    model, client = make_model("lobby", "dev")
    model.submit("/join lobby")
    assert model.current_room == "lobby"
    assert client.calls == [("join", "lobby")]


def test_other_people_joining_do_not_switch_the_room() -> None:
    model, client = make_model("lobby")
    client.arrive(Joined("lobby", "bob", BLUE, TS))
    assert model.current_room == "lobby"


def test_room_command_switches_to_a_joined_room() -> None:
    model, client = make_model("lobby", "dev")
    model.submit("/room dev")
    assert model.current_room == "dev"
    assert client.calls == []


def test_room_command_for_a_room_not_joined_is_an_error() -> None:
    model, client = make_model("lobby")
    model.submit("/room dev")
    assert model.current_room == "lobby"
    assert texts(model)[-1].endswith("you are not in #dev: /join dev")
    assert tag_of(last(model), "you are not in #dev: /join dev") == Tag.ERROR
    assert client.calls == []


def test_switch_room_by_click_only_to_joined_rooms() -> None:
    model, _ = make_model("lobby", "dev")
    assert model.switch_room("dev")
    assert not model.switch_room("nowhere")
    assert model.current_room == "dev"


def test_part_leaves_the_current_room_and_switches_to_another() -> None:
    model, client = make_model("lobby", "dev")
    model.submit("/room dev")
    model.submit("/part")
    assert client.calls == [("part", "dev")]
    assert model.rooms == ["lobby"]
    assert model.current_room == "lobby"
    client.arrive(Parted("dev", "alice", "part"))  # the server's confirmation
    assert model.rooms == ["lobby"]
    assert texts(model)[-1].endswith("\u2190 alice left #dev")


def test_part_of_the_last_room_leaves_no_current_room() -> None:
    model, _ = make_model("lobby")
    model.submit("/part lobby")
    assert model.current_room is None
    model.submit("hello?")
    assert texts(model)[-1].endswith("you are in no room: /join ROOM first")


def test_part_when_not_member_is_not_in_room() -> None:
    model, client = make_model("lobby")
    model.submit("/part dev")
    assert client.calls == []
    assert texts(model)[-1].endswith("you are not in #dev")


def test_being_parted_by_the_server_drops_the_room() -> None:
    model, client = make_model("lobby", "dev")
    client.arrive(Parted("lobby", "alice", "part"))
    assert model.rooms == ["dev"]
    assert model.current_room == "dev"
    assert texts(model)[-1].endswith("alice left #lobby")


# -- lines and scrollback -------------------------------------------------------------


def test_message_in_current_room_shows_time_and_name_in_its_color() -> None:
    model, client = make_model("lobby")
    client.arrive(message("lobby", "bob", "hi there"))
    line = last(model)
    assert re.fullmatch(rf"{STAMP} bob: hi there", line.text)
    assert line.spans[0].tag == Tag.TIME
    assert tag_of(line, "bob") == color_tag(BLUE) == f"color:{BLUE}"
    assert model.take_changes().new_lines == [line]


def test_action_is_shown_as_star_name_text() -> None:
    model, client = make_model("lobby")
    client.arrive(message("lobby", "bob", "waves", action=True))
    assert re.fullmatch(rf"{STAMP} \* bob waves", last(model).text)


def test_message_in_another_room_is_counted_not_shown() -> None:
    model, client = make_model("lobby", "dev")
    client.arrive(message("dev", "bob", "psst dev", 1))
    client.arrive(message("dev", "bob", "still there?", 2))
    assert not any("psst" in text for text in texts(model))
    assert model.unread == {"dev": 2}
    assert model.room_label("dev") == "#dev (2)"
    assert model.room_label("lobby") == "#lobby"
    changes = model.take_changes()
    assert changes.rooms_changed
    assert changes.new_lines == []


def test_switching_shows_the_rooms_own_scrollback_and_clears_unread() -> None:
    model, client = make_model("lobby", "dev")
    client.arrive(message("lobby", "bob", "in lobby"))
    client.arrive(message("dev", "carol", "in dev"))
    model.switch_room("dev")
    assert model.unread == {}
    assert model.take_changes().view_reset
    assert any(text.endswith("carol: in dev") for text in texts(model))
    assert not any("in lobby" in text for text in texts(model))
    model.switch_room("lobby")
    assert any(text.endswith("bob: in lobby") for text in texts(model))


def test_history_gets_a_header_and_is_not_unread() -> None:
    model, client = make_model("lobby", "dev")
    old = (message("dev", "bob", "old one", 3), message("dev", "bob", "old two", 4))
    client.arrive(History("dev", old, truncated=True))
    assert model.unread == {}
    shown = texts(model, "dev")[-3:]
    assert "history of #dev" in shown[0] and "older messages skipped" in shown[0]
    assert shown[1].endswith("bob: old one") and shown[2].endswith("bob: old two")


def test_history_command_pages_back_from_the_oldest_message_seen() -> None:
    model, client = make_model("lobby")
    page = (message("lobby", "bob", "a", 41), message("lobby", "bob", "b", 42))
    client.arrive(History("lobby", page))
    model.submit("/history 20")
    model.submit("/history")
    assert client.calls == [("history", "lobby", 41, 20), ("history", "lobby", 41, 50)]


def test_whisper_is_marked_and_shown_where_the_user_is() -> None:
    model, client = make_model("lobby", "dev")
    model.switch_room("dev")
    client.arrive(Whisper("bob", "alice", BLUE, "psst", TS))
    line = last(model)
    assert re.fullmatch(rf"{STAMP} \[whisper\] bob \u2192 alice: psst", line.text)
    assert tag_of(line, "[whisper]") == Tag.WHISPER


def test_joins_parts_notices_and_errors_are_styled_distinctly() -> None:
    model, client = make_model("lobby")
    client.arrive(Joined("lobby", "bob", BLUE, TS))
    joined = last(model)
    client.arrive(Parted("lobby", "bob", "disconnected"))
    parted = last(model)
    client.arrive(Notice("shutdown", "the server is stopping"))
    notice = last(model)
    model.handle(Error("no_such_user", "nobody called zed"))
    error = last(model)
    assert joined.text.endswith("\u2192 bob joined #lobby")
    assert tag_of(joined, " joined #lobby") == Tag.JOIN
    assert parted.text.endswith("\u2190 bob left #lobby (disconnected)")
    assert tag_of(parted, "bob") == color_tag(BLUE)  # the color the member list knew
    assert tag_of(parted, " left #lobby") == Tag.PART
    assert tag_of(notice, "notice shutdown: the server is stopping") == Tag.NOTICE
    assert tag_of(error, "error no_such_user: nobody called zed") == Tag.ERROR


def test_a_message_for_a_room_not_joined_is_shown_with_its_room() -> None:
    model, client = make_model("lobby")
    client.arrive(message("gone", "bob", "late"))
    assert re.fullmatch(rf"{STAMP} \[gone\] bob: late", last(model).text)


def test_scrollback_is_bounded_per_room() -> None:
    model, client = make_model("lobby")
    for seq in range(1, MAX_SCROLLBACK_LINES + 11):
        client.arrive(message("lobby", "bob", f"n{seq}", seq))
    lines = texts(model)
    assert len(lines) == MAX_SCROLLBACK_LINES
    assert lines[-1].endswith(f"n{MAX_SCROLLBACK_LINES + 10}")


# -- members ------------------------------------------------------------------------


def test_rooms_and_members_are_the_sessions_snapshot() -> None:
    model, _ = make_model("lobby")
    model.handle(SessionChanged("alice", (
        RoomState("lobby", True, (Member("alice", RED), Member("zoe", BLUE)), None),
        RoomState("ops", False, (), None),
    )))
    assert model.rooms == ["lobby", "ops"]
    assert [m.name for m in model.members()] == ["alice", "zoe"]
    changes = model.take_changes()
    assert changes.rooms_changed and changes.members_changed


def test_member_list_follows_roster_joins_parts_and_renames() -> None:
    model, client = make_model("lobby")
    client.arrive(Roster("lobby", (Member("alice", RED), Member("Bob", BLUE))))
    assert [m.name for m in model.members()] == ["alice", "Bob"]
    client.arrive(Joined("lobby", "carol", GREEN, TS))
    client.arrive(Parted("lobby", "Bob", "quit"))
    client.arrive(Renamed("carol", "caz", GREEN))
    assert model.member_entries() == [("alice", RED), ("caz", GREEN)]
    assert model.take_changes().members_changed


def test_a_roster_in_parts_is_one_list() -> None:
    model, client = make_model("lobby")
    client.arrive(Roster("lobby", (Member("alice", RED),), more=True))
    client.arrive(Roster("lobby", (Member("bob", BLUE),)))
    assert [m.name for m in model.members()] == ["alice", "bob"]
    client.arrive(Roster("lobby", (Member("zed", BLUE),)))  # a new roster replaces it
    assert [m.name for m in model.members()] == ["zed"]


def test_members_are_per_room() -> None:
    model, client = make_model("lobby", "dev")
    client.arrive(Roster("dev", (Member("alice", RED), Member("dan", BLUE))))
    assert [m.name for m in model.members()] == ["alice"]  # lobby: our own join
    model.switch_room("dev")
    assert [m.name for m in model.members()] == ["alice", "dan"]


def test_who_shows_the_roster_it_asked_for() -> None:
    model, client = make_model("lobby")
    client.arrive(Roster("lobby", (Member("alice", RED),)))
    assert not any("members of" in text for text in texts(model))  # the join's roster
    model.submit("/who")
    client.arrive(Roster("lobby", (Member("alice", RED), Member("bob", BLUE))))
    assert client.calls == [("who", "lobby")]
    assert texts(model)[-1].endswith("members of #lobby: alice, bob")


def test_own_rename_changes_me_and_is_shown_in_every_room() -> None:
    model, client = make_model("lobby", "dev")
    for room in ("lobby", "dev"):
        client.arrive(Roster(room, (Member("alice", RED),)))
    model.submit("/nick al")
    client.arrive(Renamed("alice", "al", RED))
    assert client.calls == [("nick", "al")]
    assert model.me == "al"
    assert texts(model, "dev")[-1].endswith("you are now known as al")
    assert texts(model, "lobby")[-1].endswith("you are now known as al")


def test_bad_colors_are_not_used() -> None:
    model, client = make_model("lobby")
    client.arrive(Roster("lobby", (Member("bob", "red; -font x"),)))
    client.arrive(message("lobby", "bob", "hi", color="javascript:"))
    assert model.member_entries() == [("bob", None)]
    assert tag_of(last(model), "bob") == Tag.NAME


# -- submitted lines ----------------------------------------------------------------


@pytest.mark.parametrize("line", ["", "   ", "/jion dev", "/msg bob", "/join Bad!"])
def test_empty_and_bad_lines_send_nothing(line: str) -> None:
    model, client = make_model("lobby")
    before = len(texts(model))
    model.submit(line)
    assert client.calls == []
    if line.strip():
        assert tag_of(last(model), last(model).spans[-1].text) == Tag.ERROR
    else:
        assert len(texts(model)) == before


def test_help_lists_the_commands() -> None:
    model, client = make_model("lobby")
    model.submit("/help")
    shown = "\n".join(texts(model))
    for command in ("/join", "/part", "/room", "/msg", "/me", "/who", "/history", "/quit"):
        assert command in shown
    assert client.calls == []


def test_quit_asks_the_client_once() -> None:
    model, client = make_model("lobby")
    model.submit("/quit gone fishing")
    model.request_quit()  # then the window's close button
    assert client.calls == [("quit", "gone fishing")]
    assert model.quitting
    assert model.status_text() == "quitting\u2026"
    model.handle(Closed())
    assert model.finished
    assert model.exit_code == 0
    assert model.status_text() == "disconnected"


def test_quit_after_the_client_gave_up_sends_nothing() -> None:
    model, client = make_model("lobby")
    model.handle(Failed("signed in elsewhere with this session", "replaced"))
    model.request_quit()
    assert client.calls == []
    assert model.exit_code == 1


def test_saying_while_offline_is_queued_with_a_note() -> None:
    model, client = make_model("lobby", online=False)
    model.submit("anyone?")
    assert client.calls == [("say", "lobby", "anyone?", False)]
    assert texts(model)[-1].endswith("not connected: will be sent once reconnected")


def test_a_refused_action_is_one_error_line() -> None:
    model, client = make_model("lobby")
    client.fail = RuntimeError("the client is closed")
    model.submit("hello")
    assert texts(model)[-1].endswith("the client is closed")
    model.handle(ActionFailed("bad name 'x y'"))
    assert tag_of(last(model), "bad name 'x y'") == Tag.ERROR


# -- status bar -----------------------------------------------------------------------


def test_status_follows_the_connection() -> None:
    clock = Clock()
    model = ChatModel(FakeClient(), "alice", clock=clock)
    assert model.status_text() == "connecting as alice\u2026"
    model.handle(welcome())
    assert model.status_text() == "connected as alice"
    model.handle(ConnectionLost("connection reset by peer", 4.2))
    assert model.status_text() == "reconnecting in 5 s (connection reset by peer)"
    clock.now += 3.5
    assert model.status_text() == "reconnecting in 1 s (connection reset by peer)"
    lost = "connection lost (connection reset by peer), reconnecting in 5 s"
    assert texts(model)[-1].endswith(lost)
    model.handle(Reconnecting(2))
    assert model.status_text() == "reconnecting (attempt 2)\u2026"
    model.handle(Failed("cannot connect to h:1: connection refused", None))
    assert model.status_text() == "failed: cannot connect to h:1: connection refused"
    assert model.finished


def test_connected_line_names_the_server() -> None:
    model, client = make_model("lobby")
    client.session.welcomed("al", new_session=False)  # what the client does on welcome
    model.handle(welcome("al"))
    client.publish()
    assert texts(model)[-1].endswith("connected as al (chattycat/1.0)")
    assert model.me == "al"


# -- untrusted text -------------------------------------------------------------------

EVIL = "x\x1b[2J\u202eevil\x07\n"


def _raw_controls(spans: tuple[ViewSpan, ...]) -> list[str]:
    bad = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
    return [span.text for span in spans if bad.search(span.text)]


def test_names_and_text_are_sanitized_everywhere() -> None:
    model, client = make_model("lobby")
    events: list[Any] = [
        message("lobby", EVIL, EVIL),
        Whisper(EVIL, "alice", BLUE, EVIL, TS),
        Joined("lobby", EVIL, BLUE, TS),
        Parted("lobby", EVIL, EVIL),
        Renamed(EVIL, EVIL, BLUE),
        Notice(EVIL, EVIL),
        Error(EVIL, EVIL),
        RoomList((RoomInfo(EVIL, 1),)),
        ConnectionLost(EVIL, 1.0),
        Failed(EVIL, EVIL),
        History("lobby", (message("lobby", EVIL, EVIL, 7),)),
        message(EVIL, "bob", "to an unknown room"),
    ]
    for event in events:
        if isinstance(event, ConnectionLost | Failed):
            model.handle(event)
        else:
            client.arrive(event)
    client.arrive(Roster("lobby", (Member(EVIL, BLUE),)))
    assert all(not _raw_controls(line.spans) for line in model.view_lines())
    assert any("\u241b[2J" in text for text in texts(model))  # shown, inert
    assert all("\x1b" not in name for name, _ in model.member_entries())
    assert "\x1b" not in model.status_text()
