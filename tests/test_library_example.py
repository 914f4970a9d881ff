"""The broadcast server from docs/library.md really runs (and the docs show it verbatim)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "broadcast_server.py"
DOC = ROOT / "docs" / "library.md"


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_docs_show_the_example_verbatim() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert EXAMPLE.read_text() in blocks


@pytest.mark.skipif(os.name != "posix", reason="stops the server with SIGTERM")
def test_broadcast_server_sends_each_line_to_every_client() -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "0"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        port = int(banner.rsplit(" ", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as alice, \
                socket.create_connection(("127.0.0.1", port), timeout=5) as bob:
            bob.sendall(b"bob joined\n")
            assert read_line(bob) == b"bob joined\n"  # bob is in, and so is alice
            alice.sendall(b"hello from alice\n")
            assert read_line(bob) == b"hello from alice\n"
            assert read_line(alice) == b"bob joined\n"
            assert read_line(alice) == b"hello from alice\n"
        server.send_signal(signal.SIGTERM)
        assert server.wait(5) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(5)
        if server.stdout is not None:
            server.stdout.close()
