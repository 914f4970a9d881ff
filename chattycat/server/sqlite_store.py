"""The SQLite history store: one file, WAL, one transaction per batch.

A :class:`~chattycat.server.effects.WriteBatch` (every message and session
write of one loop pass) is one ``BEGIN IMMEDIATE ... COMMIT``, so a busy pass
costs one commit rather than one per message, and the state machine releases
the acknowledgements only after it. A failed write (disk full, I/O error)
rolls the whole batch back and is reported as a
:class:`~chattycat.errors.StoreError`; none of its messages was acknowledged.

Every call completes before it returns: SQLite on a local file answers in
microseconds, and the loop pays that once per pass.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import sqlite3
from collections.abc import Callable
from typing import Any

from chattycat.errors import StoreError
from chattycat.protocol.messages import Message, name_key
from chattycat.server.effects import Append, StoredAccount, StoredSession, WriteBatch
from chattycat.server.store import SyncStore

log = logging.getLogger("chattycat.server.sqlite_store")

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 5
BUSY_TIMEOUT_S = 5.0
# How much of a session digest a stored message keeps (see _lighter_inserts_v5).
SESSION_KEY_CHARS = 16
# Log pages between checkpoints (SQLite's default; see _configure).
WAL_CHECKPOINT_PAGES = 1_000
MEMORY = ":memory:"

_COLUMNS = "room, seq, sender, color, text, ts, client_id, action"
_INSERT_MESSAGE = (f"INSERT INTO messages ({_COLUMNS}, sender_key, session)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPSERT_COUNTER = ("INSERT INTO rooms (room, last_seq) VALUES (?, ?)"
                   " ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq")
_Row = tuple[str, int, str, str, str, float, str | None, int]


def _create_v1(conn: sqlite3.Connection) -> None:
    # WITHOUT ROWID: the (room, seq) key is how every query reads, so the rows
    # are stored in that order and a history page is one contiguous range.
    conn.execute(
        "CREATE TABLE messages (room TEXT NOT NULL, seq INTEGER NOT NULL,"
        " sender TEXT NOT NULL, sender_key TEXT NOT NULL, color TEXT NOT NULL,"
        " text TEXT NOT NULL, ts REAL NOT NULL, client_id TEXT,"
        " action INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (room, seq)) WITHOUT ROWID"
    )
    # Partial: only messages with a client id take part in idempotence.
    conn.execute(
        "CREATE INDEX messages_by_sender ON messages (sender_key, room, seq)"
        " WHERE client_id IS NOT NULL"
    )
    conn.execute("CREATE INDEX messages_by_ts ON messages (ts)")
    # The counter lives apart from the messages so that pruning a room empty
    # never lets its numbering start again at 1 (PROTOCOL section 5).
    conn.execute("CREATE TABLE rooms (room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL)")


def _add_sessions_v2(conn: sqlite3.Connection) -> None:
    # Sessions outlive a restart so that clients resume with the same secret.
    conn.execute(
        "CREATE TABLE sessions (name_key TEXT PRIMARY KEY, digest TEXT NOT NULL,"
        " color TEXT NOT NULL, active INTEGER NOT NULL, seen_at REAL NOT NULL)"
    )


def _ids_by_session_v3(conn: sqlite3.Connection) -> None:
    # Idempotence windows belong to sessions, not names (PROTOCOL section 5):
    # whoever takes a free name must not inherit its previous holder's ids.
    conn.execute("ALTER TABLE messages ADD COLUMN session TEXT")
    # Messages written before this version get the session their sender's
    # name holds now, so clients resuming across the upgrade keep their window.
    conn.execute(
        "UPDATE messages SET session = (SELECT digest FROM sessions"
        " WHERE sessions.name_key = messages.sender_key) WHERE client_id IS NOT NULL"
    )
    conn.execute("DROP INDEX messages_by_sender")
    conn.execute(
        "CREATE INDEX messages_by_session ON messages (session, room, seq)"
        " WHERE client_id IS NOT NULL"
    )


def _add_accounts_v4(conn: sqlite3.Connection) -> None:
    # Registered names (PROTOCOL 10). `record` is a salted scrypt record with
    # its parameters (chattycat.server.passwords), never the password.
    conn.execute(
        "CREATE TABLE accounts (name_key TEXT PRIMARY KEY, name TEXT NOT NULL,"
        " record TEXT NOT NULL, created_at REAL NOT NULL)"
    )


def _lighter_inserts_v5(conn: sqlite3.Connection) -> None:
    # Two costs of every insert that a busy server paid for little (measured:
    # docs/performance.md). The index by time served only the hourly prune,
    # which now finds each room's cut by seq (messages are numbered in time
    # order). And the idempotence index held 64-character session digests; a
    # message now keeps the first 16 hex digits (64 bits) of its sender's
    # session digest, plenty to tell one session's ids from another's.
    conn.execute("DROP INDEX IF EXISTS messages_by_ts")
    conn.execute(
        "UPDATE messages SET session = substr(session, 1, ?) WHERE session IS NOT NULL",
        (SESSION_KEY_CHARS,),
    )


# MIGRATIONS[v] turns a schema of version v - 1 into version v.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create_v1,
    2: _add_sessions_v2,
    3: _ids_by_session_v3,
    4: _add_accounts_v4,
    5: _lighter_inserts_v5,
}


_NOT_WRITABLE = "not writable (check the permissions of the file and its directory)"
_IN_USE = "in use by another process (is another server running?)"


def _reason(exc: sqlite3.Error) -> str:
    # Errors raised by the sqlite3 module itself (not by SQLite) carry no code.
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # primary of an extended code
    reasons = {
        sqlite3.SQLITE_NOTADB: "file is not a database",
        sqlite3.SQLITE_CORRUPT: "file is corrupt",
        sqlite3.SQLITE_BUSY: _IN_USE,
        sqlite3.SQLITE_LOCKED: _IN_USE,
        sqlite3.SQLITE_CANTOPEN: "cannot open or create it (check the directory's permissions)",
        sqlite3.SQLITE_READONLY: _NOT_WRITABLE,
        sqlite3.SQLITE_PERM: _NOT_WRITABLE,
        sqlite3.SQLITE_FULL: "disk full",
    }
    return reasons.get(code, str(exc))


def _message(row: _Row) -> Message:
    room, seq, sender, color, text, ts, client_id, action = row
    return Message(room, seq, sender, color, text, ts, client_id, bool(action))


class SQLiteStore(SyncStore):
    """Message history in one SQLite file (or ``:memory:``)."""

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        self.path = os.fspath(path)
        self._last_seq: dict[str, int] = {}
        self._pending = 0
        self._closed = False
        self._conn = self._connect(busy_timeout_s)
        try:
            self._configure()
            self._migrate()
            self._repair_counters()
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._error("cannot open", exc) from exc
        except StoreError:
            self._conn.close()
            raise

    def _error(self, what: str, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"{what} history file {self.path}: {_reason(exc)}")

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        if self.path != MEMORY:
            try:
                pathlib.Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise StoreError(f"cannot create the directory of history file {self.path}: "
                                 "a parent is not a directory") from exc
            except OSError as exc:
                why = exc.strerror or str(exc)
                raise StoreError(f"cannot create the directory of history file {self.path}: "
                                 f"{why}") from exc
            # SQLite opens such a file read-only and then fails to lock it,
            # which it reports as a baffling "disk I/O error".
            if os.path.exists(self.path) and not os.access(self.path, os.W_OK):
                raise StoreError(f"cannot open history file {self.path}: {_NOT_WRITABLE}")
        try:
            # Autocommit mode: the module's implicit BEGINs would hide where a
            # transaction starts, and group commit needs that to be explicit.
            return sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error("cannot open", exc) from exc

    def _configure(self) -> None:
        if self.path != MEMORY:
            # Exclusive locking, set before WAL: two servers on one file would
            # hand out the same seq numbers, so the second one must fail to
            # open; it also lets WAL work without a shared-memory file.
            self._conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a crash of this process but
            # the last ones may be lost on power loss; FULL would fsync each.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # A checkpoint copies the log back into the file and syncs both, on
            # the loop. SQLite's 1,000 pages, deliberately: every 10,000 gave a
            # saturated server 10-15 % more messages, but each checkpoint then
            # held the loop for ~30 ms, and p99 latency at half load went from
            # 7 to 30 ms (measured: docs/performance.md, scenario F).
            self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        # quick_check reads every page, so a damaged file is refused at start
        # rather than failing on some later history request.
        check: list[tuple[str]] = self._conn.execute("PRAGMA quick_check(1)").fetchall()
        if check != [("ok",)]:
            lines = [line for line in check[0][0].splitlines() if "***" not in line]
            problem = lines[0] if lines else check[0][0]
            raise StoreError(f"history file {self.path} is corrupt ({problem})")

    def _migrate(self) -> None:
        # IMMEDIATE takes the write lock now, so a file in use fails here, at open.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            version: int = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"history file {self.path} was written by a newer ChattyCat "
                    f"(schema version {version}; this version knows up to {SCHEMA_VERSION})"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](self._conn)
            # PRAGMA takes no parameters; the value is our own integer.
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # keep the first error, not this one
                self._conn.execute("ROLLBACK")
            raise

    def _repair_counters(self) -> None:
        # A counter behind its room's messages (an edited or half-restored
        # file) would make every new message collide with a stored seq and be
        # refused forever; the messages are the truth, so the counter catches up.
        behind: list[tuple[str, int, int | None]] = self._conn.execute(
            "SELECT m.room, MAX(m.seq), r.last_seq FROM messages m"
            " LEFT JOIN rooms r ON r.room = m.room GROUP BY m.room"
            " HAVING r.last_seq IS NULL OR MAX(m.seq) > r.last_seq").fetchall()
        if not behind:
            return
        self._conn.executemany(  # autocommit: each row is its own small transaction
            "INSERT INTO rooms (room, last_seq) VALUES (?, ?)"
            " ON CONFLICT (room) DO UPDATE SET last_seq = excluded.last_seq",
            [(room, top) for room, top, _stored in behind])
        for room, top, stored in behind:
            log.warning("history file %s: room %s counted up to %s but holds messages up to"
                        " %d; counter repaired", self.path, room, stored or 0, top)

    def last_seq(self, room: str) -> int:
        """The highest seq ever stored in ``room`` (0 for a room never written)."""
        cached = self._last_seq.get(room)
        if cached is None:
            row = self._conn.execute(
                "SELECT last_seq FROM rooms WHERE room = ?", (room,)
            ).fetchone()
            cached = self._last_seq[room] = row[0] if row else 0
        return cached

    def add(self, message: Message, session: str | None = None) -> None:
        """Put ``message`` (sent by ``session``) into the open transaction, until commit."""
        expected = self.last_seq(message.room) + 1
        if message.seq != expected:
            raise ValueError(f"room {message.room}: seq {message.seq} added, {expected} expected")
        m = message
        self._write(_INSERT_MESSAGE, (m.room, m.seq, m.sender, m.color, m.text, m.ts, m.id,
                                      int(m.action), name_key(m.sender), _session_key(session)))
        self._write(_UPSERT_COUNTER, (m.room, m.seq))
        self._last_seq[m.room] = m.seq
        self._pending += 1

    def apply(self, batch: WriteBatch) -> None:
        """Write and commit ``batch`` in one transaction, its messages in bulk.

        Per message the wiring's group commit already saves a transaction;
        this saves the statement calls too: one ``executemany`` for the
        batch's messages and one counter update per room, not two statements
        per message (the difference is most of the store's share of a busy
        server's time).
        """
        rows: list[tuple[object, ...]] = []
        tops: dict[str, int] = {}
        for write in batch.writes:
            if isinstance(write, Append):
                m = write.message
                expected = tops.get(m.room, self.last_seq(m.room)) + 1
                if m.seq != expected:
                    raise ValueError(f"room {m.room}: seq {m.seq} added, {expected} expected")
                rows.append((m.room, m.seq, m.sender, m.color, m.text, m.ts, m.id,
                             int(m.action), name_key(m.sender),
                             _session_key(write.session)))
                tops[m.room] = m.seq
        if rows:
            self._write_many(_INSERT_MESSAGE, rows)
            self._write_many(_UPSERT_COUNTER, list(tops.items()))
        for write in batch.writes:
            if not isinstance(write, Append):
                self.apply_write(write)
        self._last_seq.update(tops)
        self._pending += len(rows)
        self.commit()

    def _write_many(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        try:
            if not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._rollback("cannot write", exc) from exc

    def _write(
        self, sql: str, params: tuple[object, ...], what: str = "cannot write"
    ) -> sqlite3.Cursor:
        """Run one statement in the open transaction (opening it if need be)."""
        try:
            if not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._rollback(what, exc) from exc

    def _rollback(self, what: str, exc: sqlite3.Error) -> StoreError:
        lost, self._pending = self._pending, 0
        # The cached counters may count rows that are gone now; reread them.
        self._last_seq.clear()
        # After an I/O error SQLite may have rolled back already; `exc` says why.
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
        error = self._error(what, exc)
        if lost:
            error.add_note(f"{lost} message(s) added since the last commit were not stored")
        return error

    def commit(self) -> None:
        """Make every message added since the last commit durable, in one transaction."""
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._rollback("cannot write", exc) from exc
        self._pending = 0

    def _select(self, where: str, order: str, params: tuple[object, ...]) -> list[Message]:
        # `where` and `order` are fixed strings of this module, never user input.
        try:
            rows: list[_Row] = self._conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY seq {order} LIMIT ?",
                params,
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc
        messages = [_message(row) for row in rows]
        if order == "DESC":
            messages.reverse()
        return messages

    def latest(self, room: str, limit: int) -> list[Message]:
        """The ``limit`` most recent messages of ``room``, oldest first."""
        return self._select("room = ?", "DESC", (room, limit))

    def after(self, room: str, seq: int, limit: int) -> tuple[list[Message], bool]:
        """Messages above ``seq``: the most recent ``limit`` and whether some were left out."""
        # One extra row tells whether more than `limit` exist without a COUNT.
        messages = self._select("room = ? AND seq > ?", "DESC", (room, seq, limit + 1))
        if len(messages) > limit:
            return messages[len(messages) - limit:], True
        return messages, False

    def page_after(self, room: str, seq: int, limit: int) -> list[Message]:
        """The first ``limit`` messages above ``seq``, oldest first (paging forward)."""
        return self._select("room = ? AND seq > ?", "ASC", (room, seq, limit))

    def before(self, room: str, seq: int, limit: int) -> list[Message]:
        """The ``limit`` messages just below ``seq``, oldest first (paging back)."""
        return self._select("room = ? AND seq < ?", "DESC", (room, seq, limit))

    def has_room(self, room: str) -> bool:
        """Whether ``room`` has any stored message."""
        row = self._conn.execute("SELECT 1 FROM messages WHERE room = ? LIMIT 1", (room,))
        return row.fetchone() is not None

    def recent_ids(self, session: str, room: str, limit: int) -> list[Message]:
        """The last ``limit`` messages with an id that ``session`` sent to ``room``."""
        return self._select(
            "session = ? AND room = ? AND client_id IS NOT NULL", "DESC",
            (_session_key(session), room, limit),
        )

    def delete_older(self, older_than_ts: float) -> int:
        """Delete messages older than ``older_than_ts``, in a transaction of its own.

        There is no index by time (every insert would pay for it). Messages are
        numbered in time order, so each room's cut is its first message at
        least that new, found by reading the room in seq order from its oldest
        message: exactly the rows about to be deleted. Below the cut only
        messages older than the cutoff go, so a clock that was set back never
        costs a newer message.
        """
        deleted = 0
        for room in self._rooms_with_messages():
            found = self._read("SELECT seq FROM messages WHERE room = ? AND ts >= ?"
                               " ORDER BY seq LIMIT 1", (room, older_than_ts))
            # Past every message when none is that new: the whole room goes.
            cut = found[0][0] if found else 2**62
            deleted += self._write(
                "DELETE FROM messages WHERE room = ? AND seq < ? AND ts < ?",
                (room, cut, older_than_ts), what="cannot prune").rowcount
        self.commit()
        return deleted

    def _rooms_with_messages(self) -> list[str]:
        return [room for (room,) in self._read("SELECT room FROM rooms", ())]

    def _read(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc

    def messages_between(self, room: str, above: int, up_to: int, limit: int,
                         newest: bool) -> list[Message]:
        """At most ``limit`` messages with ``above < seq <= up_to``, oldest first."""
        return self._select("room = ? AND seq > ? AND seq <= ?", "DESC" if newest else "ASC",
                            (room, above, up_to, limit))

    def last_seqs(self) -> dict[str, int]:
        """Every room's counter, as stored."""
        try:
            rows: list[tuple[str, int]] = self._conn.execute(
                "SELECT room, last_seq FROM rooms").fetchall()
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc
        return dict(rows)

    def save_session(self, session: StoredSession) -> None:
        """Create or replace a user's session, in the open transaction."""
        self._write(
            "INSERT INTO sessions (name_key, digest, color, active, seen_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name_key) DO UPDATE SET"
            " digest = excluded.digest, color = excluded.color, active = excluded.active,"
            " seen_at = excluded.seen_at",
            (session.name_key, session.digest, session.color, int(session.active),
             session.seen_at),
        )

    def drop_session(self, name_key: str) -> None:
        """Forget a user's session, in the open transaction."""
        self._write("DELETE FROM sessions WHERE name_key = ?", (name_key,))

    def sessions(self) -> list[StoredSession]:
        """Every stored session."""
        try:
            rows = self._conn.execute(
                "SELECT name_key, digest, color, active, seen_at FROM sessions"
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc
        return [StoredSession(k, d, c, bool(a), t) for k, d, c, a, t in rows]

    def save_account(self, account: StoredAccount) -> None:
        """Create or replace an account, in the open transaction."""
        self._write(
            "INSERT INTO accounts (name_key, name, record, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name_key) DO UPDATE SET name = excluded.name,"
            " record = excluded.record, created_at = excluded.created_at",
            (account.name_key, account.name, account.record, account.created_at),
        )

    def drop_account(self, name_key: str) -> None:
        """Forget an account, in the open transaction."""
        self._write("DELETE FROM accounts WHERE name_key = ?", (name_key,))

    def accounts(self) -> list[StoredAccount]:
        """Every account, by name."""
        try:
            rows = self._conn.execute(
                "SELECT name_key, name, record, created_at FROM accounts ORDER BY name_key"
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc
        return [StoredAccount(k, n, r, t) for k, n, r, t in rows]

    def close(self) -> None:
        """Commit what is pending and close the file."""
        if self._closed:
            return
        self._closed = True
        try:
            self.commit()
        finally:
            self._conn.close()


def _session_key(digest: str | None) -> str | None:
    """What a stored message keeps of its sender's session digest."""
    return None if digest is None else digest[:SESSION_KEY_CHARS]
