"""Specification of user colors (PROTOCOL section 2): readable, distinct, and spread out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chattycat.protocol.messages import Hello, Join, Welcome
from chattycat.server.colors import PALETTE, contrast_ratio, pick_color
from chattycat.server.memory_store import MemoryStore
from chattycat.server.state import ChatState, RoomsConfig, Send
from tests.server.driving import Driven

START = 1_000.0


@pytest.fixture
def state() -> Iterator[Driven]:
    yield Driven(ChatState(RoomsConfig(flood_rate_per_s=0.0)), MemoryStore())


def sign_in(state: Driven, conn: int, name: str, **hello: object) -> Welcome:
    state.connect(conn, START)
    effect = state.receive(conn, Hello(name, **hello), START)[0]  # type: ignore[arg-type]
    assert isinstance(effect, Send) and isinstance(effect.frame, Welcome)
    return effect.frame


def test_palette_has_at_least_12_colors() -> None:
    assert len(PALETTE) >= 12


def test_palette_colors_are_distinct_rrggbb_strings() -> None:
    assert all(re.fullmatch(r"#[0-9a-f]{6}", color) for color in PALETTE)
    assert len(set(PALETTE)) == len(PALETTE)


@pytest.mark.parametrize("color", PALETTE)
@pytest.mark.parametrize("background", ["#000000", "#ffffff"])
def test_every_palette_color_is_readable_on_dark_and_light_backgrounds(
    color: str, background: str
) -> None:
    assert contrast_ratio(color, background) >= 3.0


def test_contrast_ratio_of_black_and_white_is_21_and_of_a_color_with_itself_is_1() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#e06c75", "#e06c75") == pytest.approx(1.0)


@given(st.lists(st.sampled_from(PALETTE), max_size=len(PALETTE) - 1, unique=True))
def test_pick_color_avoids_the_colors_of_neighbours_while_the_palette_lasts(
    neighbours: list[str],
) -> None:
    assert pick_color(neighbours, neighbours) not in neighbours


def test_pick_color_with_the_palette_used_up_picks_the_least_used() -> None:
    neighbours = [*PALETTE, *PALETTE[1:]]  # every color once, all but the first twice
    assert pick_color(neighbours, neighbours) == PALETTE[0]


def test_pick_color_breaks_ties_by_use_on_the_whole_server() -> None:
    assert pick_color([], [PALETTE[0], PALETTE[1]]) == PALETTE[2]


def test_users_joining_the_lobby_get_distinct_colors_while_the_palette_lasts(
    state: Driven,
) -> None:
    colors = [sign_in(state, conn, f"user{conn}").color for conn in range(len(PALETTE) + 4)]
    assert len(set(colors[: len(PALETTE)])) == len(PALETTE)
    assert set(colors) <= set(PALETTE)


def test_a_newcomer_resuming_into_a_room_gets_a_color_distinct_from_its_members(
    state: Driven,
) -> None:
    sign_in(state, 1, "alice")
    bob = sign_in(state, 2, "bob")
    state.receive(2, Join("dev"), START)
    carol = sign_in(state, 3, "carol", resume={"dev": 0})
    assert carol.color != bob.color


def test_a_returning_user_gets_a_color_distinct_from_the_rooms_it_joins(
    state: Driven,
) -> None:
    alice = sign_in(state, 1, "alice")
    sign_in(state, 2, "bob")
    state.disconnected(1, START)
    carol = sign_in(state, 3, "carol")  # alice's color is free now: carol gets it
    assert carol.color == alice.color
    back = sign_in(state, 4, "alice", session=alice.session)
    assert back.color not in {carol.color, PALETTE[1]}
