"""ChattyCat: a small self-hosted chat system, and the event-loop library under it.

For library users, in layers that each work on their own:

- The loop: :class:`EventLoop` on :mod:`selectors` (timers, readers and
  writers, signals, thread-safe wake-ups, end-of-pass callbacks).
- Streams: :func:`listen`, :func:`connect`, :class:`Transport` and
  :class:`Protocol` (non-blocking TCP and TLS, coalesced writes, water marks
  and a hard limit judged after sending); :class:`FramedProtocol` turns a
  stream into frames.
- The codec: :class:`FrameDecoder` and :func:`encode_frame` (sans-IO length
  prefixes); the typed frames are in :mod:`chattycat.protocol.messages`.
- The client: :class:`Client` and the events it reports (with the frames it
  passes on, such as :class:`Message` and :class:`Whisper`), for bots and front ends.
- The server: :class:`ChatState` (the sans-IO state machine) and the effects
  it asks for, :class:`ChatServer` (the wiring on the loop), and the history
  stores behind the :class:`HistoryStore` interface.
- One exception hierarchy, rooted at :class:`ChattyCatError`; protocol errors
  carry their wire code (:class:`ErrorCode`).
"""

from chattycat._version import __version__
from chattycat.client.client import Client
from chattycat.client.events import (
    ClientEvent,
    ClientState,
    Closed,
    Connected,
    ConnectionLost,
    Failed,
    PendingChanged,
    Reconnecting,
    RoomState,
    SessionChanged,
    Synced,
)
from chattycat.errors import (
    ChattyCatError,
    ConfigError,
    ConnectFailed,
    ErrorCode,
    FrameTooLarge,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    StoreError,
)
from chattycat.net.connector import Connector, connect
from chattycat.net.framed import FramedProtocol
from chattycat.net.listener import Listener, listen
from chattycat.net.loop import EventLoop, Handle, TimerHandle
from chattycat.net.transport import Protocol, Transport
from chattycat.protocol.framing import FrameDecoder, encode_frame
from chattycat.protocol.messages import Message, Registered, Whisper
from chattycat.server.accounts import AccountMode
from chattycat.server.app import ChatServer, Clock, ServerConfig, SystemClock
from chattycat.server.effects import (
    Append,
    Close,
    DropSession,
    Effect,
    LoadHistory,
    LoadIds,
    Now,
    SaveSession,
    Send,
    StoreWork,
    WriteBatch,
)
from chattycat.server.memory_store import MemoryStore
from chattycat.server.model import RoomsConfig
from chattycat.server.sqlite_store import SQLiteStore
from chattycat.server.state import ChatState
from chattycat.server.store import HistoryStore, SyncStore

__all__ = [
    "AccountMode",
    "Append",
    "ChatServer",
    "ChatState",
    "ChattyCatError",
    "Client",
    "ClientEvent",
    "ClientState",
    "Clock",
    "Close",
    "Closed",
    "ConfigError",
    "ConnectFailed",
    "Connected",
    "ConnectionLost",
    "Connector",
    "DropSession",
    "Effect",
    "ErrorCode",
    "EventLoop",
    "Failed",
    "FrameDecoder",
    "FrameTooLarge",
    "FramedProtocol",
    "Handle",
    "HistoryStore",
    "Listener",
    "LoadHistory",
    "LoadIds",
    "LocalProtocolError",
    "MemoryStore",
    "Message",
    "Now",
    "PendingChanged",
    "Protocol",
    "ProtocolError",
    "Reconnecting",
    "Registered",
    "RemoteProtocolError",
    "RoomState",
    "RoomsConfig",
    "SQLiteStore",
    "SaveSession",
    "Send",
    "ServerConfig",
    "SessionChanged",
    "StoreError",
    "StoreWork",
    "SyncStore",
    "Synced",
    "SystemClock",
    "TimerHandle",
    "Transport",
    "Whisper",
    "WriteBatch",
    "__version__",
    "connect",
    "encode_frame",
    "listen",
]
