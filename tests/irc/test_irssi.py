"""A real terminal IRC client, irssi in tmux, talks with a ``chattycat join`` client."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import StartServer, _LineCollector, child_env

IRSSI = shutil.which("irssi")
TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    IRSSI is None or TMUX is None,
    reason="needs irssi and tmux on PATH (Debian: apt-get install irssi tmux)",
)
IRC_RE = r"IRC on 127\.0\.0\.1:(\d+)"
TIMEOUT_S = 15.0


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_irssi_joins_lobby_and_exchanges_messages_with_chattycat_join(
        server_process: StartServer, tmp_path: Path) -> None:
    server = server_process("--irc-port", "0")
    found = server.wait_for_log(IRC_RE)
    assert found is not None
    irc_port = found.group(1)
    assert TMUX is not None and IRSSI is not None
    tmux = [TMUX, "-S", str(tmp_path / "tmux.sock")]
    home = tmp_path / "irssi-home"
    home.mkdir()
    native = subprocess.Popen(
        [sys.executable, "-m", "chattycat", "join", "--name", "bob", "--port", str(server.port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=child_env(), cwd=tmp_path,
    )
    assert native.stdin is not None
    out = _LineCollector(native.stdout)
    command = f"{IRSSI} --home={home} -n ircat -c 127.0.0.1 -p {irc_port}"
    subprocess.run([*tmux, "new-session", "-d", "-s", "irc", "-x", "150", "-y", "40", command],
                   check=True, timeout=10, env={"TERM": "xterm", "PATH": "/usr/bin:/bin"})

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "irc"], capture_output=True,
                              text=True, timeout=10).stdout

    def keys(text: str) -> None:
        subprocess.run([*tmux, "send-keys", "-t", "irc", "-l", text], check=True, timeout=10)
        subprocess.run([*tmux, "send-keys", "-t", "irc", "Enter"], check=True, timeout=10)

    try:
        _eventually(lambda: any("ircat" in line for line in out.lines), "bob to see ircat")
        keys("/join #lobby")
        _eventually(lambda: "#lobby" in screen(), "irssi in #lobby")
        keys("hello from irssi")
        keys("/me waves from irssi")
        _eventually(lambda: any("hello from irssi" in line for line in out.lines),
                    "bob to get irssi's message")
        _eventually(lambda: any("waves from irssi" in line for line in out.lines),
                    "bob to get irssi's action")
        native.stdin.write("hello from chattycat\n/me purrs\n")
        native.stdin.flush()
        _eventually(lambda: "hello from chattycat" in screen(), "irssi to show bob's message")
        _eventually(lambda: "bob purrs" in screen(), "irssi to show bob's action")
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10, check=False)
        native.stdin.close()
        try:
            native.wait(timeout=10)
        except subprocess.TimeoutExpired:
            native.kill()
            native.wait(timeout=5)
