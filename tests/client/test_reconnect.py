"""The server dies mid-conversation and comes back: nothing is lost, nothing doubled.

Two scripted clients (``chattycat join`` children) talk through a ``chattycat
serve`` child on a history file. The server is killed with SIGKILL while bob
is sending numbered lines, bob keeps typing while it is down, and a new server
is started on the same port and file. Afterwards every line each side typed
is in the room exactly once, in the order of its seq, and each client showed
the other's lines exactly once and in that order.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import (
    ServerProcess,
    StartServer,
    _LineCollector,
    chattycat_command,
    child_env,
)

WAIT_S = 15.0
LINE_INTERVAL_S = 0.08


@dataclass
class ScriptedClient:
    """A ``chattycat join`` child whose stdin the test types into."""

    proc: subprocess.Popen[str]
    out: _LineCollector
    err: _LineCollector

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def end_input(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(WAIT_S)
        self.out.join(WAIT_S)
        self.err.join(WAIT_S)
        return code

    def wait_for(self, pattern: str, timeout_s: float = WAIT_S) -> None:
        match = self.out.wait_for(re.compile(pattern), timeout_s)
        assert match is not None, f"no {pattern!r} in:\n" + "\n".join(self.out.lines)

    def said_by(self, name: str) -> list[str]:
        """Texts shown from ``name`` in lobby, in the order shown."""
        prefix = f"[lobby] {name}: "
        return [line[9 + len(prefix):] for line in self.out.lines
                if line[9:].startswith(prefix)]


@pytest.fixture
def join_client() -> Iterator[Callable[[str, int], ScriptedClient]]:
    started: list[ScriptedClient] = []

    def start(name: str, port: int) -> ScriptedClient:
        proc = subprocess.Popen(
            chattycat_command("join", "--name", name, "--port", str(port)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env(),
        )
        client = ScriptedClient(proc, _LineCollector(proc.stdout), _LineCollector(proc.stderr))
        started.append(client)
        return client

    yield start
    for client in started:
        if client.proc.poll() is None:
            client.proc.terminate()
            try:
                client.proc.wait(5)
            except subprocess.TimeoutExpired:
                client.proc.kill()
                client.proc.wait(5)


def stored_lobby(server: ServerProcess) -> list[tuple[int, str, str]]:
    """(seq, sender, text) of every stored lobby message, asked over the wire."""
    checker = server.connect()
    checker.hello("checker")
    checker.send({"type": "history", "room": "lobby", "after": 0, "limit": 500, "ref": "all"})
    reply = checker.recv_until("history", where=lambda f: f.get("ref") == "all")
    return [(m["seq"], m["from"], m["text"]) for m in reply["messages"]]


def test_sigkilled_server_restart_loses_and_doubles_nothing(
    server_process: StartServer, join_client: Callable[[str, int], ScriptedClient],
) -> None:
    server = server_process()
    port = server.port
    alice = join_client("alice", port)
    bob = join_client("bob", port)
    alice.wait_for(r"connected as alice \(")
    bob.wait_for(r"connected as bob \(")

    bob_lines = [f"bob {n:03d}" for n in range(1, 41)]
    alice_lines = [f"alice {n:03d}" for n in range(1, 6)]
    alice.type(alice_lines[0])
    alice.type(alice_lines[1])
    for line in bob_lines[:14]:  # faster than bob may send: some are still queued
        bob.type(line)
        time.sleep(LINE_INTERVAL_S)
    alice.wait_for(r"bob: bob 006")

    server.stop(signal.SIGKILL)
    bob.wait_for(r"connection lost \(.*\), reconnecting in \d+ s")
    alice.wait_for(r"connection lost \(.*\), reconnecting in \d+ s")
    for line in bob_lines[14:30]:  # typed while the server is down
        bob.type(line)
    alice.type(alice_lines[2])
    alice.type(alice_lines[3])

    restarted = server_process("--port", str(port), db=server.db)
    for line in bob_lines[30:]:
        bob.type(line)
        time.sleep(LINE_INTERVAL_S)
    alice.type(alice_lines[4])

    bob.wait_for(r"alice: alice 005")
    assert bob.end_input() == 0, "\n".join(bob.err.lines)
    alice.wait_for(r"bob: bob 040")
    assert alice.end_input() == 0, "\n".join(alice.err.lines)

    stored = stored_lobby(restarted)
    seqs = [seq for seq, _, _ in stored]
    assert seqs == list(range(1, len(stored) + 1))
    stored_bob = [text for _, sender, text in stored if sender == "bob"]
    stored_alice = [text for _, sender, text in stored if sender == "alice"]
    assert sorted(stored_bob) == bob_lines  # each exactly once: none lost, none doubled
    assert sorted(stored_alice) == alice_lines
    # Shown exactly once each and in seq order, on both sides.
    assert alice.said_by("bob") == stored_bob
    assert bob.said_by("alice") == stored_alice
    # The lines typed while the server was down were delivered after it came back.
    reconnected = next(i for i, line in enumerate(alice.out.lines)
                       if "reconnected as alice" in line)
    after = " ".join(alice.out.lines[reconnected:])
    assert all(line in after for line in bob_lines[14:30])
    assert not alice.err.lines and not bob.err.lines
