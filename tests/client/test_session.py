"""Specification of the client's sans-IO session bookkeeping: frames in, what to show out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.client.events import RoomState, SessionChanged
from chattycat.client.session import ENTRY_HISTORY_MESSAGES, ClientSession
from chattycat.protocol.messages import (
    History,
    Join,
    Joined,
    Member,
    Message,
    Notice,
    Part,
    Parted,
    Pong,
    Renamed,
    RoomList,
    Roster,
    Who,
)

ME = "alice"


def msg(room: str, seq: int, *, id: str | None = None, sender: str = "bob") -> Message:
    return Message(room, seq, sender, "red", f"line {seq}", 1_000.0 + seq, id)


def joined(room: str, name: str = ME) -> Joined:
    return Joined(room, name, "blue", 1_000.0)


def names(session: ClientSession, room: str) -> list[str]:
    return [m.name for m in session.members(room)]


# -- delivery: once and in order ------------------------------------------------


def test_a_live_message_is_shown_once() -> None:
    session = ClientSession(ME, ["lobby"])
    assert session.receive(msg("lobby", 1)) == msg("lobby", 1)
    assert session.receive(msg("lobby", 1)) is None
    assert session.last_seq("lobby") == 1


def test_a_message_at_or_below_the_last_seq_is_dropped() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(msg("lobby", 5))
    assert session.receive(msg("lobby", 3)) is None
    assert session.receive(msg("lobby", 6)) is not None


def test_seqs_are_counted_per_room() -> None:
    session = ClientSession(ME, ["lobby", "dev"])
    session.receive(msg("lobby", 5))
    assert session.receive(msg("dev", 1)) is not None
    assert (session.last_seq("lobby"), session.last_seq("dev")) == (5, 1)


def test_a_resume_history_is_filtered_to_what_was_not_shown() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(msg("lobby", 2))
    replay = History("lobby", (msg("lobby", 1), msg("lobby", 2), msg("lobby", 3)))
    shown = session.receive(replay)
    assert shown == History("lobby", (msg("lobby", 3),))


def test_a_resume_history_with_nothing_new_shows_nothing_unless_truncated() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(msg("lobby", 2))
    assert session.receive(History("lobby", (msg("lobby", 2),))) is None
    truncated = session.receive(History("lobby", (), truncated=True))
    assert truncated == History("lobby", (), truncated=True)


def test_a_requested_history_page_is_shown_as_is_and_lowers_the_oldest_seq() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(msg("lobby", 10))
    session.expect_history("h-1")
    page = History("lobby", (msg("lobby", 8), msg("lobby", 9), msg("lobby", 10)), ref="h-1")
    assert session.receive(page) == page
    assert session.oldest_seq("lobby") == 8
    assert session.last_seq("lobby") == 10


def test_a_requested_history_ref_is_forgotten_after_its_last_part() -> None:
    session = ClientSession(ME, ["lobby"])
    session.expect_history("h-1")
    session.receive(History("lobby", (msg("lobby", 1),), more=True, ref="h-1"))
    session.receive(History("lobby", (msg("lobby", 2),), ref="h-1"))
    session.receive(msg("lobby", 3))
    # Not a requested page any more: filtered like a resume replay.
    assert session.receive(History("lobby", (msg("lobby", 3),), ref="h-1")) is None


def test_oldest_seq_is_none_until_something_was_delivered() -> None:
    session = ClientSession(ME, ["lobby"])
    assert session.oldest_seq("lobby") is None
    session.receive(msg("lobby", 4))
    session.receive(msg("lobby", 7))
    assert session.oldest_seq("lobby") == 4


# -- refusals -------------------------------------------------------------------


def test_a_refused_join_drops_the_room() -> None:
    session = ClientSession(ME)
    session.join("secret")
    session.refused("x-5", Join("secret", ref="x-5"))
    assert session.rooms == []


def test_a_refused_other_request_keeps_the_rooms() -> None:
    session = ClientSession(ME, ["lobby"])
    session.refused("x-5", Who("lobby", ref="x-5"))
    assert session.rooms == ["lobby"]


# -- rooms and members ----------------------------------------------------------


def test_rooms_keep_join_order_and_are_a_set() -> None:
    session = ClientSession(ME, ["lobby", "dev"])
    session.join("lobby")
    session.join("games")
    assert session.rooms == ["lobby", "dev", "games"]


def test_our_own_joined_confirms_the_room_and_starts_its_member_list() -> None:
    session = ClientSession(ME)
    session.receive(joined("lobby"))
    assert session.rooms == ["lobby"]
    assert names(session, "lobby") == [ME]
    assert session.rooms_to_join() == []


def test_members_come_from_roster_joined_parted_and_renamed() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(Roster("lobby", (Member("Carol", "red"), Member(ME, "blue"))))
    session.receive(joined("lobby", "bob"))
    assert names(session, "lobby") == [ME, "bob", "Carol"]
    session.receive(Parted("lobby", "carol", "bye"))
    session.receive(Renamed("bob", "Robert", "green"))
    assert names(session, "lobby") == [ME, "Robert"]


def test_a_roster_in_parts_is_assembled_and_a_new_roster_replaces_it() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(Roster("lobby", (Member("a", "red"),), more=True))
    session.receive(Roster("lobby", (Member("b", "red"),)))
    assert names(session, "lobby") == ["a", "b"]
    session.receive(Roster("lobby", (Member("c", "red"),)))
    assert names(session, "lobby") == ["c"]


def test_a_roster_for_a_room_we_do_not_want_is_shown_but_not_recorded() -> None:
    session = ClientSession(ME)
    roster = Roster("elsewhere", (Member("a", "red"),))
    assert session.receive(roster) == roster
    assert session.members("elsewhere") == [] and session.rooms == []


def test_members_of_a_room_we_are_not_in_are_not_tracked() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(joined("dev", "bob"))
    assert session.members("dev") == []


def test_our_own_parted_forgets_the_room() -> None:
    session = ClientSession(ME)
    session.receive(joined("lobby"))
    session.receive(Parted("lobby", ME, "part"))
    assert session.rooms == [] and session.members("lobby") == []


def test_parting_online_waits_for_the_server_but_offline_forgets_at_once() -> None:
    online, offline = ClientSession(ME), ClientSession(ME)
    for session in (online, offline):
        session.receive(joined("lobby"))
    online.part("lobby", online=True)
    offline.part("lobby", online=False)
    assert online.rooms == offline.rooms == []
    assert names(online, "lobby") == [ME]
    assert offline.members("lobby") == []


# -- resuming -------------------------------------------------------------------


def test_only_confirmed_rooms_are_resumed_the_others_joined() -> None:
    session = ClientSession(ME, ["lobby", "dev"])
    session.receive(joined("lobby"))
    session.receive(msg("lobby", 7))
    assert session.resume_points(fresh=False) == {"lobby": 7}
    assert session.rooms_to_join() == ["dev"]


def test_a_lost_connection_clears_members_and_unwanted_confirmations() -> None:
    session = ClientSession(ME)
    session.receive(joined("lobby"))
    session.receive(joined("dev"))
    session.part("dev", online=True)  # the parted never came
    session.connection_lost()
    assert session.members("lobby") == []
    assert session.resume_points(fresh=False) == {"lobby": 0}
    session.join("dev")
    assert session.rooms_to_join() == ["dev"]


def test_frames_that_are_not_for_the_user_are_not_shown() -> None:
    session = ClientSession(ME)
    assert session.receive(Pong("t")) is None
    notice = Notice("maintenance", "restarting soon")
    assert session.receive(notice) == notice
    rooms = RoomList(())
    assert session.receive(rooms) == rooms


# -- property: once and in order, whatever the network does --------------------

ROOMS = ("lobby", "dev")
# A frame the server might send: a live message, or a replay of some messages.
live = st.builds(msg, st.sampled_from(ROOMS), st.integers(1, 30))
replay = st.builds(
    lambda room, seqs: History(room, tuple(msg(room, s) for s in seqs)),
    st.sampled_from(ROOMS),
    st.lists(st.integers(1, 30), max_size=8),
)


@settings(max_examples=300)
@given(st.lists(st.one_of(live, replay), max_size=40))
def test_each_room_seq_is_shown_at_most_once_and_in_increasing_order(
    frames: list[Message | History],
) -> None:
    session = ClientSession(ME, ROOMS)
    shown: list[Message] = []
    for frame in frames:
        out = session.receive(frame)
        if isinstance(out, Message):
            shown.append(out)
        elif isinstance(out, History):
            shown.extend(out.messages)
    for room in ROOMS:
        seqs = [m.seq for m in shown if m.room == room]
        assert seqs == sorted(set(seqs))
        assert session.last_seq(room) == (seqs[-1] if seqs else 0)


def test_a_server_that_forgot_us_is_trusted_to_number_rooms_afresh() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(Joined("lobby", ME, "#e06c75", 1.0))
    for seq in (1, 2, 3):
        session.receive(Message("lobby", seq, "bob", "#2e9fd0", f"m{seq}", 1.0))
    assert session.last_seq("lobby") == 3
    session.welcomed(ME, new_session=True)  # e.g. restarted with --db :memory:
    shown = session.receive(Message("lobby", 1, "bob", "#2e9fd0", "again from 1", 2.0))
    assert isinstance(shown, Message) and shown.text == "again from 1"


# -- parts and joins in flight -------------------------------------------------------


def test_part_of_a_room_not_joined_is_refused() -> None:
    session = ClientSession(ME, ["lobby"])
    with pytest.raises(ValueError, match="you are not in #dev"):
        session.part("dev", online=True)


def test_a_part_right_after_a_join_is_not_undone_by_the_late_joined() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(joined("lobby"))
    session.join("qa")
    assert session.rooms == ["lobby", "qa"]
    session.part("qa", online=True)  # the join is still on its way
    assert session.rooms == ["lobby"]
    session.receive(joined("qa"))  # the server carries out the join...
    assert session.rooms == ["lobby"]
    session.receive(Roster("qa", (Member(ME, "blue"),)))
    session.receive(Parted("qa", ME, "part"))  # ...then the part
    assert session.rooms == ["lobby"] and session.members("qa") == []


def test_a_join_right_after_a_part_is_not_undone_by_the_late_parted() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(joined("lobby"))
    session.part("lobby", online=True)
    session.join("lobby")
    session.receive(Parted("lobby", ME, "part"))
    assert session.rooms == ["lobby"]
    session.receive(joined("lobby"))
    assert names(session, "lobby") == [ME]


def test_a_refused_part_forgets_the_room_it_left() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(joined("lobby"))
    session.part("lobby", online=True)
    session.refused("x-9", Part("lobby", ref="x-9"))  # not_in_room after all
    assert session.rooms == [] and session.members("lobby") == []


def test_joined_and_parted_that_we_did_not_ask_for_change_the_rooms() -> None:
    # The server's default room after a fresh hello; a takeover leaving a room.
    session = ClientSession(ME)
    session.receive(joined("lobby"))
    assert session.rooms == ["lobby"]
    session.receive(Parted("lobby", ME, "part"))
    assert session.rooms == []


# -- entering the rooms given at start ---------------------------------------------


def test_a_fresh_hello_resumes_the_rooms_given_at_start_from_zero() -> None:
    session = ClientSession(ME, ["ops", "dev"])
    session.join("games")  # typed before the welcome: joined after it
    assert session.resume_points(fresh=True) == {"ops": 0, "dev": 0}
    assert session.rooms_to_join() == ["games"]


def test_no_rooms_given_means_no_resume_and_the_default_room() -> None:
    session = ClientSession(ME)
    assert session.resume_points(fresh=True) == {}


def test_entering_shows_only_the_newest_messages_like_a_join() -> None:
    session = ClientSession(ME, ["ops"])
    session.resume_points(fresh=True)
    total = ENTRY_HISTORY_MESSAGES + 30
    first = tuple(msg("ops", seq) for seq in range(1, 41))
    rest = tuple(msg("ops", seq) for seq in range(41, total + 1))
    assert session.receive(History("ops", first, more=True)) is None  # parts are assembled
    shown = session.receive(History("ops", rest))
    assert isinstance(shown, History)
    assert [m.seq for m in shown.messages] == list(range(31, total + 1))
    assert shown.truncated  # "older messages skipped: /history to page back"
    assert (session.oldest_seq("ops"), session.last_seq("ops")) == (31, total)
    # From then on the room's histories are filtered as ever.
    assert session.receive(History("ops", (msg("ops", total),))) is None


def test_entering_a_quiet_room_shows_all_without_truncation() -> None:
    session = ClientSession(ME, ["ops"])
    shown = session.receive(History("ops", (msg("ops", 1), msg("ops", 2))))
    assert shown == History("ops", (msg("ops", 1), msg("ops", 2)))


# -- snapshots ---------------------------------------------------------------------


def test_a_snapshot_tells_name_rooms_members_and_oldest_seq() -> None:
    session = ClientSession(ME, ["lobby", "dev"])
    session.receive(joined("lobby"))
    session.receive(Roster("lobby", (Member("bob", "red"), Member(ME, "blue"))))
    session.receive(msg("lobby", 4))
    assert session.take_snapshot() == SessionChanged(ME, (
        RoomState("lobby", True, (Member(ME, "blue"), Member("bob", "red")), 4),
        RoomState("dev", False, (), None),
    ))


def test_a_snapshot_is_taken_only_when_something_in_it_changed() -> None:
    session = ClientSession(ME, ["lobby"])
    session.receive(joined("lobby"))
    session.receive(msg("lobby", 1))
    assert session.take_snapshot() is not None
    assert session.take_snapshot() is None
    session.receive(msg("lobby", 2))  # the oldest seq stays: nothing to tell
    assert session.take_snapshot() is None
    session.receive(Renamed(ME, "al", "blue"))
    snapshot = session.take_snapshot()
    assert snapshot is not None and snapshot.me == "al"
    assert snapshot.members("lobby") == (Member("al", "blue"),)
