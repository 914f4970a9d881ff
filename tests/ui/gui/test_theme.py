"""Specification of the desktop client's palette: every text reads at WCAG AA."""

from __future__ import annotations

import pytest

from chattycat.server.colors import PALETTE, contrast_ratio
from chattycat.ui.gui import theme

# WCAG 2, success criterion 1.4.3 (level AA): normal-size text needs 4.5:1.
AA_NORMAL_TEXT = 4.5


@pytest.mark.parametrize(("what", "foreground", "background"), theme.READABLE_PAIRS)
def test_each_text_color_reads_on_its_background(
    what: str, foreground: str, background: str
) -> None:
    assert contrast_ratio(foreground, background) >= AA_NORMAL_TEXT, what


def test_a_selected_room_or_member_is_light_on_a_dark_selection() -> None:
    # The reported defect: the Listbox default, black, on a dark grey.
    assert contrast_ratio(theme.SELECT_FOREGROUND, theme.SELECT_BACKGROUND) >= AA_NORMAL_TEXT
    assert contrast_ratio(theme.SELECT_FOREGROUND, "#ffffff") < contrast_ratio(
        theme.SELECT_FOREGROUND, "#000000"
    )


@pytest.mark.parametrize("color", PALETTE)
def test_every_name_color_the_server_assigns_reads_in_the_lists_and_messages(color: str) -> None:
    assert contrast_ratio(color, theme.PANEL_BACKGROUND) >= AA_NORMAL_TEXT
    assert contrast_ratio(color, theme.BACKGROUND) >= AA_NORMAL_TEXT


@pytest.mark.parametrize(
    "background",
    [theme.BACKGROUND, theme.PANEL_BACKGROUND, theme.ENTRY_BACKGROUND, theme.BORDER],
)
def test_every_surface_is_dark_so_no_pane_stands_out_white(background: str) -> None:
    assert contrast_ratio(background, "#ffffff") > contrast_ratio(background, "#000000")


def test_widgets_take_their_colors_from_the_palette() -> None:
    surfaces = {theme.BACKGROUND, theme.PANEL_BACKGROUND, theme.ENTRY_BACKGROUND}
    for options in (
        theme.TEXT_OPTIONS,
        theme.LISTBOX_OPTIONS,
        theme.ENTRY_OPTIONS,
        theme.STATUS_OPTIONS,
    ):
        assert options["background"] in surfaces
        assert (options["foreground"], options["background"]) in {
            (fg, bg) for _, fg, bg in theme.READABLE_PAIRS
        }
