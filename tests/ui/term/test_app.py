"""Specification of the interactive client, driven through a real pseudo-terminal.

``chattycat join`` runs as a child on a pty whose output is replayed on a
``pyte`` screen, against a ``chattycat serve`` child; a raw protocol client
plays the other user. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyte
import pytest

from chattycat.client.client import ClientState, ConnectionLost, Reconnecting
from chattycat.net.loop import EventLoop
from chattycat.protocol.messages import Joined, Member, Parted, Roster
from chattycat.ui.term.app import InteractiveSession
from tests.conftest import StartServer, chattycat_command, child_env
from tests.ui.fake_client import FakeClient

if sys.platform != "win32":
    import fcntl
    import termios

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal"),
    pytest.mark.timeout(60),
]

COLUMNS, ROWS = 80, 24
WAIT_S = 10.0
PROMPT = "[lobby]> "
STAMP = r"\d\d:\d\d:\d\d"


def set_window_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class PtyClient:
    """``chattycat join`` on a pseudo-terminal, its screen replayed by pyte."""

    def __init__(self, args: list[str], columns: int = COLUMNS, rows: int = ROWS) -> None:
        self.master, self.slave = os.openpty()
        set_window_size(self.slave, columns, rows)
        self.mode_before = termios.tcgetattr(self.slave)
        env = child_env({"TERM": "xterm-256color"})
        for var in ("COLUMNS", "LINES", "NO_COLOR", "COLORTERM"):
            env.pop(var, None)
        self.proc = subprocess.Popen(
            args, stdin=self.slave, stdout=self.slave, stderr=self.slave, env=env,
            start_new_session=True,
        )
        os.set_blocking(self.master, False)
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.output = bytearray()

    def pump(self, timeout_s: float) -> None:
        """Feed whatever the child wrote within ``timeout_s`` to the screen."""
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except (BlockingIOError, OSError):  # EIO once the child has exited
            time.sleep(min(timeout_s, 0.01))
            return
        self.output += data
        self.stream.feed(data)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out waiting for {what}; screen:\n{self.dump()}")
            self.pump(min(remaining, 0.05))

    def wait_for_text(self, pattern: str, timeout_s: float = WAIT_S) -> None:
        regex = re.compile(pattern)
        self.wait_for(lambda: any(regex.search(row) for row in self.rows()), repr(pattern),
                      timeout_s)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display]

    def input_row(self) -> str:
        return self.rows()[self.screen.cursor.y]

    def at_input(self, line: str) -> bool:
        """Whether the cursor's row shows ``line`` with the cursor right after it."""
        return self.input_row() == line.rstrip() and self.screen.cursor.x == len(line)

    def rows_above_input(self) -> list[str]:
        return self.rows()[: self.screen.cursor.y]

    def dump(self) -> str:
        return "\n".join(f"{i:2}|{row}" for i, row in enumerate(self.rows()))

    def wait_exit(self, timeout_s: float = WAIT_S) -> int:
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() >= deadline:
                self.proc.kill()
                self.proc.wait(5)
                pytest.fail(f"the client did not exit; screen:\n{self.dump()}")
            self.pump(0.05)
        self.pump(0.05)  # what it wrote last (e.g. an error line)
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def spawn() -> Iterator[Callable[..., PtyClient]]:
    started: list[PtyClient] = []

    def start(*args: str, **kwargs: Any) -> PtyClient:
        client = PtyClient(chattycat_command("join", *args), **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


def join_lobby(spawn: Callable[..., PtyClient], port: int, name: str = "alice") -> PtyClient:
    alice = spawn("--name", name, "--port", str(port))
    alice.wait_for(lambda: alice.at_input(PROMPT), "the online prompt")
    alice.wait_for_text(rf"^{STAMP} \u2192 {name} joined #lobby$")
    return alice


def test_incoming_message_is_printed_above_the_half_typed_line(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    server = server_process()
    alice = join_lobby(spawn, server.port)

    alice.type(b"hello wor")
    alice.wait_for(lambda: alice.at_input(PROMPT + "hello wor"), "the typed text")

    bob = server.connect()
    bob.hello("bob")
    bob.say("lobby", "incoming!")
    alice.wait_for_text(rf"^{STAMP} bob: incoming!$")

    # The half-typed line is intact on the row below, the cursor right after it.
    assert alice.input_row() == PROMPT + "hello wor"
    assert alice.screen.cursor.x == len(PROMPT + "hello wor")
    assert alice.screen.cursor.y > 0
    assert any(re.search(r"bob joined #lobby", row) for row in alice.rows_above_input())

    alice.type(b"ld\r")
    alice.wait_for_text(rf"^{STAMP} alice: hello world$")
    alice.wait_for(lambda: alice.at_input(PROMPT), "an empty input line")
    echo = bob.recv_until("message", where=lambda f: f["from"] == "alice")
    assert echo["text"] == "hello world"

    alice.type(b"\x04")  # Ctrl-D on an empty line
    assert alice.wait_exit() == 0
    assert termios.tcgetattr(alice.slave) == alice.mode_before
    assert b"\x1b[?2004l" in alice.output  # bracketed paste switched off again


def test_ctrl_c_quits_cleanly_and_others_see_the_quit(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    server = server_process()
    bob = server.connect()
    bob.hello("bob")
    alice = join_lobby(spawn, server.port)
    alice.type(b"draft")
    alice.type(b"\x03")
    assert alice.wait_exit() == 0
    assert termios.tcgetattr(alice.slave) == alice.mode_before
    parted = bob.recv_until("parted")
    assert (parted["name"], parted["reason"]) == ("alice", "quit")


def test_commands_switch_the_current_room(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    server = server_process()
    alice = join_lobby(spawn, server.port)

    alice.type(b"/join dev\r")
    alice.wait_for(lambda: alice.at_input("[dev]> "), "the prompt of #dev")
    alice.type(b"in dev\r")
    alice.wait_for_text(rf"^{STAMP} alice: in dev$")

    bob = server.connect()
    bob.hello("bob")
    bob.say("lobby", "hi alice")
    # Another room gets a prefix; a mention rings the bell.
    alice.wait_for_text(rf"^{STAMP} \[lobby\] bob: hi alice$")
    alice.wait_for(lambda: b"\a" in alice.output, "the bell")

    alice.type(b"/room lobby\r")
    alice.wait_for(lambda: alice.at_input(PROMPT), "the prompt of #lobby")
    alice.type(b"/part\r")
    alice.wait_for(lambda: alice.at_input("[dev]> "), "back in #dev after /part")
    alice.type(b"/help\r")
    alice.wait_for_text(r"/join ROOM")
    alice.type(b"/bogus\r")
    alice.wait_for_text(r"unknown command /bogus")
    alice.type(b"/quit\r")
    assert alice.wait_exit() == 0


def test_sigterm_quits_and_restores_the_terminal(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    server = server_process()
    alice = join_lobby(spawn, server.port)
    alice.proc.send_signal(signal.SIGTERM)
    assert alice.wait_exit() == 0
    assert termios.tcgetattr(alice.slave) == alice.mode_before


def test_tab_completes_member_names(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    server = server_process()
    bob = server.connect()
    bob.hello("bobby")
    alice = join_lobby(spawn, server.port)
    alice.type(b"bo\t")
    alice.wait_for(lambda: alice.at_input(PROMPT + "bobby: "), "the completed name")
    alice.type(b"\x03")
    assert alice.wait_exit() == 0


def test_resize_redraws_the_input_line_at_the_new_width(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    server = server_process()
    alice = join_lobby(spawn, server.port)
    alice.type(b"x" * 60)
    alice.wait_for(lambda: alice.at_input(PROMPT + "x" * 60), "the long line")

    set_window_size(alice.slave, 40, ROWS)
    alice.screen.resize(ROWS, 40)
    alice.proc.send_signal(signal.SIGWINCH)
    # 39 columns used (the last is never written); scrolled so the cursor shows.
    alice.wait_for(lambda: alice.at_input("x" * 39), "the scrolled line")
    alice.type(b"\x03")
    assert alice.wait_exit() == 0


def test_reconnect_countdown_in_the_prompt(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    server = server_process()
    alice = join_lobby(spawn, server.port)
    server.stop()
    alice.wait_for_text(r"connection lost")
    alice.wait_for(
        lambda: re.fullmatch(r"\[lobby \u00b7 (reconnecting in \d+ s|connecting)\]>",
                             alice.input_row()) is not None,
        "the offline prompt",
    )
    alice.type(b"\x03")
    assert alice.wait_exit() == 0
    assert termios.tcgetattr(alice.slave) == alice.mode_before


def test_tab_completes_a_command_then_a_space(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    # Before: "/jo" Tab gave "/join: ", which then was "unknown command /join:".
    server = server_process()
    alice = join_lobby(spawn, server.port)
    alice.type(b"/jo\t")
    alice.wait_for(lambda: alice.at_input(PROMPT + "/join "), "the completed command")
    alice.type(b"dev\r")
    alice.wait_for(lambda: alice.at_input("[dev]> "), "the prompt of #dev")
    alice.type(b"\x03")
    assert alice.wait_exit() == 0


def test_part_right_after_join_leaves_that_room(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    # Before: "you are not in #qa", the part was lost, and later lines went to #qa.
    server = server_process()
    bob = server.connect()
    bob.hello("bob")
    alice = join_lobby(spawn, server.port)
    alice.type(b"/join qa\r/part\rafter\r")  # all at once, before any answer
    alice.wait_for_text(rf"^{STAMP} \u2190 alice left #qa$")
    alice.wait_for_text(rf"^{STAMP} alice: after$")
    alice.wait_for(lambda: alice.at_input(PROMPT), "the prompt of #lobby")
    assert not any("not in #qa" in row for row in alice.rows())
    said = bob.recv_until("message", where=lambda f: f["from"] == "alice")
    assert (said["room"], said["text"]) == ("lobby", "after")
    alice.type(b"\x03")
    assert alice.wait_exit() == 0


def test_ctrl_c_offline_with_unsent_messages_asks_before_dropping_them(
    server_process: StartServer, spawn: Callable[..., PtyClient]
) -> None:
    # Before: the client exited at once, silently dropping what was queued.
    server = server_process()
    alice = join_lobby(spawn, server.port)
    server.stop()
    alice.wait_for_text(r"connection lost")
    alice.type(b"one\rtwo\r")
    alice.wait_for(lambda: sum("will be sent once reconnected" in row for row in alice.rows()) == 2,
                   "two queued notes")
    alice.type(b"\x03")
    alice.wait_for_text(r"2 unsent messages would be dropped; press Ctrl-C again")
    assert alice.proc.poll() is None
    alice.type(b"\x03")
    assert alice.wait_exit() == 0
    assert termios.tcgetattr(alice.slave) == alice.mode_before


def test_unreachable_server_fails_with_exit_1(spawn: Callable[..., PtyClient]) -> None:
    with unused_port() as port:
        alice = spawn("--name", "alice", "--port", str(port))
        assert alice.wait_exit() == 1
    assert termios.tcgetattr(alice.slave) == alice.mode_before
    assert any("cannot connect" in row for row in alice.rows())


@contextlib.contextmanager
def unused_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


# -- session logic with a stand-in client (no terminal, no network) --------------------------


@pytest.fixture
def session() -> Iterator[tuple[InteractiveSession, FakeClient, int]]:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    loop = EventLoop()
    client = FakeClient("alice")
    # no_color: rich caches a style's SGR codes per style object, for the first
    # color system it met; a 16-color render here would leak into other tests.
    fake: Any = client
    ui = InteractiveSession(fake, loop, no_color=True, stdout_fd=write_end)
    client.on_event = ui._on_client_event  # what run() does
    yield ui, client, read_end
    loop.close()
    os.close(read_end)
    os.close(write_end)


def screen_text(read_end: int) -> str:
    """What the session wrote to its terminal so far."""
    try:
        return os.read(read_end, 1 << 20).decode()
    except BlockingIOError:
        return ""


def me_joined(room: str) -> Joined:
    return Joined(room, "alice", "#e06c75", 0.0)


def test_first_joined_room_becomes_current_and_join_switches_at_once(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, client, _ = session
    client.arrive(me_joined("lobby"))
    assert ui.current_room == "lobby"
    ui._submit("/join dev")
    assert client.calls[-1] == ("join", "dev")
    assert (ui.current_room, ui.screen.prompt) == ("dev", "[dev]> ")
    ui._submit("hello")
    assert client.calls == [("join", "dev"), ("say", "dev", "hello", False)]
    client.arrive(me_joined("dev"))
    assert ui.current_room == "dev"


def test_parting_the_current_room_switches_to_another(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, client, _ = session
    client.arrive(me_joined("lobby"))
    client.arrive(me_joined("dev"))
    ui._submit("/room dev")
    assert ui.current_room == "dev"
    client.arrive(Parted("dev", "alice", "part"))
    assert ui.current_room == "lobby"
    client.arrive(Parted("lobby", "alice", "part"))
    assert ui.current_room is None
    assert ui.screen.prompt == "[no room]> "


def test_prompt_shows_connection_state_and_countdown(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, client, _ = session
    client.arrive(me_joined("lobby"))
    client.state = ClientState.WAITING_TO_RETRY
    ui._on_client_event(ConnectionLost("connection reset", 4.0))
    assert ui.screen.prompt == "[lobby \u00b7 reconnecting in 4 s]> "
    ui.loop.run_until(lambda: "in 3 s" in ui.screen.prompt, timeout_s=3.0)
    assert ui.screen.prompt == "[lobby \u00b7 reconnecting in 3 s]> "
    client.state = ClientState.CONNECTING
    ui._on_client_event(Reconnecting(1))
    assert ui.screen.prompt == "[lobby \u00b7 connecting]> "


def test_tab_candidates_are_members_of_the_current_room(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, client, _ = session
    client.arrive(me_joined("lobby"))
    members = (Member("alice", "#e06c75"), Member("albert", "#61afef"), Member("bob", "#98c379"))
    client.arrive(Roster("lobby", members))
    assert ui._complete("AL") == ["albert", "alice"]  # as the member list sorts them


@pytest.mark.parametrize(("typed", "completed"), [("/jo", "/join "), ("/HIS", "/history ")])
def test_tab_completes_a_command_with_a_space_not_a_colon(
    session: tuple[InteractiveSession, FakeClient, int], typed: str, completed: str,
) -> None:
    # Before: "/jo" Tab gave "/join: ", then "unknown command /join:".
    ui, _, _ = session
    ui.editor.feed(typed.encode() + b"\t")
    assert (ui.editor.buffer, ui.editor.cursor) == (completed, len(completed))


def test_tab_lists_the_commands_a_prefix_fits(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, _, _ = session
    ui.editor.set_buffer("/h")
    assert ui._complete("/h") == ["/history", "/help"]
    assert ui.editor.buffer == "/h"
    ui.editor.set_buffer("see /jo")  # not the first word: not a command
    assert ui._complete("/jo") == []
    assert ui.editor.buffer == "see /jo"


def test_quitting_offline_with_unsent_messages_asks_first(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, client, read_end = session
    client.arrive(me_joined("lobby"))
    client.state = ClientState.WAITING_TO_RETRY
    client.unsent = 2
    ui.ask_to_quit()  # Ctrl-C
    assert client.calls == []
    shown = screen_text(read_end)  # wrapped at 80 columns
    assert "not connected: 2 unsent messages would be dropped; press Ctrl-C again" in shown
    assert "to quit anyway" in shown
    ui.ask_to_quit()  # and again
    assert client.calls == [("quit", None)]


def test_quitting_online_or_with_nothing_unsent_does_not_ask(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, client, _ = session
    client.unsent = 3  # online: the messages are on their way
    ui.ask_to_quit()
    assert client.calls == [("quit", None)]


def test_register_asks_for_the_password_masked_and_out_of_the_history(
    session: tuple[InteractiveSession, FakeClient, int],
) -> None:
    ui, client, read_end = session
    client.arrive(me_joined("lobby"))
    ui._on_keys(b"/register\r")
    assert ui.editor.secret and ui.screen.prompt == "[password for alice]> "
    ui._on_keys(b"hunter2hunter2")
    assert "hunter2" not in screen_text(read_end)  # drawn as stars
    ui._on_keys(b"\r")
    assert client.calls[-1] == ("register", "hunter2hunter2")
    assert not ui.editor.secret and ui.screen.prompt == "[lobby]> "
    assert ui.editor.history == ("/register",)
