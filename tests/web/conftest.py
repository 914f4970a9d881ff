"""Fixtures for the web door: an in-process server with it open, on an OS-chosen port."""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from chattycat.server.web import read_site_files, web_door
from tests.conftest import InProcessServer, StartInProcess


@dataclass
class WebServer:
    """A chat server (TCP door for WireClients) and its web door."""

    chat: InProcessServer
    web_port: int


StartWeb = Callable[..., WebServer]


def page_files() -> dict[str, bytes]:
    return read_site_files(importlib.resources.files("chattycat.ui").joinpath("web"))


@pytest.fixture
def web_server(chat_server: StartInProcess) -> StartWeb:
    """Factory: ``start(origins=(), files=None, **chat_server_config) -> WebServer``."""

    def start(origins: tuple[str, ...] = (), files: dict[str, bytes] | None = None,
              **config: Any) -> WebServer:
        chat = chat_server(**config)
        site_files = files if files is not None else page_files()

        def open_door() -> int:
            make_peer = web_door(chat.server, site_files, tls=False, allowed_origins=origins)
            return chat.server.open_door(make_peer, "127.0.0.1", 0)[0][1]

        return WebServer(chat, chat.call(open_door))

    return start
