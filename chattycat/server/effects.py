"""What the room state machine asks of the world, and what the world tells it back.

:class:`~chattycat.server.state.ChatState` does no I/O. Everything it wants
done leaves it as one of these small frozen values:

- output: :class:`Send` a frame to connections, :class:`Close` a connection;
- writes: :class:`Append` a message, :class:`SaveSession`, :class:`DropSession`,
  gathered into a :class:`WriteBatch`, the unit of commit;
- reads: :class:`LoadHistory` and :class:`LoadIds`, each with a ``read`` number
  that the answer (``ChatState.loaded``) names;
- password work: :class:`HashPassword` and :class:`VerifyPassword`, answered
  through ``ChatState.password_hashed`` / ``password_checked``. The key
  derivation is slow on purpose, so it is an effect like a read: the wiring
  runs it off the loop and hands the answer back.

The wiring carries them out with whatever store it has and feeds the outcome
back as inputs (``committed``, ``commit_failed``, ``loaded``, ``load_failed``),
in the same loop pass or any later one. Time comes in the same way, as a
:class:`Now` holding both clocks the machine needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from chattycat.protocol.messages import Frame, Message

__all__ = [
    "FOLLOW",
    "Append",
    "Close",
    "DropAccount",
    "DropSession",
    "Effect",
    "HashPassword",
    "LoadHistory",
    "LoadIds",
    "Now",
    "Page",
    "PasswordJob",
    "Read",
    "SaveAccount",
    "SaveSession",
    "Send",
    "StoreWork",
    "StoredAccount",
    "StoredSession",
    "StoredState",
    "VerifyPassword",
    "Write",
    "WriteBatch",
]

ConnId = int


@dataclass(frozen=True, slots=True)
class Now:
    """One instant on two clocks.

    ``mono`` (monotonic seconds) measures deadlines: handshake, heartbeat, flood
    control; it never jumps when the system clock is set. ``wall`` (Unix
    seconds) stamps what users see and what outlives the process: message
    ``ts`` and session expiry.
    """

    mono: float
    wall: float


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``frame`` to each of ``conns`` (one frame object, encoded once)."""

    conns: tuple[ConnId, ...]
    frame: Frame


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``conn`` after flushing what was sent to it before."""

    conn: ConnId


Effect = Send | Close


# -- writes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A user's session as kept across restarts: a digest of its secret, never the secret."""

    name_key: str
    digest: str
    color: str
    active: bool  # connected when last written (False: parked since seen_at)
    seen_at: float


@dataclass(frozen=True, slots=True)
class Append:
    """Store ``message`` as number ``message.seq`` of ``message.room``.

    ``session`` is the digest of its sender's session: idempotence windows
    belong to sessions (PROTOCOL section 5), so the ids are kept by it.
    """

    message: Message
    session: str | None = None


@dataclass(frozen=True, slots=True)
class SaveSession:
    """Create or replace the stored session of ``session.name_key``."""

    session: StoredSession


@dataclass(frozen=True, slots=True)
class DropSession:
    """Forget the stored session of ``name_key``."""

    name_key: str


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """A registered name (PROTOCOL 10): its password as a salted KDF record, never in clear."""

    name_key: str
    name: str  # as registered, for listing
    record: str = field(repr=False)  # see chattycat.server.passwords
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SaveAccount:
    """Create or replace the account of ``account.name_key``."""

    account: StoredAccount


@dataclass(frozen=True, slots=True)
class DropAccount:
    """Forget the account of ``name_key``."""

    name_key: str


Write = Append | SaveSession | DropSession | SaveAccount | DropAccount


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Writes that become durable together or not at all, in this order."""

    id: int
    writes: tuple[Write, ...]

    @property
    def messages(self) -> list[Message]:
        """The messages this batch appends."""
        return [w.message for w in self.writes if isinstance(w, Append)]


# -- reads ----------------------------------------------------------------------


class Page(Enum):
    """Which stored messages of a room a :class:`LoadHistory` asks for (oldest first)."""

    LATEST = "latest"  # the `limit` most recent
    RESUME = "resume"  # above `seq`: the most recent `limit`, and whether some were left out
    AFTER = "after"  # the first `limit` above `seq` (paging forward)
    BEFORE = "before"  # the `limit` just below `seq` (paging back)


@dataclass(frozen=True, slots=True)
class LoadHistory:
    """Read stored messages of ``room``, never any above ``up_to``.

    ``up_to`` is the room's last seq when the machine asked: a message
    numbered later reaches the asker live, so the answer must not hold it too.
    """

    read: int
    room: str
    page: Page
    seq: int
    limit: int
    up_to: int  # FOLLOW: a cluster node that does not follow the room yet; see there


#: ``LoadHistory.up_to`` on a cluster node that does not follow the room's
#: stream yet: read up to the room's newest message, and follow it from there.
FOLLOW = -1


@dataclass(frozen=True, slots=True)
class LoadIds:
    """Read the last ``limit`` messages with a client id that ``session`` stored in ``room``."""

    read: int
    session: str
    room: str
    limit: int


Read = LoadHistory | LoadIds


# -- password work --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HashPassword:
    """Derive a stored record from ``password``; answered by ``password_hashed(job, record)``."""

    job: int
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class VerifyPassword:
    """Check ``password`` against ``record``; answered by ``password_checked(job, ok)``."""

    job: int
    password: str = field(repr=False)
    record: str = field(repr=False)


PasswordJob = HashPassword | VerifyPassword


@dataclass(frozen=True, slots=True)
class StoreWork:
    """What the wiring hands the store at the end of a pass: a batch first, then reads."""

    batch: WriteBatch | None = None
    reads: tuple[Read, ...] = ()

    def __bool__(self) -> bool:
        return self.batch is not None or bool(self.reads)


@dataclass(frozen=True, slots=True)
class StoredState:
    """What a store holds that the machine needs at start: counters, sessions, accounts."""

    last_seqs: dict[str, int] = field(default_factory=dict)
    sessions: tuple[StoredSession, ...] = ()
    accounts: tuple[StoredAccount, ...] = ()
