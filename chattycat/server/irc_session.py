"""One IRC connection, sans-IO: IRC commands in, ChattyCat requests out, and back.

:class:`IrcSession` turns each line an IRC client sends into requests for the
room state machine (the same :class:`~chattycat.protocol.messages.Request`
frames a native client sends), and each frame the machine sends this
connection into IRC lines (:meth:`IrcSession.encode_frame`). It keeps only
what IRC needs and ChattyCat does not say: the nick, the negotiated
capabilities, who is in the channels it sees (to send one ``QUIT`` for a user
who leaves several rooms), and which request each reply answers.

Replies find their command through ``ref``: every request carries a fresh
integer ``ref`` that the machine echoes in its direct replies. Lines the
session answers by itself (``MOTD``, ``421``, ``CAP``, ...) must not overtake
what the machine still has queued for this connection (a ``JOIN`` answered
before the ``PRIVMSG`` sent ahead of it would confuse any client), so they
wait behind a *barrier*: a ``ping`` request whose ``pong`` (or, before
registration, ``hello_required`` error) carries the same ``ref`` back in
order, and releases them. The same barrier closes an IRCv3 labeled response.
"""

from __future__ import annotations

import itertools

from chattycat.errors import ProtocolError
from chattycat.protocol.irc import (
    MAX_LINE_BYTES,
    IrcMessage,
    LineTooLong,
    format_line,
    parse_line,
)
from chattycat.protocol.messages import Frame, Hello, Part, Ping, Quit, Request
from chattycat.server.irc_commands import COMMANDS, PRE_REGISTRATION
from chattycat.server.irc_frames import render_frame
from chattycat.server.irc_model import (
    UNREGISTERED,
    Command,
    IrcDoor,
    IrcUser,
    Pending,
    Registration,
)
from chattycat.server.irc_replies import nick_of

__all__ = ["IrcSession"]

# The tags a client may send, '@' and the space after them excluded (IRCv3 message-tags).
MAX_CLIENT_TAGS_BYTES = 4094

