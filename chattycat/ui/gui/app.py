"""The desktop client (``chattycat gui``): Tk widgets around the same client core.

:class:`ChatApp` is the glue between three pieces that each stay simple:

- the :class:`~chattycat.client.client.Client` on its own
  :class:`~chattycat.net.loop.EventLoop`, both owned by ONE background thread;
- :class:`~chattycat.ui.gui.model.ChatModel`, the sans-IO view model;
- the Tk widgets, owned by the main thread (Tk is not thread-safe, and on
  macOS it must run on the main thread).

The two threads share exactly two channels. Client events go loop -> Tk
through a :class:`queue.SimpleQueue`, drained every ``DRAIN_INTERVAL_MS``
by a Tk ``after`` callback; user actions go Tk -> loop through
:meth:`EventLoop.call_soon_threadsafe`, which wakes the loop's ``select()``.
Neither thread ever touches the other's objects. docs/gui.md says more.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

try:
    import tkinter as tk
    from tkinter import font as tkfont
except ImportError as exc:  # Python built without Tk, or the Tk libraries are missing
    raise ImportError(
        "the ChattyCat GUI needs Tk, but this Python has no tkinter "
        "(on Debian/Ubuntu: apt-get install python3-tk)"
    ) from exc

from chattycat.client.client import Client, ClientEvent, ClientState
from chattycat.net.contexts import SSLContext
from chattycat.net.loop import EventLoop
from chattycat.ui.gui.model import (
    COLOR_TAG_PREFIX,
    MAX_SCROLLBACK_LINES,
    ActionFailed,
    ChatModel,
    ViewLine,
)
from chattycat.ui.gui.theme import (
    BORDER,
    ENTRY_OPTIONS,
    LISTBOX_OPTIONS,
    SCROLLBAR_OPTIONS,
    STATUS_OPTIONS,
    TAG_LOOKS,
    TEXT_OPTIONS,
)

__all__ = ["ChatApp", "run_gui"]

log = logging.getLogger("chattycat.ui.gui.app")

# How often the Tk side drains client events (and refreshes the status bar).
DRAIN_INTERVAL_MS = 30
# Events handled per drain, so a burst (a long history) cannot freeze the window.
MAX_EVENTS_PER_DRAIN = 500
# After the window is closed or /quit: how long to let the quit frame leave.
QUIT_TIMEOUT_S = 2.0
LOOP_JOIN_TIMEOUT_S = 1.0

class _LoopThreadClient:
    """The model's ClientActions for the Tk thread: every call runs on the loop thread."""

    def __init__(
        self, loop: EventLoop, client: Client, report: Callable[[ActionFailed], None]
    ) -> None:
        self._loop = loop
        self._client = client
        self._report = report

    def _call(self, action: Callable[[], object]) -> None:
        def run() -> None:
            try:
                action()
            except (ValueError, RuntimeError) as exc:  # e.g. the client is closed
                self._report(ActionFailed(str(exc)))

        self._loop.call_soon_threadsafe(run)

    def say(self, room: str, text: str, *, action: bool = False) -> None:
        self._call(functools.partial(self._client.say, room, text, action=action))

    def whisper(self, to: str, text: str) -> None:
        self._call(functools.partial(self._client.whisper, to, text))

    def join(self, room: str) -> None:
        self._call(functools.partial(self._client.join, room))

    def part(self, room: str) -> None:
        self._call(functools.partial(self._client.part, room))

    def who(self, room: str) -> None:
        self._call(functools.partial(self._client.who, room))

    def list_rooms(self) -> None:
        self._call(self._client.list_rooms)

    def history(self, room: str, *, before: int | None = None, limit: int = 50) -> None:
        self._call(functools.partial(self._client.history, room, before=before, limit=limit))

    def nick(self, name: str) -> None:
        self._call(functools.partial(self._client.nick, name))

    def register(self, password: str) -> None:
        self._call(functools.partial(self._client.register, password))

    def quit(self, reason: str | None = None) -> None:
        self._call(functools.partial(self._client.quit, reason))


