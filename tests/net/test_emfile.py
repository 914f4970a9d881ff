"""The accept loop survives running out of file descriptors (EMFILE)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs RLIMIT_NOFILE")

FD_LIMIT = 40

SERVER = textwrap.dedent(
    """
    import logging, resource, sys
    from chattycat.net.loop import EventLoop
    from chattycat.net.listener import listen
    from chattycat.net.transport import Protocol

    logging.basicConfig(filename=sys.argv[1], level=logging.WARNING,
                        format="%(levelname)s %(name)s %(message)s")

    class Echo(Protocol):
        def connection_made(self, transport):
            self.transport = transport
        def data_received(self, data):
            self.transport.write(data)

    loop = EventLoop()
    listener = listen(loop, Echo, "127.0.0.1", 0)
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), int(sys.argv[2])))
    print(listener.addresses()[0][1], flush=True)
    loop.run_forever()
    """
)


def echo(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(message)
    received = b""
    while len(received) < len(message):
        chunk = sock.recv(100)
        if not chunk:
            break
        received += chunk
    return received


def warnings_in(log: Path) -> list[str]:
    text = log.read_text() if log.exists() else ""
    return [line for line in text.splitlines() if line.startswith("WARNING")]


def test_listener_backs_off_on_emfile_and_keeps_serving(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    root = Path(__file__).resolve().parents[2]  # the checkout, not tests/
    env = {**os.environ, "PYTHONPATH": str(root)}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(log), str(FD_LIMIT)],
        stdout=subprocess.PIPE, env=env, cwd=root, text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        # More connections than the server has descriptors: the kernel completes
        # them all (backlog), but accept() runs into EMFILE.
        for _ in range(FD_LIMIT + 20):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        deadline = time.monotonic() + 10
        while not warnings_in(log) and time.monotonic() < deadline:
            time.sleep(0.02)  # polling another process's log file, with a deadline
        assert warnings_in(log), "no EMFILE warning logged"
        # The first connection was accepted before the limit hit; it is still served.
        assert echo(clients[0], b"existing") == b"existing"
        for sock in clients[1:]:
            sock.close()
        del clients[1:]
        # Descriptors are free again: a brand-new connection gets its echo.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as fresh:
            assert echo(fresh, b"fresh") == b"fresh"
        assert server.poll() is None
        warnings = warnings_in(log)
        assert len(warnings) == 1, warnings
        assert "chattycat.net.transport" in warnings[0]
        assert "Too many open files" in warnings[0]
    finally:
        for sock in clients:
            sock.close()
        server.kill()
        server.wait(5)
        if server.stdout is not None:
            server.stdout.close()