class IrcSession:
    """Translator for one IRC connection; the door feeds it lines and frames."""

    def __init__(self, conn_id: int, door: IrcDoor) -> None:
        self.conn_id = conn_id
        self.door = door
        self.server_name = door.server_name
        self.host = door.host
        self.user = IrcUser("", "")  # filled by USER
        self.secret = ""  # the session the machine gave this connection
        self.password: str | None = None  # from PASS: never logged, never echoed
        self.registration = Registration.REGISTERING
        self.name: str | None = None  # the ChattyCat name (wanted, then granted)
        self.user_given = False
        self.cap_negotiating = False
        self.caps: set[str] = set()
        # room -> {name_key: name} for every channel this user is in
        self.channels: dict[str, dict[str, str]] = {}
        self.closing = False  # QUIT was sent
        self.close_now = False  # ...and, before registration, the door must close
        self._refs = itertools.count(1)
        self._ids = itertools.count(1)
        self._batches = itertools.count(1)
        self.pending: dict[int, Pending] = {}
        self.said: dict[str, Pending] = {}  # say/whisper id -> what it answers

    # -- names ------------------------------------------------------------------

    @property
    def nick(self) -> str:
        """This client's nick (``*`` until it has one)."""
        if self.registration is not Registration.ACTIVE or self.name is None:
            return UNREGISTERED
        return nick_of(self.name)

    def source_of(self, name: str) -> str:
        """The ``nick!user@host`` prefix for ChattyCat user ``name``."""
        return f"{nick_of(name)}!{name}@{self.host}"

    def numeric(self, code: str, *params: str) -> IrcMessage:
        """A numeric reply to this client."""
        return IrcMessage(code, (self.nick, *params), self.server_name)

    def new_ref(self, pending: Pending) -> int:
        """A fresh ref, remembered with what its replies answer."""
        ref = next(self._refs)
        self.pending[ref] = pending
        return ref

    def new_id(self) -> str:
        """A message id for a say or whisper; ids are never reused on a connection."""
        return f"irc{self.conn_id}-{next(self._ids)}"

    def new_batch(self) -> str:
        """A fresh batch reference tag."""
        return f"b{next(self._batches)}"

    # -- input: lines from the IRC client -------------------------------------------

    def line_received(self, line: bytes) -> list[Request]:
        """The requests one line from the client asks of the state machine."""
        try:
            message = parse_line(line)
        except ProtocolError as exc:
            return self._refuse_line(line, exc)
        if message is None:
            return []
        tags_end = line.find(b" ") + 1 if line.startswith(b"@") else 0
        if len(line) - tags_end > MAX_LINE_BYTES - 2 or tags_end > MAX_CLIENT_TAGS_BYTES + 1:
            # RFC 1459 2.3: 512 bytes with CRLF, tags apart; IRCv3 message-tags:
            # 4094 bytes of tags from a client.
            return self.too_long(LineTooLong(len(line)))
        command = Command(message.command, message.tags.get("label")
                          if "labeled-response" in self.caps else None)
        handler = COMMANDS.get(message.command)
        requests: list[Request]
        if handler is None:
            command.local.append(self.numeric("421", message.command, "Unknown command"))
            requests = []
        elif (self.registration is not Registration.ACTIVE
              and message.command not in PRE_REGISTRATION):
            command.local.append(self.numeric("451", "You have not registered"))
            requests = []
        else:
            requests = handler(self, command, message.params)
        return self._with_barrier(command, requests)

    def too_long(self, exc: LineTooLong) -> list[Request]:
        """The client sent a line over the limit; it was dropped."""
        command = Command("")
        command.local.append(self.numeric("417", "Input line was too long"))
        return self._with_barrier(command, [])

    def _refuse_line(self, line: bytes, exc: ProtocolError) -> list[Request]:
        # UTF8ONLY: the line is refused, the connection goes on (per line, not per connection).
        verb = line.decode("utf-8", "replace").lstrip(" ").split(" ")
        words = [w for w in verb if w and not w.startswith(("@", ":"))]
        name = words[0].upper() if words and words[0].isascii() and words[0].isalnum() else "*"
        command = Command(name)
        command.local.append(IrcMessage(
            "FAIL", (name, "INVALID_UTF8", "lines must be UTF-8 text"), self.server_name))
        return self._with_barrier(command, [])

    def _with_barrier(self, command: Command, requests: list[Request]) -> list[Request]:
        if command.local or command.label is not None:
            ref = self.new_ref(Pending("barrier", command))
            requests = [*requests, Ping(ref=ref)]
        return requests

    def registered_if_ready(self, command: Command) -> list[Request]:
        """The hello, once NICK, USER and (if CAP was used) CAP END have all come."""
        if (self.registration is not Registration.REGISTERING or self.name is None
                or not self.user_given or self.cap_negotiating):
            return []
        self.registration = Registration.HELLO_SENT
        pending = Pending("hello", command, nick_of(self.name))
        secret = self.door.secret_for(self.name)
        requests: list[Request] = [Hello(self.name, session=secret, password=self.password,
                                         server_password=self.password,
                                         ref=self.new_ref(pending))]
        room = self.door.leave_room
        if room is not None:
            # Carried out right after the hello, before anyone can see this user
            # in the room: the lines for joining and leaving it are not shown.
            leave = Pending("autopart", command, "#" + room)
            requests.append(Part(room, ref=self.new_ref(leave)))
        return requests

    def registered(self, name: str, secret: str) -> None:
        """The machine welcomed this connection as ``name``, with session ``secret``."""
        self.registration, self.name, self.secret = Registration.ACTIVE, name, secret
        self.door.users[name.lower()] = self.user
        self.door.remember(name, secret)

    def renamed(self, new: str) -> None:
        """This connection's user is now ``new``."""
        if self.name is not None:
            self.door.users.pop(self.name.lower(), None)
        self.name = new
        self.door.users[new.lower()] = self.user
        self.door.remember(new, self.secret)

    def forget(self) -> None:
        """The connection is gone: the door no longer knows its user."""
        if self.name is not None and self.door.users.get(self.name.lower()) is self.user:
            del self.door.users[self.name.lower()]

    def quit(self, command: Command, reason: str | None) -> list[Request]:
        """QUIT: a last ERROR line, then the machine ends the session and closes."""
        # The ERROR line waits behind its own barrier, which goes before the quit:
        # nothing this connection asks after quitting is answered.
        farewell = Command(command.name)
        farewell.local.append(IrcMessage("ERROR", (f"Closing link: {reason or 'Quit'}",)))
        self.closing = True
        barrier = Ping(ref=self.new_ref(Pending("barrier", farewell)))
        quit_ref = self.new_ref(Pending("quit", command))
        return [barrier, Quit(reason[:200] if reason else None, ref=quit_ref)]

    # -- output: frames from the state machine -----------------------------------------

    def encode_frame(self, frame: Frame) -> bytes:
        """``frame`` as this client's IRC lines (often one, sometimes none)."""
        return b"".join(format_line(line) for line in render_frame(self, frame))

    def finish(self, command: Command) -> list[IrcMessage]:
        """A command's held lines, released by its barrier (labeled when it had a label)."""
        lines = command.lines + command.local
        label = command.label
        if label is None:
            return lines
        if not lines:
            return [IrcMessage("ACK", (), self.server_name, {"label": label})]
        if len(lines) == 1:
            return [_tagged(lines[0], {"label": label})]
        batch = self.new_batch()
        opened = IrcMessage("BATCH", ("+" + batch, "labeled-response"), self.server_name,
                            {"label": label})
        inner = [_tagged(line, {"batch": batch}) for line in lines]
        return [opened, *inner, IrcMessage("BATCH", ("-" + batch,), self.server_name)]


def _tagged(line: IrcMessage, tags: dict[str, str]) -> IrcMessage:
    return IrcMessage(line.command, line.params, line.source, {**tags, **line.tags})
