"""examples/bot.py runs against a real server (and docs/client.md shows it verbatim)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import StartServer, _LineCollector, child_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "bot.py"
DOC = ROOT / "docs" / "client.md"


def test_docs_show_the_bot_verbatim() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert EXAMPLE.read_text() in blocks


@pytest.mark.skipif(os.name != "posix", reason="stops the bot with SIGTERM")
def test_bot_answers_time_and_echo(server_process: StartServer) -> None:
    server = server_process()
    bot = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(server.port), "dev"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=child_env({"PYTHONPATH": str(ROOT)}),
    )
    out, err = _LineCollector(bot.stdout), _LineCollector(bot.stderr)
    try:
        assert out.wait_for(re.compile("bot online as timebot"), 15), err.lines
        alice = server.connect()
        alice.hello("alice")
        alice.send({"type": "join", "room": "dev"})
        frames = alice.recv_all_until("history", where=lambda f: f["room"] == "dev")
        [roster] = [f for f in frames if f["type"] == "roster"]
        if "timebot" not in [m["name"] for m in roster["members"]]:  # not in dev yet
            alice.recv_until("joined", where=lambda f: f["name"] == "timebot")
        alice.say("dev", "!echo purr purr")
        reply = alice.recv_until("message", where=lambda f: f["from"] == "timebot")
        assert (reply["room"], reply["text"]) == ("dev", "purr purr")
        alice.say("dev", "!time")
        reply = alice.recv_until("message", where=lambda f: f["from"] == "timebot")
        assert reply["room"] == "dev"
        assert re.fullmatch(r"it is \d\d:\d\d:\d\d here", reply["text"])
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(10) == 0
        parted = alice.recv_until("parted", where=lambda f: f["name"] == "timebot")
        assert parted["reason"] == "the bot is going to sleep"
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait(5)
        out.join(5)
        err.join(5)
