"""A stand-in for :class:`chattycat.client.client.Client` that records the calls made on it."""

from __future__ import annotations

from typing import Any


class FakeClient:
    """Records calls as tuples; ``fail`` makes the next call raise it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: Exception | None = None

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

    def part(self, room: str) -> None:
        self._record("part", room)

    def who(self, room: str) -> None:
        self._record("who", room)

    def list_rooms(self) -> None:
        self._record("list_rooms")

    def history(self, room: str, *, before: int | None = None, limit: int = 50) -> None:
        self._record("history", room, before, limit)

    def nick(self, name: str) -> None:
        self._record("nick", name)

    def quit(self, reason: str | None = None) -> None:
        self._record("quit", reason)
