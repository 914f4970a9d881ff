"""The web client in a real Chromium against a real ``chattycat serve``.

Two browsers and a terminal client chat in one room; history scrolls back;
messages typed while the server restarts arrive once; markup from a terminal
client stays text; the desktop and phone layouts are screenshot for a person
to look at (the path is printed and kept; nothing is committed).
"""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    ServerProcess,
    StartServer,
    _LineCollector,
    chattycat_command,
    child_env,
    wait_for,
)
from tests.web.browser import WEB_URL_RE, Page, browser, web_port_of

__all__ = ["browser"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.timeout(120)
OpenPage = Callable[..., Page]


def start_web(server_process: StartServer, *extra: str) -> tuple[ServerProcess, str]:
    server = server_process("--web-port", "0", *extra)
    port = web_port_of(server.wait_for_log(WEB_URL_RE))
    return server, f"http://127.0.0.1:{port}/"


class Terminal:
    """A ``chattycat join`` scripted client: lines in on stdin, events out on stdout."""

    def __init__(self, port: int, name: str) -> None:
        self.proc = subprocess.Popen(
            chattycat_command("join", "--port", str(port), "--name", name),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=child_env(),
        )
        assert self.proc.stdout is not None
        self.out = _LineCollector(self.proc.stdout)
        assert self.out.wait_for(re.compile("connected as"), 10), self.out.lines

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def saw(self, pattern: str) -> bool:
        return self.out.wait_for(re.compile(pattern), 10) is not None

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def terminals() -> Iterator[Callable[[int, str], Terminal]]:
    started: list[Terminal] = []

    def start(port: int, name: str) -> Terminal:
        started.append(Terminal(port, name))
        return started[-1]

    yield start
    for terminal in started:
        terminal.stop()


def test_two_browsers_and_a_terminal_see_each_message_once_in_order(
    server_process: StartServer, browser: OpenPage,
    terminals: Callable[[int, str], Terminal],
) -> None:
    server, url = start_web(server_process)
    alice, bob = browser(), browser()
    alice.enter(url, "alice")
    bob.enter(url, "bob")
    carol = terminals(server.port, "carol")
    alice.wait(lambda: len(alice.all_css("#member-list li")) == 3, "three members")

    alice.type_line("one from alice")
    bob.wait_texts(["one from alice"])
    bob.type_line("two from bob")
    alice.wait_texts(["two from bob"])
    carol.say("three from carol, hi alice")
    expected = ["one from alice", "two from bob", "three from carol, hi alice"]
    for page in (alice, bob):
        assert page.wait_texts(expected) == expected  # once each, in order
        assert not page.all_css("#log li.pending")
    assert carol.saw(r"alice: one from alice") and carol.saw(r"bob: two from bob")

    # Server colors on the names, timestamps in local time with the full instant.
    color = bob.js("return chattycat.session.rooms.get('lobby').members.get('alice').color")
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    nick = bob.by_css("#log li.message .nick")  # alice's
    assert nick.value_of_css_property("color") == f"rgba({red}, {green}, {blue}, 1)"
    stamp = bob.by_css("#log li.message time")
    assert re.fullmatch(r"\d\d:\d\d( [AP]M)?", stamp.text) and stamp.get_attribute("datetime")
    # A mention of alice is highlighted for alice only.
    assert alice.all_css("#log li.message.mention")
    assert not bob.all_css("#log li.message.mention")

    carol.say("/msg bob psst, bob")
    bob.wait(lambda: "psst, bob" in bob.by_css("#log li.whisper").text, "the whisper")
    assert "whisper from" in bob.by_css("#log li.whisper").text
    assert not alice.all_css("#log li.whisper")


def test_scrolling_to_the_top_loads_older_history(
    server_process: StartServer, browser: OpenPage,
) -> None:
    server, url = start_web(server_process, "--flood-rate", "0")
    writer = server.connect()
    writer.hello("writer")
    for n in range(1, 121):
        writer.say("lobby", f"old message {n}")
    writer.recv_until("message", where=lambda f: f["seq"] == 120)
    page = browser()
    page.enter(url, "reader")
    page.wait(lambda: len(page.log_texts()) == 50, "the join's 50 messages")
    assert page.log_texts()[0] == "old message 71"
    for expected in (100, 120):
        page.js("document.getElementById('log').scrollTop = 0;"
                "document.getElementById('log').dispatchEvent(new Event('scroll'))")
        page.wait(lambda n=expected: len(page.log_texts()) == n, f"{expected} messages")
    assert page.log_texts() == [f"old message {n}" for n in range(1, 121)]
    assert not page.by_css("#older").is_displayed()  # nothing older is left


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_messages_typed_while_the_server_restarts_arrive_once(
    server_process: StartServer, browser: OpenPage, tmp_path: Path,
) -> None:
    web_port = str(free_port())
    db = tmp_path / "restart.sqlite3"
    server = server_process("--web-port", web_port, db=db)
    url = f"http://127.0.0.1:{web_port}/"
    page = browser()
    page.enter(url, "steady")
    page.type_line("before the restart")
    page.wait_texts(["before the restart"])

    assert server.stop() == 0
    page.wait(lambda: "disconnected" in page.by_css("#status").text, "the drop")
    page.type_line("typed while down 1")
    page.type_line("typed while down 2")
    page.wait(lambda: len(page.all_css("#log li.pending")) == 2, "two pending messages")

    again = server_process("--web-port", web_port, db=db)
    page.wait_connected(timeout_s=40)  # backoff: retries are at most 30 s apart
    expected = ["before the restart", "typed while down 1", "typed while down 2"]
    page.wait(lambda: page.log_texts() == expected and not page.all_css("#log li.pending"),
              "the pending messages, acknowledged")
    watcher = again.connect()
    watcher.hello("watcher")
    history = watcher.join_frames[-1] if watcher.join_frames else None
    texts = [m["text"] for m in (history or {}).get("messages", [])]
    if not texts:
        watcher.send({"type": "history", "room": "lobby", "before": 100})
        texts = [m["text"] for m in watcher.recv_until("history")["messages"]]
    assert texts == expected  # stored once each


XSS_LINES = [
    "<script>window.pwned = 1</script>",
    '<img src=x onerror="window.pwned = 2">',
    "click javascript:window.pwned=3 or https://example.org/a?b=<i>c</i>",
    "\u202etxt.exe",
]


def test_markup_from_a_terminal_client_renders_inert(
    server_process: StartServer, browser: OpenPage,
    terminals: Callable[[int, str], Terminal],
) -> None:
    server, url = start_web(server_process, "--flood-rate", "0")
    page = browser()
    page.enter(url, "target")
    attacker = terminals(server.port, "mallory")
    for line in XSS_LINES:
        attacker.say(line)
    page.wait(lambda: len(page.log_texts()) == len(XSS_LINES), "the payloads")
    texts = page.log_texts()
    assert texts[:2] == XSS_LINES[:2]  # shown as the text they are
    assert texts[3] == "\\u202etxt.exe"  # the bidi override made visible, as in the terminal
    assert page.js("return window.pwned") is None
    assert page.js("return document.querySelectorAll('#log script, #log img').length") == 0
    links = page.all_css("#log a")
    # Only the http(s) URL is a link (it ends where markup begins); javascript: stays text.
    assert [a.get_attribute("href") for a in links] == ["https://example.org/a?b="]
    assert texts[2] == XSS_LINES[2]
    assert links[0].get_attribute("rel") == "noopener noreferrer"
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert  # noqa: B018 - the property raises when no dialog is open


def test_layouts_are_screenshot_and_accessible(
    server_process: StartServer, browser: OpenPage,
    terminals: Callable[[int, str], Terminal],
) -> None:
    server, url = start_web(server_process, "--flood-rate", "0")
    shots = Path(tempfile.mkdtemp(prefix="chattycat-screenshots-"))
    desk = browser(1280, 800)
    login = desk.by_css("#name-input") if desk.driver.get(url) is None else None
    assert login is not None and desk.by_css("label[for=name-input]").text == "Name"
    desk.enter(url, "deskuser")
    friend = terminals(server.port, "friend")
    friend.say("/join dev")
    friend.say("hello from the dev room")
    friend.say("/room lobby")
    friend.say("hi deskuser, see https://example.org/docs")
    friend.say("/me waves")
    desk.wait_texts(["hi deskuser, see https://example.org/docs", "waves"])
    desk.type_line("/join dev")
    desk.wait(lambda: desk.by_css("#room-title").text == "#dev", "the dev room")
    desk.type_line("/room lobby")
    desk.wait(lambda: desk.by_css("#room-title").text == "#lobby", "back in the lobby")
    desk.screenshot(shots / "desktop.png")
    desk.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    desk.wait(lambda: desk.js("return getComputedStyle(document.body).backgroundColor")
              != "rgb(255, 255, 255)", "the dark theme")
    desk.screenshot(shots / "desktop-dark.png")

    # Accessible names, as a screen reader finds them.
    assert desk.by_css("#message").accessible_name == "Message"
    assert desk.by_css("#log").aria_role == "log"
    assert desk.by_css("#room-list").accessible_name == "Rooms"
    assert desk.by_css("#member-list").accessible_name == "Members"

    phone = browser(390, 844, phone=True)
    phone.enter(url, "phoneuser")
    phone.wait_texts(["hi deskuser, see https://example.org/docs"])
    assert not phone.by_css("#rooms-pane").is_displayed()
    assert not phone.by_css("#members-pane").is_displayed()
    phone.screenshot(shots / "phone.png")
    phone.by_css("#rooms-toggle").click()
    phone.wait(lambda: phone.by_css("#rooms-pane").is_displayed(), "the rooms pane")
    phone.screenshot(shots / "phone-rooms.png")
    assert wait_for(lambda: all((shots / n).stat().st_size > 1000 for n in
                                ("desktop.png", "desktop-dark.png", "phone.png",
                                          "phone-rooms.png")), 5)
    print(f"\nscreenshots in {shots}")


def test_unread_counts_marker_mentions_and_search(
    server_process: StartServer, browser: OpenPage,
    terminals: Callable[[int, str], Terminal],
) -> None:
    server, url = start_web(server_process, "--flood-rate", "0")
    page = browser()
    page.enter(url, "reader")
    friend = terminals(server.port, "friend")
    friend.say("seen already")
    page.wait_texts(["seen already"])
    page.type_line("/join dev")
    page.wait(lambda: page.by_css("#room-title").text == "#dev", "the dev room")
    friend.say("hey reader, look")
    friend.say("and another thing")
    badge_css = "#room-list button[data-room=lobby] .badge"
    # Both messages may not have arrived when the badge first shows: wait for 2.
    page.wait(lambda: page.all_css(badge_css) and page.by_css(badge_css).text == "2",
              "the unread badge at 2")
    badge = page.by_css(badge_css)
    assert "mention" in badge.get_attribute("class")
    assert page.driver.title.startswith("(1) ")  # mentions waiting, in the tab title
    page.by_css("#room-list button[data-room=lobby]").click()
    page.wait(lambda: page.by_css("#room-title").text == "#lobby", "back in the lobby")
    lines = page.all_css("#log li")
    classes = [line.get_attribute("class") for line in lines]
    marker = next(i for i, c in enumerate(classes) if "unread-marker" in c)
    assert lines[marker + 1].text.endswith("hey reader, look")
    assert "mention" in classes[marker + 1]
    assert not page.all_css("#room-list .badge")
    assert not page.driver.title.startswith("(")

    page.by_css("#search").send_keys("another")
    page.wait(lambda: page.by_css("#search-count").text == "1 found", "the search count")
    shown = [li.text for li in page.all_css("#log li.message") if li.is_displayed()]
    assert len(shown) == 1 and shown[0].endswith("and another thing")


def test_keyboard_only_use(server_process: StartServer, browser: OpenPage) -> None:
    from selenium.webdriver.common.keys import Keys

    _, url = start_web(server_process)
    page = browser()
    page.driver.get(url)
    page.wait(lambda: page.driver.switch_to.active_element.get_attribute("id") == "name-input",
              "the name field focused")
    page.driver.switch_to.active_element.send_keys("keys", Keys.ENTER)
    page.wait_connected()
    active = page.driver.switch_to.active_element
    assert active.get_attribute("id") == "message"
    active.send_keys("typed, never clicked", Keys.ENTER)
    page.wait_texts(["typed, never clicked"])
    active.send_keys(Keys.TAB)
    assert page.driver.switch_to.active_element.text == "Send"


def test_the_modules_reconnect_policy_and_command_parser(
    server_process: StartServer, browser: OpenPage,
) -> None:
    _, url = start_web(server_process)
    page = browser()
    page.driver.get(url)
    page.driver.set_script_timeout(10)
    result = page.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all([import('/link.js'), import('/commands.js')]).then(([link, cmd]) => {
          const delays = (n) => Array.from({length: 200}, () => link.retryDelay(n));
          done({
            first: Math.max(...delays(0)), cap: Math.max(...delays(40)),
            floor: Math.min(...delays(40)),
            msg: cmd.parseLine('/msg bob hi there'), slash: cmd.parseLine('//etc'),
            bad: cmd.parseLine('/join Bad').kind, me: cmd.parseLine('/me waves'),
          });
        });
    """)
    assert result["first"] < 1000  # the first retry comes within a second
    assert result["cap"] <= 30000 and result["floor"] >= 7500  # capped, with jitter
    assert result["msg"] == {"kind": "msg", "text": "hi there", "to": "bob"}
    assert result["slash"] == {"kind": "say", "text": "/etc"}
    assert result["bad"] == "hint"
    assert result["me"] == {"kind": "me", "text": "waves"}


def test_a_server_that_lost_its_history_is_not_mistaken_for_old_news(
    server_process: StartServer, browser: OpenPage,
) -> None:
    web_port = str(free_port())
    server = server_process("--web-port", web_port, db=":memory:")
    page = browser()
    page.enter(f"http://127.0.0.1:{web_port}/", "forgetful")
    for n in (1, 2):
        page.type_line(f"numbered {n} before")
    page.wait_texts(["numbered 1 before", "numbered 2 before"])
    assert server.stop() == 0
    page.wait(lambda: "disconnected" in page.by_css("#status").text, "the drop")
    again = server_process("--web-port", web_port, db=":memory:")
    page.wait_connected(timeout_s=40)
    other = again.connect()
    other.hello("other")
    other.say("lobby", "seq 1 again")  # the same seq as a message the page has seen
    assert page.wait_texts(["seq 1 again"]) == ["seq 1 again"]
