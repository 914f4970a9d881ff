"""A reference chat server in plain asyncio streams, speaking ChattyCat's protocol.

This is the comparison point the benchmarks call "asyncio reference": the
server a Python programmer would write from asyncio's documentation, with no
attention to performance beyond the obvious. One coroutine per connection
reads frames with ``readexactly``; a message is encoded once and handed to
every member with one ``writer.write`` each, and the sender waits in
``writer.drain()`` for any member whose transport is over its high-water mark
(asyncio's own flow control, as the streams documentation shows it).

It speaks enough of PROTOCOL v1 for the scenarios: ``hello`` (with
``resume`` naming rooms) -> ``welcome`` and the join of the default room,
``join`` -> ``joined`` to every member, ``roster`` and ``history`` (the last 50
messages, kept in memory) to the joiner, ``part``, ``say`` -> ``message`` with
a per-room ``seq`` to every member, the sender included, ``ping``/``pong``,
``who``, ``quit``. No flood control, heartbeats, sessions or persistence.

    python benchmarks/refserver.py --host 127.0.0.1 --port 0 [--tls-cert PEM]

It logs ``listening on HOST:PORT`` on stderr once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import ssl
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 65536
HISTORY_ON_JOIN = 50
# asyncio's default high-water mark for a transport's write buffer (64 KiB).
HIGH_WATER_BYTES = 64 * 1024
BACKLOG = 1024
PALETTE = ("#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2",
           "#d19a66", "#be5046", "#7ec699", "#f08d49", "#8f9cff", "#cc99cd")
SERVER_NAME = "asyncio-reference/1"


def encode(obj: dict[str, Any]) -> bytes:
    """One frame: 4-byte big-endian length + compact JSON."""
    payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return HEADER.pack(len(payload)) + payload


@dataclass(eq=False)
class Member:
    """One signed-in connection."""

    name: str
    color: str
    writer: asyncio.StreamWriter
    rooms: set[str] = field(default_factory=set)


@dataclass
class Room:
    """Members by lower-cased name, the last seq, the recent messages."""

    members: dict[str, Member] = field(default_factory=dict)
    seq: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY_ON_JOIN))


class ChatServer:
    """Rooms and members; one ``handle`` coroutine per connection."""

    def __init__(self, default_room: str = "lobby") -> None:
        self.default_room = default_room
        self.rooms: dict[str, Room] = {}
        self.names: dict[str, Member] = {}
        self.colors = 0

    async def send(self, member: Member, frame: bytes) -> None:
        """Write one frame; wait for the transport to drain when it is over the mark."""
        member.writer.write(frame)
        if member.writer.transport.get_write_buffer_size() > HIGH_WATER_BYTES:
            with contextlib.suppress(ConnectionError):
                await member.writer.drain()

    async def broadcast(self, room: Room, frame: bytes) -> None:
        for member in list(room.members.values()):
            await self.send(member, frame)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        member: Member | None = None
        reason = "disconnected"
        try:
            while True:
                (length,) = HEADER.unpack(await reader.readexactly(4))
                if length > MAX_FRAME:
                    writer.write(encode({"type": "error", "code": "frame_too_large",
                                         "message": "frame too large"}))
                    break
                try:
                    request = json.loads(await reader.readexactly(length))
                    kind = request["type"]
                except (ValueError, KeyError, TypeError):
                    writer.write(encode({"type": "error", "code": "bad_frame",
                                         "message": "not a JSON object with a type"}))
                    continue
                if member is None:
                    member = await self.hello(writer, request)
                elif kind == "quit":
                    reason = "quit"
                    break
                else:
                    await self.dispatch(member, kind, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if member is not None:
                await self.leave(member, reason)
            writer.close()

    async def hello(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> Member | None:
        name = request.get("name")
        if request.get("type") != "hello" or not isinstance(name, str) or not name:
            writer.write(encode({"type": "error", "code": "hello_required",
                                 "message": "say hello first"}))
            return None
        if name.lower() in self.names:
            writer.write(encode({"type": "error", "code": "name_taken",
                                 "message": f"the name {name} is taken"}))
            return None
        member = Member(name, PALETTE[self.colors % len(PALETTE)], writer)
        self.colors += 1
        self.names[name.lower()] = member
        await self.send(member, encode({
            "type": "welcome", "name": name, "color": member.color, "protocol": 1,
            "server": SERVER_NAME, "session": secrets.token_hex(16), "max_frame": MAX_FRAME,
            "heartbeat": 0}))
        resume = request.get("resume")
        rooms = list(resume.get("rooms", {})) if isinstance(resume, dict) else []
        for room in rooms or [self.default_room]:
            await self.join(member, room)
        return member

    async def dispatch(self, member: Member, kind: str, request: dict[str, Any]) -> None:
        room_name = request.get("room")
        if kind == "say" and room_name in member.rooms:
            await self.say(member, self.rooms[room_name], request)
        elif kind == "join" and isinstance(room_name, str):
            await self.join(member, room_name)
        elif kind == "part" and room_name in member.rooms:
            await self.part(member, room_name, "part")
        elif kind == "who" and room_name in self.rooms:
            await self.send(member, self.roster(room_name))
        elif kind == "ping":
            await self.send(member, encode({"type": "pong", "token": request.get("token")}))
        elif kind in ("say", "part", "who"):
            await self.send(member, encode({"type": "error", "code": "not_in_room",
                                            "message": f"you are not in #{room_name}"}))
        elif kind != "pong":
            await self.send(member, encode({"type": "error", "code": "unknown_type",
                                            "message": f"unknown type {kind}"}))

    async def say(self, member: Member, room: Room, request: dict[str, Any]) -> None:
        room.seq += 1
        message = {"type": "message", "room": request["room"], "seq": room.seq,
                   "from": member.name, "color": member.color, "text": request.get("text", ""),
                   "ts": time.time()}
        if "id" in request:
            message["id"] = request["id"]
        room.recent.append(message)
        await self.broadcast(room, encode(message))

    async def join(self, member: Member, room_name: str) -> None:
        room = self.rooms.setdefault(room_name, Room())
        if member.name.lower() not in room.members:
            room.members[member.name.lower()] = member
            member.rooms.add(room_name)
            await self.broadcast(room, encode({
                "type": "joined", "room": room_name, "name": member.name,
                "color": member.color, "ts": time.time()}))
        await self.send(member, self.roster(room_name))
        await self.send(member, encode({"type": "history", "room": room_name,
                                        "messages": list(room.recent)}))

    def roster(self, room_name: str) -> bytes:
        members = sorted(self.rooms[room_name].members.values(), key=lambda m: m.name.lower())
        return encode({"type": "roster", "room": room_name,
                       "members": [{"name": m.name, "color": m.color} for m in members]})

    async def part(self, member: Member, room_name: str, reason: str) -> None:
        room = self.rooms[room_name]
        await self.broadcast(room, encode({"type": "parted", "room": room_name,
                                           "name": member.name, "reason": reason}))
        del room.members[member.name.lower()]
        member.rooms.discard(room_name)
        if not room.members:
            del self.rooms[room_name]  # nothing stored worth keeping an empty room for

    async def leave(self, member: Member, reason: str) -> None:
        self.names.pop(member.name.lower(), None)
        for room_name in list(member.rooms):
            room = self.rooms[room_name]
            del room.members[member.name.lower()]
            member.rooms.discard(room_name)
            if room.members:
                await self.broadcast(room, encode({"type": "parted", "room": room_name,
                                                   "name": member.name, "reason": reason}))
            else:
                del self.rooms[room_name]


async def serve(host: str, port: int, tls: ssl.SSLContext | None) -> None:
    chat = ChatServer()
    server = await asyncio.start_server(chat.handle, host, port, ssl=tls, backlog=BACKLOG)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--tls-cert", help="PEM file holding the certificate chain and key")
    args = parser.parse_args(argv)
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert)
    asyncio.run(serve(args.host, args.port, tls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
