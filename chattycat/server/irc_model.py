"""What the IRC door remembers per connection: registration, commands in flight."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from chattycat.protocol.irc import IrcMessage
from chattycat.protocol.messages import Message

__all__ = ["UNREGISTERED", "Command", "IrcDoor", "IrcUser", "Pending", "Registration"]

# Session secrets an IRC door keeps for returning nicks (see IrcDoor.secrets).
MAX_REMEMBERED_SECRETS = 10_000
# The parameter a numeric names its recipient by before it has a nick.
UNREGISTERED = "*"


class Registration(Enum):
    """Where the connection is in IRC registration (then it is a ChattyCat session)."""

    REGISTERING = auto()  # collecting NICK, USER and CAP END
    HELLO_SENT = auto()  # waiting for welcome (or name_taken)
    ACTIVE = auto()


@dataclass(eq=False, slots=True)
class Command:
    """One IRC command being answered: its label, and lines held for the barrier."""

    name: str
    label: str | None = None
    lines: list[IrcMessage] = field(default_factory=list)  # replies, in order
    local: list[IrcMessage] = field(default_factory=list)  # answered by the session


@dataclass(eq=False, slots=True)
class Pending:
    """A request sent to the machine whose replies are still due."""

    kind: str  # "hello", "join", "names", "who", "list", "history", "say", "nick", ...
    command: Command
    target: str = ""  # the channel or nick the IRC command named
    # CHATHISTORY: the messages gathered so far (a history reply may come in
    # parts) and which of them the request asked for.
    gathered: list[Message] = field(default_factory=list)
    select: Callable[[list[Message]], list[Message]] | None = None




@dataclass(eq=False, slots=True)
class IrcUser:
    """What IRC says about a user that ChattyCat does not keep: USER's fields, AWAY."""

    username: str
    realname: str
    away: str | None = None


@dataclass(eq=False, slots=True)
class IrcDoor:
    """What every connection of one IRC door shares."""

    server_name: str
    host: str  # the host part of every nick!user@host
    # The canonical spelling of an online user's name, or None.
    online_name: Callable[[str], str | None]
    # The room the machine joins every new user to, which this door's users
    # leave at once (None: they stay, as every ChattyCat user does).
    leave_room: str | None = None
    # name_key -> USER fields and away message of this door's registered users
    users: dict[str, IrcUser] = field(default_factory=dict)
    # The wall clock, for TIME (injected, so that tests can fix it).
    clock: Callable[[], float] = time.time
    # How many users are signed in, through any door (LUSERS).
    count_users: Callable[[], int] = lambda: 0
    # name_key -> the session secret this door's last user of that name was
    # given. IRC has no resume, but the server keeps a name for its session a
    # while after a disconnect; with the secret, the same nick coming back
    # through this door gets it (never while someone holds the name).
    secrets: dict[str, str] = field(default_factory=dict)

    def remember(self, name: str, secret: str) -> None:
        """Keep ``name``'s session secret (the oldest are forgotten past a bound)."""
        self.secrets.pop(name.lower(), None)
        self.secrets[name.lower()] = secret
        while len(self.secrets) > MAX_REMEMBERED_SECRETS:
            del self.secrets[next(iter(self.secrets))]

    def secret_for(self, name: str) -> str | None:
        """The secret to say hello with as ``name``: only for a name nobody holds."""
        if self.online_name(name) is not None:
            return None  # never a way to take a connected user's place
        return self.secrets.get(name.lower())

    def lookup(self, name: str) -> tuple[str, IrcUser] | None:
        """An online user's name and IRC details (a native user's are its name)."""
        online = self.online_name(name)
        if online is None:
            return None
        found = self.users.get(online.lower())
        return online, found if found is not None else IrcUser(online, online)
