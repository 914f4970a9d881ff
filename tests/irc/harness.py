"""IRC sessions and native connections on one ChatState, no sockets: lines in, lines out."""

from __future__ import annotations

from chattycat.protocol.irc import IrcMessage, LineDecoder, parse_line
from chattycat.protocol.messages import Frame, Hello, Request
from chattycat.server.effects import Close, ConnId, Effect, Send
from chattycat.server.irc_model import IrcDoor
from chattycat.server.irc_session import IrcSession
from chattycat.server.memory_store import MemoryStore
from chattycat.server.model import RoomsConfig
from chattycat.server.state import ChatState
from tests.server.driving import Driven

SERVER = "irc.test"
ALL_CAPS = "batch echo-message labeled-response message-tags server-time"


class Harness:
    """One machine; IRC connections speak lines, native ones frames."""

    def __init__(self, *, join_default_room: bool = True, **rooms: object) -> None:
        config = RoomsConfig(**{"flood_rate_per_s": 0, "heartbeat_s": 0, **rooms})  # type: ignore[arg-type]
        self.driven = Driven(ChatState(config), MemoryStore())
        self.driven.restore(0.0)
        self.at = 1000.0
        self.sessions: dict[ConnId, IrcSession] = {}
        leave = None if join_default_room else config.default_room
        self.door = IrcDoor(SERVER, "h", self._online, leave_room=leave,
                            clock=lambda: 1_700_000_000.0)
        self.lines: dict[ConnId, list[IrcMessage]] = {}
        self.frames: dict[ConnId, list[Frame]] = {}
        self.closed: set[ConnId] = set()
        self._next = 1

    def _conn(self) -> ConnId:
        conn, self._next = self._next, self._next + 1
        self.driven.connect(conn, self.at)
        return conn

    def irc(self, nick: str, caps: str = "", *, register: bool = True) -> ConnId:
        """A new IRC connection, registered as ``nick`` (its output so far cleared)."""
        conn = self._conn()
        self.sessions[conn] = IrcSession(conn, self.door)
        self.lines[conn] = []
        if register:
            if caps:
                self.send(conn, "CAP LS 302", f"CAP REQ :{caps}")
            self.send(conn, f"NICK {nick}", "USER u 0 * :Real Name")
            if caps:
                self.send(conn, "CAP END")
            self.take(conn)
        return conn

    def native(self, name: str) -> ConnId:
        conn = self._conn()
        self.frames[conn] = []
        self.request(conn, Hello(name))
        self.frames[conn].clear()
        return conn

    def _online(self, name: str) -> str | None:
        return next((n for n in self.driven.user_names() if n.lower() == name.lower()), None)

    def send(self, conn: ConnId, *lines: str | bytes) -> None:
        """Lines from IRC connection ``conn``, cut as the door cuts them."""
        decoder = LineDecoder()
        for line in lines:
            decoder.feed(line.encode() + b"\r\n" if isinstance(line, str) else line)
            for raw in decoder.lines():
                for request in self.sessions[conn].line_received(raw):
                    self.request(conn, request)

    def request(self, conn: ConnId, request: Request) -> None:
        self.at += 0.001
        self._deliver(self.driven.receive(conn, request, self.at))

    def disconnect(self, conn: ConnId) -> None:
        if conn in self.sessions:
            self.sessions[conn].forget()
        self._deliver(self.driven.disconnected(conn, self.at))

    def _deliver(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Close):
                self.closed.add(effect.conn)
            elif isinstance(effect, Send):
                self._send(effect)

    def _send(self, effect: Send) -> None:
        for conn in effect.conns:
            if conn in self.sessions:
                data = self.sessions[conn].encode_frame(effect.frame)
                for raw in data.split(b"\r\n")[:-1]:
                    assert len(raw) + 2 <= 512 or raw.startswith(b"@")
                    parsed = parse_line(raw)
                    assert parsed is not None
                    self.lines[conn].append(parsed)
            else:
                self.frames[conn].append(effect.frame)

    def take(self, conn: ConnId) -> list[IrcMessage]:
        """Lines IRC connection ``conn`` got since the last take."""
        out, self.lines[conn] = self.lines[conn], []
        return out

    def take_frames(self, conn: ConnId) -> list[Frame]:
        out, self.frames[conn] = self.frames[conn], []
        return out


def commands(lines: list[IrcMessage]) -> list[str]:
    """Each line's command, for a quick look at what came."""
    return [line.command for line in lines]
