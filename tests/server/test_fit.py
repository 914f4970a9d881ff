"""Specification of splitting history and roster replies to fit max_frame (PROTOCOL 1)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from chattycat.protocol.messages import History, Member, Message, Roster, to_payload
from chattycat.server.fit import fit_history, fit_roster

MAX_FRAME = 1024

message_lists = st.lists(
    st.builds(
        Message,
        room=st.just("lobby"),
        seq=st.integers(1, 10**9),
        sender=st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True),
        color=st.just("#e06c75"),
        text=st.text(min_size=1, max_size=200),
        ts=st.floats(0, 2e9),
        id=st.none() | st.text(max_size=64),
        action=st.booleans(),
    ),
    max_size=40,
)
member_lists = st.lists(
    st.builds(Member, st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True), st.just("#2e9fd0")),
    max_size=80,
)
refs = st.none() | st.integers() | st.text(max_size=64)


def test_an_empty_history_is_one_frame() -> None:
    assert fit_history("lobby", [], MAX_FRAME, ref="r") == [History("lobby", (), ref="r")]


def test_an_empty_roster_is_one_frame() -> None:
    assert fit_roster("lobby", [], MAX_FRAME) == [Roster("lobby", ())]


def test_a_history_that_fits_is_one_frame_without_more() -> None:
    messages = [Message("lobby", i, "alice", "#e06c75", "hi", 1.0) for i in range(1, 4)]
    assert fit_history("lobby", messages, MAX_FRAME, truncated=True) == [
        History("lobby", tuple(messages), truncated=True)
    ]


def test_a_reply_that_fits_exactly_is_one_frame_and_one_byte_less_splits_it() -> None:
    members = [Member(f"user{i:02d}", "#2e9fd0") for i in range(10)]
    exact = len(to_payload(Roster("lobby", tuple(members))))
    assert fit_roster("lobby", members, exact) == [Roster("lobby", tuple(members))]
    parts = fit_roster("lobby", members, exact - 1)
    assert len(parts) == 2
    assert all(len(to_payload(part)) <= exact - 1 for part in parts)


@given(messages=message_lists, ref=refs, truncated=st.booleans())
def test_history_parts_fit_keep_order_and_say_more_on_all_but_the_last(
    messages: list[Message], ref: str | int | None, truncated: bool
) -> None:
    frames = fit_history("lobby", messages, MAX_FRAME, ref=ref, truncated=truncated)
    assert frames
    assert all(len(to_payload(f)) <= MAX_FRAME for f in frames)
    assert [m for f in frames for m in f.messages] == messages
    assert [f.more for f in frames] == [True] * (len(frames) - 1) + [False]
    assert all(f.room == "lobby" and f.ref == ref and f.truncated == truncated for f in frames)
    assert all(f.messages for f in frames) or len(frames) == 1


@given(members=member_lists, ref=refs)
def test_roster_parts_fit_keep_order_and_say_more_on_all_but_the_last(
    members: list[Member], ref: str | int | None
) -> None:
    frames = fit_roster("lobby", members, 512, ref=ref)
    assert frames
    assert all(len(to_payload(f)) <= 512 for f in frames)
    assert [m for f in frames for m in f.members] == members
    assert [f.more for f in frames] == [True] * (len(frames) - 1) + [False]
    assert all(f.room == "lobby" and f.ref == ref for f in frames)
    assert all(f.members for f in frames) or len(frames) == 1


@given(members=member_lists)
def test_splitting_is_greedy_no_part_could_have_taken_the_next_item(
    members: list[Member],
) -> None:
    frames = fit_roster("lobby", members, 512)
    for part, following in itertools.pairwise(frames):
        grown = Roster("lobby", (*part.members, following.members[0]), more=True)
        assert len(to_payload(grown)) > 512
