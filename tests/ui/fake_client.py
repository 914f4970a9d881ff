"""A stand-in for :class:`chattycat.client.client.Client` that records the calls made on it.

Like the real client it keeps a real :class:`~chattycat.client.session.ClientSession`
and reports through ``on_event``: ``join``/``part`` change the session at once
(``part`` of a room the user is not in raises, as the client does), and
:meth:`FakeClient.arrive` plays a frame from the server: the frame's event,
then the snapshot it led to. No loop, no socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from chattycat.client.client import ClientEvent, ClientState
from chattycat.client.session import ClientSession
from chattycat.protocol.messages import Frame


class FakeClient:
    """Records calls as tuples; ``fail`` makes the next call raise it."""

    def __init__(self, name: str = "alice", rooms: Iterable[str] = ()) -> None:
        self.session = ClientSession(name, rooms)
        self.session.take_snapshot()  # the front end starts from the same rooms
        self.calls: list[tuple[Any, ...]] = []
        self.fail: Exception | None = None
        self.on_event: Callable[[ClientEvent], object] | None = None
        self.state = ClientState.ONLINE
        self.unsent = 0  # what pending() says

    @property
    def name(self) -> str:
        return self.session.me

    @property
    def rooms(self) -> list[str]:
        return self.session.rooms

    def pending(self) -> int:
        return self.unsent

    def emit(self, event: ClientEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def publish(self) -> None:
        """Emit the session's snapshot if it changed, as the client does after each change."""
        snapshot = self.session.take_snapshot()
        if snapshot is not None:
            self.emit(snapshot)

    def arrive(self, frame: Frame) -> None:
        """A frame from the server: what it shows, then the snapshot."""
        shown = self.session.receive(frame)
        if shown is not None:
            self.emit(shown)
        self.publish()

    def _record(self, *call: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append(call)

    def say(self, room: str, text: str, *, action: bool = False) -> str:
        self._record("say", room, text, action)
        return "id-1"

    def whisper(self, to: str, text: str) -> str:
        self._record("whisper", to, text)
        return "id-2"

    def join(self, room: str) -> None:
        self._record("join", room)
        self.session.join(room)
        self.publish()

    def part(self, room: str) -> None:
        if self.fail is None:
            self.session.part(room, online=True)
        self._record("part", room)
        self.publish()

    def who(self, room: str) -> None:
        self._record("who", room)

    def list_rooms(self) -> None:
        self._record("list_rooms")

    def history(self, room: str, *, before: int | None = None, limit: int = 50) -> None:
        self._record("history", room, before, limit)

    def nick(self, name: str) -> None:
        self._record("nick", name)

    def register(self, password: str) -> None:
        self._record("register", password)

    def quit(self, reason: str | None = None) -> None:
        self._record("quit", reason)
