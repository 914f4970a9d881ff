"""ChattyCat: a small self-hosted chat system and the event-loop library under it."""

from chattycat._version import __version__

__all__ = ["__version__"]
