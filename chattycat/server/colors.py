"""The palette of user colors and how the server picks one for a newcomer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["PALETTE", "contrast_ratio", "pick_color"]

# Mid-luminance hues: each has a WCAG contrast ratio of at least 3:1 against
# both black and white, so a name stays readable on dark and light terminals
# alike (tests/test_colors.py checks this). Ordered so that neighbours differ
# in hue: the first few users of a room get clearly different colors.
PALETTE: tuple[str, ...] = (
    "#e06c75",  # red
    "#2e9fd0",  # sky
    "#6f9a38",  # leaf
    "#b76ce0",  # violet
    "#c97b35",  # orange
    "#1fa39b",  # teal
    "#d45fb0",  # magenta
    "#5b8def",  # blue
    "#a88a00",  # gold
    "#3aa66a",  # green
    "#8f7ff0",  # lavender
    "#c07a5a",  # clay
    "#8d9440",  # olive
    "#7d8aa3",  # slate
)


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def _luminance(color: str) -> float:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast_ratio(color_a: str, color_b: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colors (1 to 21)."""
    high, low = sorted((_luminance(color_a), _luminance(color_b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def pick_color(
    neighbours: Iterable[str], everyone: Iterable[str], palette: Sequence[str] = PALETTE
) -> str:
    """The color for a newcomer.

    ``neighbours`` are the colors of the users in the rooms the newcomer is
    about to share; ``everyone`` those of all users on the server. The least
    used color among neighbours wins (distinct while the palette lasts), ties
    broken by the least used on the whole server, then palette order.
    """
    near = Counter(neighbours)
    far = Counter(everyone)
    return min(palette, key=lambda c: (near[c], far[c], palette.index(c)))