class ChatApp:
    """The chat window on ``root``; :meth:`start` connects, closing the window quits."""

    def __init__(
        self,
        root: tk.Tk,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 9999,
        addresses: Sequence[tuple[str, int]] = (),
        rooms: Sequence[str] = (),
        ssl_context: SSLContext | None = None,
        server_hostname: str | None = None,
        password: str | None = None,
        server_password: str | None = None,
    ) -> None:
        self.root = root
        self.events: queue.SimpleQueue[ClientEvent | ActionFailed] = queue.SimpleQueue()
        self.loop = EventLoop()
        self.client = Client(
            self.loop, name, host=host, port=port, rooms=rooms, ssl_context=ssl_context,
            server_hostname=server_hostname, on_event=self.events.put,
            password=password, server_password=server_password, addresses=addresses,
        )
        actions = _LoopThreadClient(self.loop, self.client, self.events.put)
        self.model = ChatModel(actions, name, rooms=tuple(rooms))
        self.thread = threading.Thread(target=self._run_loop, name="chattycat-client", daemon=True)
        self.done = False  # the window is gone
        self._stopping = False  # loop-thread state: leave once the quit has been sent
        self._quit_deadline: float | None = None
        self._drain_job: str | None = None
        self._shown_rooms: list[str] = []
        self._color_tags: set[str] = set()
        self._at_end = True  # the message pane shows the newest line
        self._build_widgets(name)
        self.refresh()

    # -- widgets --------------------------------------------------------------------

    def _build_widgets(self, name: str) -> None:
        root = self.root
        root.title(f"ChattyCat \u2014 {name}")
        root.geometry("960x600")
        root.minsize(480, 240)
        # The lines between panes are the root showing through 1-pixel gaps.
        root.configure(background=BORDER)
        # Only the message pane has weight: the side lists keep their modest
        # width and the messages take whatever the window gains or loses.
        root.columnconfigure(1, weight=1)
        root.rowconfigure(0, weight=1)
        root.protocol("WM_DELETE_WINDOW", self.request_close)
        self.room_list = tk.Listbox(root, dict(LISTBOX_OPTIONS), exportselection=False,
                                    activestyle="none")
        self.room_list.grid(row=0, column=0, sticky="ns", padx=(0, 1))
        self.room_list.bind("<<ListboxSelect>>", self._on_room_click)
        self.text = self._build_text(root)
        self.member_list = tk.Listbox(root, dict(LISTBOX_OPTIONS), exportselection=False,
                                      activestyle="none")
        self.member_list.grid(row=0, column=2, sticky="ns", padx=(1, 0))
        self.member_list.bind("<Double-Button-1>", self._on_member_double_click)
        self.entry = tk.Entry(root, dict(ENTRY_OPTIONS))
        self.entry.grid(row=1, column=0, columnspan=3, sticky="ew", pady=(1, 0))
        self.entry.bind("<Return>", self._on_return)
        self.status = tk.Label(root, dict(STATUS_OPTIONS), text=self.model.status_text())
        self.status.grid(row=2, column=0, columnspan=3, sticky="ew")
        self.entry.focus_set()

    def _build_text(self, root: tk.Tk) -> tk.Text:
        frame = tk.Frame(root, background=BORDER)
        frame.grid(row=0, column=1, sticky="nsew")
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(0, weight=1)
        # A small requested width: the grid gives the pane the room left
        # beside the lists, never less because the text asked for 80 columns.
        text = tk.Text(frame, dict(TEXT_OPTIONS), wrap="word", state="disabled", width=20)
        text.grid(row=0, column=0, sticky="nsew")
        scrollbar = tk.Scrollbar(frame, dict(SCROLLBAR_OPTIONS), command=text.yview)
        scrollbar.grid(row=0, column=1, sticky="ns")

        def on_view_change(first: float, last: float) -> None:  # Tk passes strings
            scrollbar.set(first, last)
            self._at_end = float(last) >= 0.999

        text.configure(yscrollcommand=on_view_change)
        # Tk keeps the top line in place when the pane changes size; a chat
        # keeps the newest line in view instead, unless the user scrolled up.
        text.bind("<Configure>", self._on_resize)
        base = tkfont.nametofont(text.cget("font"))
        self._fonts = {style: base.copy() for style in ("bold", "italic")}
        self._fonts["bold"].configure(weight="bold")
        self._fonts["italic"].configure(slant="italic")
        for tag, look in TAG_LOOKS.items():
            options = dict(look)
            if "font" in options:
                options["font"] = self._fonts[options["font"]].name
            text.tag_configure(tag, **options)
        return text

    def _on_resize(self, event: tk.Event[tk.Text]) -> None:
        if self._at_end:
            self.text.see("end")

    # -- running --------------------------------------------------------------------

    def start(self) -> None:
        """Start the client thread and the event drain."""
        self.thread.start()
        self._drain_job = self.root.after(DRAIN_INTERVAL_MS, self._drain)

    def _run_loop(self) -> None:
        """The loop thread: the only thread that touches the loop and the client."""
        try:
            self.client.start()
            self.loop.run_until(self._quit_sent)
        except Exception:  # the thread's boundary: say why it ended
            log.exception("the client thread failed")
            self.events.put(ActionFailed("internal error in the client thread (see the log)"))
        finally:
            if self.client.state is not ClientState.CLOSED:
                self.client.close()
            self.loop.close()

    def _quit_sent(self) -> bool:
        return self._stopping and self.client.drained()

    def _stop_on_loop(self) -> None:
        if self.client.state is not ClientState.CLOSED:
            self.client.close()
        self._stopping = True

    def request_close(self) -> None:
        """The window's close button: quit the client, then close (twice: close now)."""
        if self._quit_deadline is not None:
            self.close_now()
            return
        self.model.request_quit()
        self._begin_shutdown()

    def _begin_shutdown(self) -> None:
        self._quit_deadline = time.monotonic() + QUIT_TIMEOUT_S
        self.entry.configure(state="disabled")
        # Runs after the quit the model has just sent: the ready queue is FIFO.
        self.loop.call_soon_threadsafe(self._stop_on_loop)

    def _shutdown_due(self) -> bool:
        if self._quit_deadline is None:
            return False
        return not self.thread.is_alive() or time.monotonic() >= self._quit_deadline

    def close_now(self) -> None:
        """Destroy the window now; the client thread gets a bounded wait to stop."""
        if self.done:
            return
        self.done = True
        if self.thread.ident is None:  # never started: the loop is ours to close
            self.loop.close()
        elif self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(LOOP_JOIN_TIMEOUT_S)
        if self._drain_job is not None:
            self.root.after_cancel(self._drain_job)
            self._drain_job = None
        self.root.destroy()

    @property
    def exit_code(self) -> int:
        """0 after a quit; 1 if the client gave up (cannot connect, name refused)."""
        return self.model.exit_code

    # -- client events --------------------------------------------------------------

    def _drain(self) -> None:
        self._drain_job = None
        for _ in range(MAX_EVENTS_PER_DRAIN):
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            self.model.handle(event)
        self.refresh()
        if self._shutdown_due():
            self.close_now()
        else:
            self._drain_job = self.root.after(DRAIN_INTERVAL_MS, self._drain)

    def refresh(self) -> None:
        """Bring the widgets up to date with the model."""
        changes = self.model.take_changes()
        if changes.view_reset:
            self._show_view()
        elif changes.new_lines:
            self._append_lines(changes.new_lines)
        if changes.rooms_changed:
            self._show_rooms()
        if changes.members_changed:
            self._show_members()
        status = self.model.status_text()
        if self.status.cget("text") != status:
            self.status.configure(text=status)

    # -- user input -----------------------------------------------------------------

    def send_line(self, line: str) -> None:
        """Act on a line as if typed into the entry and sent with Enter."""
        self.model.submit(line)
        # After a bare /register the next line is a password: masked in the entry.
        self.entry.configure(show="*" if self.model.controller.awaiting_password else "")
        self.refresh()
        if self.model.quitting and self._quit_deadline is None:
            self._begin_shutdown()

    def _on_return(self, event: tk.Event[tk.Entry]) -> str:
        line = self.entry.get()
        self.entry.delete(0, "end")
        self.send_line(line)
        return "break"

    def _on_room_click(self, event: tk.Event[tk.Listbox]) -> None:
        index = _selected_index(self.room_list)
        if index is not None and index < len(self._shown_rooms):
            self.model.switch_room(self._shown_rooms[index])
            self.refresh()
        self.entry.focus_set()

    def _on_member_double_click(self, event: tk.Event[tk.Listbox]) -> None:
        index = _selected_index(self.member_list)
        members = self.model.members()
        if index is not None and index < len(members):
            self.entry.delete(0, "end")
            self.entry.insert(0, f"/msg {members[index].name} ")
            self.entry.focus_set()

    # -- drawing --------------------------------------------------------------------

    def _show_view(self) -> None:
        self.text.configure(state="normal")
        self.text.delete("1.0", "end")
        self.text.configure(state="disabled")
        self._append_lines(self.model.view_lines(), follow=True)

    def _append_lines(self, lines: list[ViewLine], *, follow: bool = False) -> None:
        # Keep the user's place if they scrolled up to read; follow otherwise.
        follow = follow or self.text.yview()[1] >= 0.999
        self.text.configure(state="normal")
        for line in lines:
            if self.text.compare("end-1c", "!=", "1.0"):
                self.text.insert("end", "\n")
            for span in line.spans:
                self.text.insert("end", span.text, self._tag(span.tag))
        excess = int(self.text.index("end-1c").split(".")[0]) - MAX_SCROLLBACK_LINES
        if excess > 0:
            self.text.delete("1.0", f"{excess + 1}.0")
        self.text.configure(state="disabled")
        if follow:
            self.text.see("end")

    def _tag(self, tag: str | None) -> tuple[str, ...]:
        if tag is None:
            return ()
        if tag.startswith(COLOR_TAG_PREFIX) and tag not in self._color_tags:
            # One tag per server-assigned color, created when first seen; the
            # model lets only #rrggbb through, so Tk always accepts it.
            color = tag.removeprefix(COLOR_TAG_PREFIX)
            self.text.tag_configure(tag, foreground=color, font=self._fonts["bold"].name)
            self._color_tags.add(tag)
        return (tag,)

    def _show_rooms(self) -> None:
        self._shown_rooms = list(self.model.rooms)
        self.room_list.delete(0, "end")
        for room in self._shown_rooms:
            self.room_list.insert("end", self.model.room_label(room))
        current = self.model.current_room
        if current in self._shown_rooms:
            index = self._shown_rooms.index(current)
            self.room_list.selection_set(index)
            self.room_list.see(index)

    def _show_members(self) -> None:
        self.member_list.delete(0, "end")
        for index, (name, color) in enumerate(self.model.member_entries()):
            self.member_list.insert("end", name)
            if color is not None:
                self.member_list.itemconfigure(index, foreground=color)


