"""Smoke tests of the Tk client on a real display against a real server.

Tk needs an X display: without ``DISPLAY`` the ``display`` fixture starts
``Xvfb`` (``apt-get install xvfb``) and stops it by PID at teardown; the
tests are skipped only when neither is available. The app is not run with
``mainloop()``: the test pumps ``root.update()`` in loops bounded by deadlines.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chattycat.client.client import ClientState
from chattycat.server.colors import contrast_ratio
from tests.conftest import StartInProcess

tk = pytest.importorskip("tkinter", reason="this Python has no tkinter")

from chattycat.ui.gui import app as gui  # noqa: E402  (after the tkinter check)
from chattycat.ui.gui.app import ChatApp  # noqa: E402

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="the display fixture needs X11"),
    pytest.mark.timeout(60),
]

WAIT_S = 10.0
XVFB_START_TIMEOUT_S = 10.0
XVFB_STOP_TIMEOUT_S = 5.0
STAMP = r"\d\d:\d\d:\d\d"


def _read_display_number(fd: int, deadline: float) -> str:
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError("Xvfb did not report its display number")
        chunk = os.read(fd, 64)
        if not chunk:
            raise RuntimeError("Xvfb exited before reporting its display number")
        data += chunk
    return data.decode().strip()


@pytest.fixture(scope="module")
def display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An X display: ``$DISPLAY`` if set, else a private Xvfb on a free display number."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("DISPLAY is unset and Xvfb is not installed (apt-get install xvfb)")
    log_path = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    read_fd, write_fd = os.pipe()
    # -displayfd: Xvfb picks a free display number itself (no race with other
    # servers starting at the same time) and writes it once it accepts clients.
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1024x768x24",
             "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    os.close(write_fd)
    try:
        number = _read_display_number(read_fd, time.monotonic() + XVFB_START_TIMEOUT_S)
    except (TimeoutError, RuntimeError) as exc:
        _stop(proc)
        pytest.fail(f"{exc}:\n{log_path.read_text(errors='replace')}")
    finally:
        os.close(read_fd)
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(XVFB_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(XVFB_STOP_TIMEOUT_S)


@pytest.fixture
def root(display: str) -> Iterator[Any]:
    window = tk.Tk()
    yield window
    with contextlib.suppress(tk.TclError):  # the app may have destroyed it already
        window.destroy()


def pump(root: Any, condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Process Tk events until ``condition()`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out waiting for {what}")
        root.update()
        time.sleep(0.01)


def view_text(app: ChatApp) -> str:
    return str(app.text.get("1.0", "end-1c"))


def listbox_items(listbox: Any) -> list[str]:
    return [str(listbox.get(i)) for i in range(listbox.size())]


def tags_at(app: ChatApp, needle: str) -> tuple[str, ...]:
    index = app.text.search(needle, "1.0", stopindex="end")
    assert index, f"{needle!r} is not in the view"
    return tuple(str(tag) for tag in app.text.tag_names(index))


def test_gui_sends_receives_switches_rooms_and_quits(
    root: Any, chat_server: StartInProcess
) -> None:
    server = chat_server(db=":memory:")
    app = ChatApp(root, name="alice", host=server.host, port=server.port)
    try:
        app.start()
        pump(root, lambda: app.model.current_room == "lobby", "alice to join the lobby")
        pump(root, lambda: app.status.cget("text") == "connected as alice", "the status bar")
        assert listbox_items(app.room_list) == ["#lobby"]

        bob = server.user("bob")
        bob_color = bob.welcome["color"] if bob.welcome else ""
        pump(root, lambda: "bob" in listbox_items(app.member_list), "bob in the member list")
        assert listbox_items(app.member_list) == ["alice", "bob"]
        assert app.member_list.itemcget(1, "foreground") == bob_color

        # Typed and sent with Enter; shown only once the server echoed it back.
        app.entry.focus_force()
        app.entry.insert(0, "hello from the gui")
        app.entry.event_generate("<Return>")
        pump(root, lambda: "alice: hello from the gui" in view_text(app), "our echoed message")
        assert app.entry.get() == ""
        assert re.search(rf"^{STAMP} alice: hello from the gui$", view_text(app), re.M)
        line_start = app.text.search("alice: hello", "1.0", stopindex="end").split(".")[0]
        assert "time" in app.text.tag_names(f"{line_start}.0")  # the dimmed timestamp
        said = bob.recv_until("message", where=lambda f: f["from"] == "alice")
        assert said["text"] == "hello from the gui"

        bob.say("lobby", "hi alice")
        pump(root, lambda: "bob: hi alice" in view_text(app), "bob's message")
        assert f"color:{bob_color.lower()}" in tags_at(app, "bob: hi")

        # /join switches the view; lobby messages are then counted, not shown.
        app.send_line("/join dev")
        pump(root, lambda: app.model.current_room == "dev", "the switch to #dev")
        assert "hi alice" not in view_text(app)
        bob.say("lobby", "are you there?")
        pump(root, lambda: "#lobby (1)" in listbox_items(app.room_list), "an unread count")
        assert "are you there?" not in view_text(app)

        # A click on the room shows its scrollback and clears the count.
        app.room_list.selection_clear(0, "end")
        app.room_list.selection_set(listbox_items(app.room_list).index("#lobby (1)"))
        app.room_list.event_generate("<<ListboxSelect>>")
        pump(root, lambda: "bob: are you there?" in view_text(app), "the lobby scrollback")
        assert listbox_items(app.room_list) == ["#lobby", "#dev"]

        # Closing the window quits: the others see alice leave with reason quit.
        app.request_close()
        pump(root, lambda: app.done, "the window to close")
        assert app.exit_code == 0
        assert app.client.state is ClientState.CLOSED
        assert not app.thread.is_alive()
        parted = bob.recv_until("parted", where=lambda f: f["name"] == "alice")
        assert parted["reason"] == "quit"
    finally:
        app.close_now()


def test_quit_command_closes_the_window(root: Any, chat_server: StartInProcess) -> None:
    server = chat_server(db=":memory:")
    app = ChatApp(root, name="carol", host=server.host, port=server.port, rooms=["ops"])
    assert listbox_items(app.room_list) == ["#ops"]  # shown before the server confirms it
    try:
        app.start()
        watcher = server.user("dave")
        pump(root, lambda: app.status.cget("text") == "connected as carol", "carol online")
        watcher.send({"type": "join", "room": "ops"})
        pump(root, lambda: "dave" in listbox_items(app.member_list), "dave in #ops")
        app.send_line("/quit see you")
        pump(root, lambda: app.done, "the window to close after /quit")
        assert app.exit_code == 0
        parted = watcher.recv_until(
            "parted", where=lambda f: f["name"] == "carol" and f["room"] == "ops"
        )
        assert parted["reason"] == "see you"
    finally:
        app.close_now()


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_gui_shows_a_failed_start_and_exits_1(
    display: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses: list[str] = []
    start = ChatApp.start

    def start_then_close_on_failure(app: ChatApp) -> None:
        start(app)
        deadline = time.monotonic() + WAIT_S

        def check() -> None:
            if app.model.finished or time.monotonic() >= deadline:
                app.refresh()
                statuses.append(str(app.status.cget("text")))
                app.request_close()
            else:
                app.root.after(20, check)

        app.root.after(20, check)

    monkeypatch.setattr(ChatApp, "start", start_then_close_on_failure)
    port = _refused_port()
    code = gui.run_gui(name="erin", host="127.0.0.1", port=port, rooms=(),
                       ssl_context=None, server_hostname=None)
    assert code == 1
    assert statuses == [f"failed: cannot connect to 127.0.0.1:{port}: connection refused"]


def test_import_without_tkinter_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tkinter", None)  # what "import tkinter" then fails on
    monkeypatch.delitem(sys.modules, "chattycat.ui.gui.app")
    with pytest.raises(ImportError, match="the ChattyCat GUI needs Tk"):
        importlib.import_module("chattycat.ui.gui.app")



def test_closing_a_window_never_started_releases_the_loop(root: Any) -> None:
    app = ChatApp(root, name="frank", host="127.0.0.1", port=_refused_port())
    app.close_now()
    assert app.done
    assert app.loop.is_closed()


def _resize(root: Any, geometry: str) -> None:
    width, height = (int(n) for n in geometry.split("x"))
    root.geometry(geometry)
    pump(root, lambda: (root.winfo_width(), root.winfo_height()) == (width, height), geometry)


def test_at_600x400_the_message_pane_takes_the_space_the_lists_give_up(root: Any) -> None:
    app = ChatApp(root, name="grace", host="127.0.0.1", port=_refused_port())
    try:
        _resize(root, "1000x700")
        wide = (app.room_list.winfo_width(), app.text.winfo_width(),
                app.member_list.winfo_width())
        _resize(root, "600x400")
        rooms, messages, members = (app.room_list.winfo_width(), app.text.winfo_width(),
                                    app.member_list.winfo_width())
        # The reported defect: the lists kept 164 px each and left the
        # messages 259 of the 600. Now the messages get more than both.
        assert messages > rooms + members
        # The side lists keep their modest width; the messages absorb the change.
        assert (rooms, members) == (wide[0], wide[2])
        assert wide[1] - messages == 400
    finally:
        app.close_now()


def test_a_resize_keeps_the_newest_line_in_view_unless_scrolled_up(root: Any) -> None:
    app = ChatApp(root, name="ivan", host="127.0.0.1", port=_refused_port())
    try:
        _resize(root, "1000x700")
        app.text.configure(state="normal")
        app.text.insert("end", "\n".join(f"line {n}" for n in range(200)))
        app.text.configure(state="disabled")
        app.text.see("end")
        root.update()
        _resize(root, "600x400")
        root.update()
        assert app.text.yview()[1] == pytest.approx(1.0)
        app.text.yview_moveto(0.0)  # the user scrolls up to read
        root.update()
        _resize(root, "1000x700")
        root.update()
        assert app.text.yview()[0] == 0.0
    finally:
        app.close_now()


def _hex(widget: Any, color: str) -> str:
    red, green, blue = widget.winfo_rgb(color)  # 16-bit channels, any Tk color spec
    return f"#{red >> 8:02x}{green >> 8:02x}{blue >> 8:02x}"


def _is_dark(color: str) -> bool:
    return contrast_ratio(color, "#ffffff") > contrast_ratio(color, "#000000")


def test_every_pane_is_dark_and_its_text_and_selection_read_at_aa(root: Any) -> None:
    app = ChatApp(root, name="heidi", host="127.0.0.1", port=_refused_port())
    try:
        panes = {"rooms": app.room_list, "messages": app.text, "members": app.member_list,
                 "entry": app.entry, "status": app.status}
        for what, widget in panes.items():
            background = _hex(widget, widget.cget("background"))
            foreground = _hex(widget, widget.cget("foreground"))
            assert _is_dark(background), f"the {what} background {background} is light"
            assert contrast_ratio(foreground, background) >= 4.5, what
        for what, widget in panes.items():
            if what != "status":
                selected = _hex(widget, widget.cget("selectforeground"))
                selection = _hex(widget, widget.cget("selectbackground"))
                assert contrast_ratio(selected, selection) >= 4.5, f"a selection in the {what}"
    finally:
        app.close_now()
