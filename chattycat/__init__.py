"""ChattyCat: a small self-hosted chat system and the event-loop library under it.

The library layers, each usable on its own:

- :class:`EventLoop` — a single-threaded event loop on :mod:`selectors`:
  timers, readers/writers, signals, thread-safe wakeups.
- :func:`listen`, :func:`connect`, :class:`Transport`, :class:`Protocol` —
  non-blocking TCP and TLS streams with coalesced, buffered writes.
- :class:`FrameDecoder`, :func:`encode_frame` — the sans-IO length-prefixed
  framing codec; :mod:`chattycat.messages` — the typed protocol frames.
- :class:`ChatState` — the sans-IO chat server; :class:`ChatServer` wires it
  to the loop and a :class:`SQLiteStore`.
- :class:`Client` — a chat client on the loop, with reconnection and resume
  built in, for bots and user interfaces.
"""

from chattycat._version import __version__
from chattycat.client import Client
from chattycat.connector import Connector, connect
from chattycat.errors import (
    ChattyCatError,
    ErrorCode,
    FrameTooLarge,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from chattycat.framing import FrameDecoder, encode_frame
from chattycat.listener import Listener, listen
from chattycat.loop import EventLoop, Handle, TimerHandle
from chattycat.rooms import ChatState, RoomsConfig
from chattycat.server import ChatServer, ServerConfig
from chattycat.store import HistoryStore, SQLiteStore
from chattycat.transport import Protocol, Transport

__all__ = [
    "ChatServer",
    "ChatState",
    "ChattyCatError",
    "Client",
    "Connector",
    "ErrorCode",
    "EventLoop",
    "FrameDecoder",
    "FrameTooLarge",
    "Handle",
    "HistoryStore",
    "Listener",
    "LocalProtocolError",
    "Protocol",
    "ProtocolError",
    "RemoteProtocolError",
    "RoomsConfig",
    "SQLiteStore",
    "ServerConfig",
    "TimerHandle",
    "Transport",
    "__version__",
    "connect",
    "encode_frame",
    "listen",
]
