"""Specification of the client's sans-IO session bookkeeping: frames in, what to show out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chattycat.client.session import ClientSession
from chattycat.protocol.messages import (
    History,
    Join,
    Joined,
    Member,
    Message,
    Notice,
    Parted,
    Pong,
    Renamed,
    RoomList,
    Roster,
    Say,
    Whisper,
    WhisperTo,
    Who,
)

ME = "alice"


def msg(room: str, seq: int, *, id: str | None = None, sender: str = "bob") -> Message:
    return Message(room, seq, sender, "red", f"line {seq}", 1_000.0 + seq, id)


def joined(room: str, name: str) -> Joined:
    return Joined(room, name, "blue", 1_000.0)


def names(session: ClientSession, room: str) -> list[str]:
    return [m.name for m in session.members(room)]


# -- delivery: once and in order ------------------------------------------------


def test_a_live_message_is_shown_once() -> None:
    session = ClientSession(["lobby"])
    assert session.receive(msg("lobby", 1), ME) == msg("lobby", 1)
    assert session.receive(msg("lobby", 1), ME) is None
    assert session.last_seq("lobby") == 1


def test_a_message_at_or_below_the_last_seq_is_dropped() -> None:
    session = ClientSession(["lobby"])
    session.receive(msg("lobby", 5), ME)
    assert session.receive(msg("lobby", 3), ME) is None
    assert session.receive(msg("lobby", 6), ME) is not None


def test_seqs_are_counted_per_room() -> None:
    session = ClientSession(["lobby", "dev"])
    session.receive(msg("lobby", 5), ME)
    assert session.receive(msg("dev", 1), ME) is not None
    assert (session.last_seq("lobby"), session.last_seq("dev")) == (5, 1)


def test_a_resume_history_is_filtered_to_what_was_not_shown() -> None:
    session = ClientSession(["lobby"])
    session.receive(msg("lobby", 2), ME)
    replay = History("lobby", (msg("lobby", 1), msg("lobby", 2), msg("lobby", 3)))
    shown = session.receive(replay, ME)
    assert shown == History("lobby", (msg("lobby", 3),))


def test_a_resume_history_with_nothing_new_shows_nothing_unless_truncated() -> None:
    session = ClientSession(["lobby"])
    session.receive(msg("lobby", 2), ME)
    assert session.receive(History("lobby", (msg("lobby", 2),)), ME) is None
    truncated = session.receive(History("lobby", (), truncated=True), ME)
    assert truncated == History("lobby", (), truncated=True)


def test_a_requested_history_page_is_shown_as_is_and_lowers_the_oldest_seq() -> None:
    session = ClientSession(["lobby"])
    session.receive(msg("lobby", 10), ME)
    session.expect_history("h-1")
    page = History("lobby", (msg("lobby", 8), msg("lobby", 9), msg("lobby", 10)), ref="h-1")
    assert session.receive(page, ME) == page
    assert session.oldest_seq("lobby") == 8
    assert session.last_seq("lobby") == 10


def test_a_requested_history_ref_is_forgotten_after_its_last_part() -> None:
    session = ClientSession(["lobby"])
    session.expect_history("h-1")
    session.receive(History("lobby", (msg("lobby", 1),), more=True, ref="h-1"), ME)
    session.receive(History("lobby", (msg("lobby", 2),), ref="h-1"), ME)
    session.receive(msg("lobby", 3), ME)
    # Not a requested page any more: filtered like a resume replay.
    assert session.receive(History("lobby", (msg("lobby", 3),), ref="h-1"), ME) is None


def test_oldest_seq_is_none_until_something_was_delivered() -> None:
    session = ClientSession(["lobby"])
    assert session.oldest_seq("lobby") is None
    session.receive(msg("lobby", 4), ME)
    session.receive(msg("lobby", 7), ME)
    assert session.oldest_seq("lobby") == 4


# -- pending says and whispers --------------------------------------------------


def test_a_say_is_pending_until_its_message_comes_back() -> None:
    session = ClientSession(["lobby"])
    session.add_pending(2, Say("lobby", "hi", "x-1"))
    assert session.is_pending("x-1") and session.pending_count() == 1
    session.receive(msg("lobby", 1, id="x-1", sender=ME), ME)
    assert not session.is_pending("x-1") and session.pending_count() == 0


def test_an_acknowledgement_inside_a_history_counts_even_when_not_shown() -> None:
    session = ClientSession(["lobby"])
    session.receive(msg("lobby", 1), ME)
    session.add_pending(2, Say("lobby", "hi", "x-1"))
    session.receive(History("lobby", (msg("lobby", 1, id="x-1"),)), ME)
    assert not session.is_pending("x-1")


def test_a_whisper_is_acknowledged_by_our_own_echo_only() -> None:
    session = ClientSession()
    session.add_pending(2, WhisperTo("bob", "psst", "x-1"))
    session.receive(Whisper("bob", ME, "red", "psst", 1.0, "x-1"), ME)
    assert session.is_pending("x-1")
    session.receive(Whisper("Alice", "bob", "red", "psst", 1.0, "x-1"), ME)
    assert not session.is_pending("x-1")


def test_pending_entries_keep_their_order() -> None:
    session = ClientSession(["lobby"])
    first, second = Say("lobby", "a", "x-1"), WhisperTo("bob", "b", "x-3")
    session.add_pending(2, first)
    session.add_pending(4, second)
    assert session.pending() == [(2, first), (4, second)]


def test_a_refused_say_is_no_longer_pending() -> None:
    session = ClientSession(["lobby"])
    session.add_pending(2, Say("lobby", "hi", "x-1"))
    session.refused("x-1", None)
    assert session.pending_count() == 0


def test_a_refused_join_drops_the_room() -> None:
    session = ClientSession()
    session.join("secret")
    session.refused("x-5", Join("secret", ref="x-5"))
    assert session.rooms == []


def test_a_refused_other_request_keeps_the_rooms() -> None:
    session = ClientSession(["lobby"])
    session.refused("x-5", Who("lobby", ref="x-5"))
    assert session.rooms == ["lobby"]


# -- rooms and members ----------------------------------------------------------


def test_rooms_keep_join_order_and_are_a_set() -> None:
    session = ClientSession(["lobby", "dev"])
    session.join("lobby")
    session.join("games")
    assert session.rooms == ["lobby", "dev", "games"]


def test_our_own_joined_confirms_the_room_and_starts_its_member_list() -> None:
    session = ClientSession()
    session.receive(joined("lobby", ME), ME)
    assert session.rooms == ["lobby"]
    assert names(session, "lobby") == [ME]
    assert session.rooms_to_join() == []


def test_members_come_from_roster_joined_parted_and_renamed() -> None:
    session = ClientSession(["lobby"])
    session.receive(Roster("lobby", (Member("Carol", "red"), Member(ME, "blue"))), ME)
    session.receive(joined("lobby", "bob"), ME)
    assert names(session, "lobby") == [ME, "bob", "Carol"]
    session.receive(Parted("lobby", "carol", "bye"), ME)
    session.receive(Renamed("bob", "Robert", "green"), ME)
    assert names(session, "lobby") == [ME, "Robert"]


def test_a_roster_in_parts_is_assembled_and_a_new_roster_replaces_it() -> None:
    session = ClientSession(["lobby"])
    session.receive(Roster("lobby", (Member("a", "red"),), more=True), ME)
    session.receive(Roster("lobby", (Member("b", "red"),)), ME)
    assert names(session, "lobby") == ["a", "b"]
    session.receive(Roster("lobby", (Member("c", "red"),)), ME)
    assert names(session, "lobby") == ["c"]


def test_a_roster_for_a_room_we_do_not_want_is_shown_but_not_recorded() -> None:
    session = ClientSession()
    roster = Roster("elsewhere", (Member("a", "red"),))
    assert session.receive(roster, ME) == roster
    assert session.members("elsewhere") == [] and session.rooms == []


def test_members_of_a_room_we_are_not_in_are_not_tracked() -> None:
    session = ClientSession(["lobby"])
    session.receive(joined("dev", "bob"), ME)
    assert session.members("dev") == []


def test_our_own_parted_forgets_the_room() -> None:
    session = ClientSession()
    session.receive(joined("lobby", ME), ME)
    session.receive(Parted("lobby", ME, "part"), ME)
    assert session.rooms == [] and session.members("lobby") == []


def test_parting_online_waits_for_the_server_but_offline_forgets_at_once() -> None:
    online, offline = ClientSession(), ClientSession()
    for session in (online, offline):
        session.receive(joined("lobby", ME), ME)
    online.part("lobby", online=True)
    offline.part("lobby", online=False)
    assert online.rooms == offline.rooms == []
    assert names(online, "lobby") == [ME]
    assert offline.members("lobby") == []


# -- resuming -------------------------------------------------------------------


def test_only_confirmed_rooms_are_resumed_the_others_joined() -> None:
    session = ClientSession(["lobby", "dev"])
    session.receive(joined("lobby", ME), ME)
    session.receive(msg("lobby", 7), ME)
    assert session.resume_points() == {"lobby": 7}
    assert session.rooms_to_join() == ["dev"]


def test_a_lost_connection_clears_members_and_unwanted_confirmations() -> None:
    session = ClientSession()
    session.receive(joined("lobby", ME), ME)
    session.receive(joined("dev", ME), ME)
    session.part("dev", online=True)  # the parted never came
    session.connection_lost()
    assert session.members("lobby") == []
    assert session.resume_points() == {"lobby": 0}
    session.join("dev")
    assert session.rooms_to_join() == ["dev"]


def test_frames_that_are_not_for_the_user_are_not_shown() -> None:
    session = ClientSession()
    assert session.receive(Pong("t"), ME) is None
    notice = Notice("maintenance", "restarting soon")
    assert session.receive(notice, ME) == notice
    rooms = RoomList(())
    assert session.receive(rooms, ME) == rooms


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
    session = ClientSession(ROOMS)
    shown: list[Message] = []
    for frame in frames:
        out = session.receive(frame, ME)
        if isinstance(out, Message):
            shown.append(out)
        elif isinstance(out, History):
            shown.extend(out.messages)
    for room in ROOMS:
        seqs = [m.seq for m in shown if m.room == room]
        assert seqs == sorted(set(seqs))
        assert session.last_seq(room) == (seqs[-1] if seqs else 0)


def test_a_server_that_forgot_us_is_trusted_to_number_rooms_afresh() -> None:
    session = ClientSession(["lobby"])
    me = "alice"
    session.receive(Joined("lobby", me, "#e06c75", 1.0), me)
    for seq in (1, 2, 3):
        session.receive(Message("lobby", seq, "bob", "#2e9fd0", f"m{seq}", 1.0), me)
    assert session.last_seq("lobby") == 3
    session.server_forgot_us()  # e.g. restarted with --db :memory:
    shown = session.receive(Message("lobby", 1, "bob", "#2e9fd0", "again from 1", 2.0), me)
    assert isinstance(shown, Message) and shown.text == "again from 1"
