"""The abuse tests need Linux: /proc for memory, and 127.0.0.2 as a second loopback address."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


def _second_loopback_address() -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.2", 0))
        except OSError:
            return False
    return True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    if Path("/proc/self/status").exists() and _second_loopback_address():
        return
    skip = pytest.mark.skip(reason="needs /proc and 127.0.0.2 as a loopback address (Linux)")
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(skip)
