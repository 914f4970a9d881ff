"""ChattyCat: a small self-hosted chat system and the event-loop library under it.

The library layers, each usable on its own:

- :class:`EventLoop` — a single-threaded event loop on :mod:`selectors`:
  timers, readers/writers, signals, thread-safe wakeups.
- :func:`listen`, :func:`connect`, :class:`Transport`, :class:`Protocol` —
  non-blocking TCP and TLS streams with coalesced, buffered writes.
- :class:`FrameDecoder`, :func:`encode_frame` — the sans-IO length-prefixed
  framing codec; :mod:`chattycat.protocol.messages` — the typed protocol frames.
- :class:`ChatState` — the sans-IO chat server; :class:`ChatServer` wires it
  to the loop and a :class:`SQLiteStore`.
- :class:`Client` — a chat client on the loop, with reconnection and resume
  built in, for bots and user interfaces.
"""

from chattycat._version import __version__
from chattycat.client.client import Client
from chattycat.errors import (
    ChattyCatError,
    ErrorCode,
    FrameTooLarge,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from chattycat.net.connector import Connector, connect
from chattycat.net.listener import Listener, listen
from chattycat.net.loop import EventLoop, Handle, TimerHandle
from chattycat.net.transport import Protocol, Transport
from chattycat.protocol.framing import FrameDecoder, encode_frame
from chattycat.server.app import ChatServer, ServerConfig
from chattycat.server.memory_store import MemoryStore
from chattycat.server.sqlite_store import SQLiteStore
from chattycat.server.state import ChatState, RoomsConfig
from chattycat.server.store import HistoryStore

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
    "MemoryStore",
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