def _selected_index(listbox: tk.Listbox) -> int | None:
    # curselection() is untyped in typeshed; the lists are short.
    return next((i for i in range(listbox.size()) if listbox.selection_includes(i)), None)


def run_gui(
    *,
    name: str,
    host: str = "127.0.0.1",
    port: int = 9999,
    addresses: Sequence[tuple[str, int]] = (),
    rooms: Sequence[str],
    ssl_context: SSLContext | None,
    server_hostname: str | None,
    password: str | None = None,
    server_password: str | None = None,
) -> int:
    """Open the chat window and run until it is closed; returns the exit code.

    Raises :class:`tkinter.TclError` when there is no display to open it on.
    """
    root = tk.Tk()
    try:
        app = ChatApp(root, name=name, host=host, port=port, addresses=addresses, rooms=rooms,
                      ssl_context=ssl_context, server_hostname=server_hostname,
                      password=password, server_password=server_password)
    except BaseException:
        root.destroy()
        raise

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between Tk callbacks; Ctrl-C or SIGTERM
        # quits like the close button instead of a traceback from a callback.
        root.after_idle(app.request_close)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        app.start()
        root.mainloop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not app.done:  # mainloop ended some other way
            app.loop.call_soon_threadsafe(app.loop.stop)
            app.thread.join(LOOP_JOIN_TIMEOUT_S)
    return app.exit_code
