"""What a clustered machine asks of Redis, what Redis answers, and what other nodes did.

A node's :class:`~chattycat.server.cluster.state.ClusterState` does no I/O,
like the machine it extends. Whatever must be decided by the cluster as a
whole leaves it as an *op*, in the order the machine decided it:

- :class:`Claim` and :class:`Rename`: a name, unique across every node, taken
  atomically in Redis (with the session rules of PROTOCOL 7);
- :class:`Publish`: a ``say``, numbered by its room's stream, with the
  idempotence check in the same atomic step;
- :class:`SendWhisper`: a whisper, through the cluster-wide whisper-id window;
- :class:`Enter`, :class:`Leave`, :class:`SignOut`: membership changes of the
  node's own users, for every other node's rosters;
- :class:`Fetch`: a history read (rooms' messages live in Redis streams);
- :class:`Settle`: a wait before a request that reads the cluster's users
  and rooms (``hello``, ``join``, ``who``, ``rooms``), answered once the node
  has read the event stream as far as it reached when the op ran, so that
  the request sees whatever any node did before it.

The wiring (:mod:`chattycat.server.redis_store`) runs them in that order and
hands each answer back. What other nodes did comes in as a :data:`Remote`
event, read from the cluster's event stream in the order Redis wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chattycat.protocol.messages import Message, Whisper
from chattycat.server.effects import FOLLOW, Read, StoredAccount

__all__ = [
    "FOLLOW",
    "Claim",
    "ClaimMode",
    "Claimed",
    "Enter",
    "Fetch",
    "Leave",
    "Op",
    "Publish",
    "Remote",
    "RemoteAccount",
    "RemoteIn",
    "RemoteJoin",
    "RemoteMove",
    "RemoteNick",
    "RemoteOut",
    "RemotePart",
    "RemoteUser",
    "RemoteWhisper",
    "Rename",
    "SendWhisper",
    "Settle",
    "SignOut",
]

class ClaimMode:
    """How a :class:`Claim` may win a name that a session holds or keeps."""

    OPEN = "open"  # no account: the usual session rules
    ACCOUNT = "account"  # a registered name and no password: only its own session
    PROVEN = "proven"  # the account's password was checked: wins over any session


@dataclass(frozen=True, slots=True)
class Claim:
    """Sign ``name`` in on this node, if the cluster lets it have the name."""

    token: int
    key: str
    name: str
    hello_digest: str  # of the session the hello presented, or ""
    new_digest: str  # of the fresh secret to use if it does not resume one
    mode: str  # a ClaimMode
    color: str  # this node's choice for a newcomer (Redis decides: see scripts.pick_color)
    avoid: tuple[str, ...]  # colors the new room-mates have, as this node sees them
    ts: float
    rooms: tuple[str, ...] = ()  # joined in the same step, unless it is a takeover


@dataclass(frozen=True, slots=True)
class Claimed:
    """How a :class:`Claim` ended: ``outcome`` is fresh, resume, takeover, taken,
    reserved or auth (a registered name without its session or password)."""

    outcome: str
    color: str = ""
    digest: str = ""
    from_node: str = ""  # takeover: the node that held the user
    rooms: tuple[str, ...] = ()  # takeover: the user's rooms, as the cluster has them


@dataclass(frozen=True, slots=True)
class Rename:
    """Move the user ``old_key`` to ``name`` (a nick), if the cluster lets it."""

    token: int
    old_key: str
    key: str
    name: str
    digest: str
    owner: bool  # the user owns ``name``'s account: no session keeps it from them
    ts: float


@dataclass(frozen=True, slots=True)
class Publish:
    """Number ``message`` (its ``seq`` is ignored) in its room's stream, or find
    that ``session`` already sent its ``id`` there."""

    token: int
    message: Message
    session: str


@dataclass(frozen=True, slots=True)
class SendWhisper:
    """Deliver ``whisper`` to the user ``to_key``, on whatever node holds it,
    unless ``session`` already sent its ``id``."""

    token: int
    whisper: Whisper
    to_key: str
    session: str


@dataclass(frozen=True, slots=True)
class Enter:
    """This node's user ``key`` joined ``room``."""

    key: str
    room: str
    ts: float


@dataclass(frozen=True, slots=True)
class Leave:
    """This node's user ``key`` left ``room``."""

    key: str
    room: str
    reason: str


@dataclass(frozen=True, slots=True)
class SignOut:
    """This node's user ``key`` signed out; its session ``digest`` is parked."""

    key: str
    digest: str
    color: str
    reason: str
    ts: float


@dataclass(frozen=True, slots=True)
class Fetch:
    """A history read, run in its place among the ops."""

    read: Read


@dataclass(frozen=True, slots=True)
class Settle:
    """Answer read ``read`` once this node has read the event stream up to its end
    as it stands when this op runs.

    A node's replica of other nodes' users trails Redis by the events it has
    not read yet. A client who saw a user sign in (or join) on another node
    and then asks this node who is there (or joins, or signs in) must see
    that user: whatever it saw happened before this op ran, so its event is
    at or before that end.
    """

    read: int


Op = Claim | Rename | Publish | SendWhisper | Enter | Leave | SignOut | Fetch | Settle


# -- what other nodes did ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteIn:
    """``name`` signed in on ``node``, into ``rooms``."""

    node: str
    key: str
    name: str
    color: str
    rooms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteMove:
    """``node`` took the user ``key`` over (a hello with its session, or its password)."""

    node: str
    key: str
    name: str
    color: str
    rooms: tuple[str, ...] = ()  # its rooms then (the old node's later joins were refused)


@dataclass(frozen=True, slots=True)
class RemoteJoin:
    node: str
    key: str
    room: str
    ts: float


@dataclass(frozen=True, slots=True)
class RemotePart:
    node: str
    key: str
    room: str
    reason: str


@dataclass(frozen=True, slots=True)
class RemoteOut:
    """The user ``key`` of ``node`` signed out (or its node died)."""

    node: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class RemoteNick:
    node: str
    old_key: str
    name: str
    color: str


@dataclass(frozen=True, slots=True)
class RemoteWhisper:
    """A whisper for ``to_key``, a user of ``to_node``."""

    node: str
    to_key: str
    to_node: str
    whisper: Whisper


@dataclass(frozen=True, slots=True)
class RemoteAccount:
    """An account was registered on ``node``."""

    node: str
    account: StoredAccount


Remote = (RemoteIn | RemoteMove | RemoteJoin | RemotePart | RemoteOut | RemoteNick
          | RemoteWhisper | RemoteAccount)


@dataclass(frozen=True, slots=True)
class RemoteUser:
    """A signed-in user as a snapshot of the cluster lists it."""

    key: str
    name: str
    color: str
    node: str
    rooms: tuple[str, ...]
