"""The desktop client's look: one dark palette and the Tk options built from it.

Tk's defaults are a light theme, and every widget left on them shows up as a
white slab beside the dark panes (the entry and the status bar once did), and
a Listbox's default ``selectforeground`` is black, which is unreadable on a
dark selection. So every widget the window makes takes its options from here,
and ``tests/ui/gui/test_theme.py`` checks each text color against the
background it is drawn on: WCAG 2 level AA, a contrast ratio of at least
4.5:1 for normal text. No Tk import: the palette is plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from chattycat.ui.gui.model import Tag

__all__ = [
    "BACKGROUND",
    "BORDER",
    "DIM_FOREGROUND",
    "ENTRY_BACKGROUND",
    "ENTRY_OPTIONS",
    "FOREGROUND",
    "LISTBOX_OPTIONS",
    "PANEL_BACKGROUND",
    "READABLE_PAIRS",
    "SCROLLBAR_ACTIVE",
    "SCROLLBAR_OPTIONS",
    "SCROLLBAR_SLIDER",
    "SELECT_BACKGROUND",
    "SELECT_FOREGROUND",
    "SIDE_LIST_CHARS",
    "STATUS_OPTIONS",
    "TAG_LOOKS",
    "TEXT_OPTIONS",
]

# Backgrounds. The side lists and the status bar frame the window in the
# darkest grey, the messages sit a step lighter, the entry is lighter still
# so the eye finds where to type. The side lists must stay that dark: the
# member names are drawn there in the colors the server assigns
# (chattycat.server.colors), and on a grey much lighter some of those fall
# below 4.5:1 (on the entry's grey, to 4:1).
PANEL_BACKGROUND: Final = "#17181b"  # rooms, members, status bar
BACKGROUND: Final = "#1e1f22"  # the message pane
ENTRY_BACKGROUND: Final = "#2b2d31"
BORDER: Final = "#0e0f11"  # the lines between panes
SCROLLBAR_SLIDER: Final = "#4e5058"
SCROLLBAR_ACTIVE: Final = "#6d6f78"  # under the pointer

FOREGROUND: Final = "#dcdfe4"
DIM_FOREGROUND: Final = "#a3a8b1"  # the status bar, disabled text
# A selected room or member is white on blue: the selection must read as
# clearly as the rest, and must not depend on the name color the server
# chose (those are picked to read on dark and light, not on a selection).
SELECT_FOREGROUND: Final = "#ffffff"
SELECT_BACKGROUND: Final = "#2f5d8a"

# Width of the room and member lists, in characters of the list font. They
# keep it at any window size (their grid columns have no weight): the
# message pane takes whatever the window gains or loses.
SIDE_LIST_CHARS: Final = 14

TAG_LOOKS: Final[dict[str, dict[str, str]]] = {
    Tag.TIME: {"foreground": "#8b9098"},
    Tag.NAME: {"font": "bold"},
    Tag.ROOM: {"foreground": "#56b6c2"},
    Tag.JOIN: {"foreground": "#7ec07f"},
    Tag.PART: {"foreground": "#8b9098"},
    Tag.WHISPER: {"foreground": "#c678dd", "font": "italic"},
    Tag.NOTICE: {"foreground": "#e5c07b"},
    Tag.ERROR: {"foreground": "#ef6b73", "font": "bold"},
    Tag.INFO: {"foreground": "#8b9098", "font": "italic"},
    Tag.MENTION: {"background": "#4b3f1f", "font": "bold"},
    Tag.ONLINE: {"foreground": "#7ec07f"},
    Tag.OFFLINE: {"foreground": "#e5c07b"},
}

TEXT_OPTIONS: Final[Mapping[str, str | int]] = {
    "background": BACKGROUND, "foreground": FOREGROUND, "insertbackground": FOREGROUND,
    "selectbackground": SELECT_BACKGROUND, "selectforeground": SELECT_FOREGROUND,
    "inactiveselectbackground": SELECT_BACKGROUND,
    "highlightthickness": 0, "borderwidth": 0, "padx": 6, "pady": 4,
}  # fmt: skip

LISTBOX_OPTIONS: Final[Mapping[str, str | int]] = {
    "width": SIDE_LIST_CHARS, "background": PANEL_BACKGROUND, "foreground": FOREGROUND,
    "selectbackground": SELECT_BACKGROUND, "selectforeground": SELECT_FOREGROUND,
    # A flat border in the list's own color is the only padding a Listbox
    # has: without it the names touch the window's edge.
    "highlightthickness": 0, "relief": "flat", "borderwidth": 4, "selectborderwidth": 0,
}  # fmt: skip

ENTRY_OPTIONS: Final[Mapping[str, str | int]] = {
    "background": ENTRY_BACKGROUND, "foreground": FOREGROUND, "insertbackground": FOREGROUND,
    "selectbackground": SELECT_BACKGROUND, "selectforeground": SELECT_FOREGROUND,
    "disabledbackground": PANEL_BACKGROUND, "disabledforeground": DIM_FOREGROUND,
    "relief": "flat", "borderwidth": 4,
    # The focus ring: a thin line in the selection color while typing.
    "highlightthickness": 1, "highlightcolor": SELECT_BACKGROUND,
    "highlightbackground": BORDER,
}  # fmt: skip

STATUS_OPTIONS: Final[Mapping[str, str | int]] = {
    "background": PANEL_BACKGROUND, "foreground": DIM_FOREGROUND,
    "anchor": "w", "padx": 6, "pady": 2,
}  # fmt: skip

SCROLLBAR_OPTIONS: Final[Mapping[str, str | int]] = {
    "background": SCROLLBAR_SLIDER, "activebackground": SCROLLBAR_ACTIVE,
    "troughcolor": BACKGROUND, "highlightthickness": 0, "borderwidth": 0,
    "elementborderwidth": 1, "relief": "flat", "width": 12,
}  # fmt: skip

# Every (text color, background) pair the window draws, for the contrast
# test: plain text on each surface, selections, and each tag on the messages.
READABLE_PAIRS: Final[tuple[tuple[str, str, str], ...]] = (
    ("messages", FOREGROUND, BACKGROUND),
    ("side lists", FOREGROUND, PANEL_BACKGROUND),
    ("entry", FOREGROUND, ENTRY_BACKGROUND),
    ("disabled entry", DIM_FOREGROUND, PANEL_BACKGROUND),
    ("status bar", DIM_FOREGROUND, PANEL_BACKGROUND),
    ("selection", SELECT_FOREGROUND, SELECT_BACKGROUND),
    *(
        (f"tag {tag}", look.get("foreground", FOREGROUND), look.get("background", BACKGROUND))
        for tag, look in TAG_LOOKS.items()
    ),
)
