"""Rich rendering of display lines: roles become styles; no I/O.

What a line says is decided in :mod:`chattycat.ui.describe`, where network text
is already sanitized. Here it is only *appended* to a :class:`rich.text.Text`,
never parsed as console markup: a nickname such as ``[bold]x[/]`` is shown
literally and cannot restyle the user's screen.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.style import Style
from rich.text import Text

from chattycat.ui.describe import DisplayLine, Role, Span

__all__ = ["ROLE_STYLES", "make_console", "render_to_ansi", "span_style", "to_text"]

ROLE_STYLES: dict[Role, Style] = {
    Role.TIME: Style(dim=True),
    Role.ROOM: Style(color="cyan"),
    Role.NAME: Style(bold=True),
    Role.TEXT: Style(),
    Role.ACTION: Style(),
    Role.WHISPER: Style(color="magenta", italic=True),
    Role.JOIN: Style(color="green", dim=True),
    Role.PART: Style(dim=True),
    Role.NOTICE: Style(color="yellow"),
    Role.ERROR: Style(color="red", bold=True),
    Role.INFO: Style(dim=True),
    Role.MENTION: Style(reverse=True, bold=True),
    Role.ONLINE: Style(color="green"),
    Role.OFFLINE: Style(color="yellow"),
}


def span_style(span: Span) -> Style:
    """The style of one span: its role's, a name in its server-assigned color."""
    if span.role is Role.NAME and span.color is not None:
        return Style(color=span.color, bold=True)  # display lets only #rrggbb through
    return ROLE_STYLES[span.role]


def to_text(line: DisplayLine, current_room: str | None) -> Text:
    """``line`` as styled text, tagged ``[room]`` when about a room other than the current one."""
    text = Text(overflow="fold", end="")
    for span in line.framed(current_room):
        text.append(span.text, span_style(span))
    return text


def make_console(width: int, *, no_color: bool = False) -> Console:
    """A console that renders into memory for :func:`render_to_ansi`.

    With ``no_color`` the output is plain text; otherwise rich picks the color
    depth from ``COLORTERM``/``TERM`` and downsamples ``#rrggbb`` to fit.
    """
    return Console(
        file=io.StringIO(),  # only used through capture()
        force_terminal=True,
        color_system=None if no_color else "auto",
        width=max(width, 20),
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
        soft_wrap=False,
    )


def render_to_ansi(text: Text, console: Console) -> str:
    """``text`` as the string ``console`` would print, wrapped to its width."""
    with console.capture() as capture:
        console.print(text, end="", highlight=False, markup=False, emoji=False)
    return capture.get()
