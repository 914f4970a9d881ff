"""Signing in: hello, takeovers, accounts, the server password and register (PROTOCOL 3, 7, 10).

:class:`SignIn` is the part of :class:`~chattycat.server.state.ChatState`
that decides who gets a name, kept in a module of its own. It is a mixin:
it uses the machine's parts (directory, sessions, ledger, output) declared
below, and the machine's helpers named under ``TYPE_CHECKING``.

A hello ends in ``welcome`` or in an error, and nothing is broadcast for one
that does not end in ``welcome``. A registered name needs its password (or
its owner's session); checking a password is slow on purpose, so it leaves
as an effect (:class:`~chattycat.server.effects.VerifyPassword`) and the
hello waits, like a request waiting for the store, until the wiring answers
(:meth:`SignIn.password_checked`). A refusal is held back per address
(:mod:`.accounts`) and released by ``tick``.
"""

from __future__ import annotations

from collections.abc import Mapping
from hmac import compare_digest
from typing import TYPE_CHECKING, Any

from chattycat.errors import ErrorCode, ProtocolError
from chattycat.protocol.messages import (
    PROTOCOL_VERSION,
    Hello,
    Register,
    Registered,
    Request,
    Welcome,
    name_key,
)
from chattycat.server.accounts import Accounts, HeldReply, PasswordWait
from chattycat.server.colors import pick_color
from chattycat.server.directory import Directory
from chattycat.server.effects import (
    ConnId,
    Effect,
    HashPassword,
    Now,
    PasswordJob,
    SaveAccount,
    StoredAccount,
    VerifyPassword,
)
from chattycat.server.ledger import Ledger
from chattycat.server.messaging import Messaging
from chattycat.server.model import Connection, ConnState, RoomsConfig, User
from chattycat.server.output import OutputQueue
from chattycat.server.passwords import dummy_record
from chattycat.server.sessions import SessionBook, new_secret

__all__ = ["SignIn"]


def _error(code: ErrorCode, message: str) -> ProtocolError:
    return ProtocolError(code, message)


class SignIn:
    """Who may have which name: the machine's hello, nick and register rules."""

    config: RoomsConfig
    _conns: dict[ConnId, Connection]
    _out: OutputQueue
    _ledger: Ledger
    _directory: Directory
    _sessions: SessionBook
    _messaging: Messaging
    _accounts: Accounts
    # Connections welcomed since the wiring last looked (take_welcomed).
    welcomed: list[ConnId]

    if TYPE_CHECKING:
        def _reply_error(self, conn: Connection, exc: ProtocolError,
                         request_id: str | None) -> None: ...
        def _drain_parked(self, conn: Connection) -> None: ...
        def _flush(self) -> list[Effect]: ...
        def _send_room_state(self, conn: Connection, room: str,
                             resume: Mapping[str, int] | None, ref: Any) -> None: ...

    def take_welcomed(self) -> list[ConnId]:
        """Connections that got ``welcome`` since the last call (in this input or a
        later one: a password check or a cluster's name claim answers later)."""
        welcomed, self.welcomed = self.welcomed, []
        return welcomed

    # -- inputs: password work -------------------------------------------------

    def take_password_work(self) -> list[PasswordJob]:
        """Key derivations to run off the loop; answer each with the two inputs below."""
        return self._accounts.take_jobs()

    def password_checked(self, job: int, ok: bool, now: Now) -> list[Effect]:
        """The wiring verified the password of ``job``."""
        wait = self._accounts.answered(job)
        conn = self._resumable(wait, job)
        if wait is None or conn is None or not isinstance(wait.request, Hello):
            return self._flush()
        hello = wait.request
        if ok and not wait.doomed:
            try:
                self._admit(conn, hello, now, proven=True)
            except ProtocolError as exc:
                self._reply_error(conn, exc.with_ref(hello.ref), None)
        else:
            self._auth_failed(conn, hello, now)
        self._drain_parked(conn)
        return self._flush()

    def password_hashed(self, job: int, record: str, now: Now) -> list[Effect]:
        """The wiring derived the record asked for by ``job`` ("" if it could not)."""
        wait = self._accounts.answered(job)
        conn = self._resumable(wait, job)
        if wait is None or conn is None or conn.user is None:
            return self._flush()
        try:
            self._registered(conn, conn.user, wait.request, record, now)
        except ProtocolError as exc:
            self._reply_error(conn, exc.with_ref(wait.request.ref), None)
        self._drain_parked(conn)
        return self._flush()

    def _resumable(self, wait: PasswordWait | None, job: int) -> Connection | None:
        conn = self._conns.get(wait.conn) if wait is not None else None
        if conn is None or conn.state is ConnState.CLOSED or conn.waiting != job:
            return None
        conn.waiting = None
        return conn


    # -- hello ----------------------------------------------------------------

    def _hello(self, conn: Connection, hello: Hello, now: Now) -> None:
        # Every check comes before the first effect: a hello that does not end
        # in welcome leaves no trace (no joined, no parted, no session).
        if not self._hello_checked(conn, hello, now):
            return
        key = name_key(hello.name)
        holder = self._directory.user(key)
        if holder is not None and self._session_matches(hello, holder.session):
            self._take_over(conn, holder, hello, now)
            return
        account = self._accounts.get(key)
        if account is None and not self._accounts.required:
            self._admit(conn, hello, now, proven=False)
        elif account is not None and self._sessions.holds(key, hello.session):
            self._admit(conn, hello, now, proven=False)  # its own session proves it
        elif hello.password is None:
            self._auth_failed(conn, hello, now)
        else:
            self._verify(conn, hello, account)

    def _hello_checked(self, conn: Connection, hello: Hello, now: Now) -> bool:
        """The checks every hello passes first, whoever decides the name; False: refused."""
        if hello.protocol != PROTOCOL_VERSION:
            raise _error(ErrorCode.UNSUPPORTED_PROTOCOL, "this server speaks protocol 1")
        named = len(hello.resume or ())
        if named > self.config.max_rooms_per_user:
            raise _error(ErrorCode.BAD_REQUEST,
                         f"resume names {named} rooms; this server allows "
                         f"{self.config.max_rooms_per_user} per user")
        # A resume joins every room it names: it costs what as many joins would.
        conn.bucket.charge(max(0, named - 1), now.mono)
        if not self._accounts.server_password_ok(hello.server_password):
            self._auth_failed(conn, hello, now, "wrong or missing server password")
            return False
        return True

    def _verify(self, conn: Connection, hello: Hello, account: StoredAccount | None) -> None:
        assert hello.password is not None
        if not self._accounts.can_ask(conn.address):
            raise _error(ErrorCode.RATE_LIMITED, "too many sign-ins in progress; try again")
        record = account.record if account is not None else dummy_record()
        job = VerifyPassword(self._ledger.next_read(), hello.password, record)
        conn.waiting = job.job
        self._accounts.ask(job, PasswordWait(conn.id, hello, conn.address,
                                             doomed=account is None))

    def _admit(self, conn: Connection, hello: Hello, now: Now, *, proven: bool) -> None:
        """Give ``hello`` its name: ``proven`` by the account's password, or by nothing."""
        key = name_key(hello.name)
        holder = self._directory.user(key)
        if holder is not None:
            if proven:  # the owner signing in elsewhere: as good as its session
                self._take_over(conn, holder, hello, now)
                return
            raise _error(ErrorCode.NAME_TAKEN, f"the name {hello.name} is taken")
        if not proven and self._sessions.reserved(key, hello.session, now.wall):
            raise _error(ErrorCode.NAME_TAKEN,
                         f"the name {hello.name} is kept for its session for a while")
        parked, over = self._sessions.claim(key, hello.session)
        self._messaging.session_over(over)  # a session nobody can resume any more
        rooms = list(hello.resume or ()) or [self.config.default_room]
        neighbours = self._directory.colors_in(rooms)
        if parked is not None and hello.session is not None:
            session = hello.session
        else:
            session = new_secret()
        if parked is not None and parked.color not in neighbours:
            color = parked.color  # a returning user keeps its color when nobody near has it
        else:
            color = pick_color(neighbours, (u.color for u in self._directory.users()))
        user = User(hello.name, color, session, conn.id)
        user.account = key if self._accounts.get(key) is not None else None
        self._directory.add(user)
        self._sessions.opened(key, session, color, now.wall)
        self._activate(conn, user, hello)
        for room in rooms:
            self._directory.enter(user, room, round(now.wall, 3))
            self._send_room_state(conn, room, hello.resume, ref=hello.ref)

    def _auth_failed(self, conn: Connection, hello: Hello, now: Now, text: str = "") -> None:
        """Refuse ``hello``, the same way whatever was wrong, held back per address."""
        if not text:
            text = "wrong name or password"
            if self._accounts.required:
                text += ("; accounts on this server are added by the operator"
                         " (chattycat accounts add)")
        error = _error(ErrorCode.AUTH_FAILED, text).with_ref(hello.ref)
        delay = self._accounts.failed(conn.address, now.mono)
        conn.waiting = self._ledger.next_read()
        self._accounts.hold(HeldReply(now.mono + delay, conn.id, conn.waiting, error))

    def _release_held(self, held: HeldReply) -> None:
        conn = self._conns.get(held.conn)
        if conn is None or conn.state is ConnState.CLOSED or conn.waiting != held.wait:
            return
        conn.waiting = None
        self._reply_error(conn, held.error, None)
        self._drain_parked(conn)

    def _take_over(self, conn: Connection, user: User, hello: Hello, now: Now) -> None:
        self._replace_connection(user.conn)
        self._directory.move(user, conn.id)
        self._activate(conn, user, hello)
        wanted = list(hello.resume or ()) or list(user.rooms)
        for room in [r for r in user.rooms if r not in wanted]:
            self._directory.leave(user, room, "part", include_self=True)
        for room in wanted:
            if room not in user.rooms:
                self._directory.enter(user, room, round(now.wall, 3))
            self._send_room_state(conn, room, hello.resume, ref=hello.ref)

    def _replace_connection(self, conn_id: ConnId) -> None:
        """``conn_id``'s user signed in elsewhere: tell it why and close it.

        Nothing is announced: the user goes on, on another connection.
        """
        old = self._conns.get(conn_id)
        if old is None or old.state is ConnState.CLOSED:
            return
        self._reply_error(old, _error(ErrorCode.REPLACED, "you signed in elsewhere"), None)
        self._out.close(old.id)
        old.state, old.user = ConnState.CLOSED, None
        old.parked.clear()

    def _activate(self, conn: Connection, user: User, hello: Hello) -> None:
        conn.state, conn.user = ConnState.ACTIVE, user
        self.welcomed.append(conn.id)
        heartbeat = self.config.heartbeat_s
        welcome = Welcome(
            user.name, user.color, user.session, self.config.server_name, self.config.max_frame,
            int(heartbeat) if heartbeat == int(heartbeat) else heartbeat, ref=hello.ref,
        )
        self._out.send((conn.id,), welcome)

    @staticmethod
    def _session_matches(hello: Hello, session: str) -> bool:
        return hello.session is not None and compare_digest(hello.session, session)


    # -- nick and register ------------------------------------------------------

    def _check_nick(self, user: User, name: str, key: str, now: Now) -> None:
        self._check_name_free(user, name, key)
        account = self._accounts.get(key)
        if account is None and self._sessions.reserved(key, user.session, now.wall):
            raise _error(ErrorCode.NAME_TAKEN, f"the name {name} is kept for its session")

    def _check_name_free(self, user: User, name: str, key: str) -> None:
        """Refuse ``name`` for ``user`` if someone here holds it or it is another's account."""
        if self._directory.user(key) is not None:
            raise _error(ErrorCode.NAME_TAKEN, f"the name {name} is taken")
        account = self._accounts.get(key)
        if account is not None and user.account != key:
            raise _error(ErrorCode.NAME_TAKEN, f"the name {name} is registered to someone else")
        if account is None and self._accounts.required:
            raise _error(ErrorCode.AUTH_FAILED,
                         f"{name} is not an account; accounts are added by the operator")

    def _on_register(self, conn: Connection, user: User, req: Register, now: Now) -> None:
        if self._accounts.mode.value == "off":
            raise _error(ErrorCode.BAD_REQUEST, "this server has no accounts")
        if self._accounts.required:
            raise _error(ErrorCode.BAD_REQUEST,
                         "accounts on this server are added by the operator")
        if self._accounts.get(user.key) is not None:
            raise _error(ErrorCode.NAME_TAKEN, f"the name {user.name} is already registered")
        if not self._accounts.can_ask(conn.address):
            raise _error(ErrorCode.RATE_LIMITED, "too many sign-ins in progress; try again")
        job = HashPassword(self._ledger.next_read(), req.password)
        conn.waiting = job.job
        self._accounts.ask(job, PasswordWait(conn.id, req, conn.address))

    def _registered(self, conn: Connection, user: User, req: Request, record: str,
                    now: Now) -> None:
        if not record:
            raise _error(ErrorCode.INTERNAL, "the password could not be stored")
        if self._accounts.get(user.key) is not None:
            raise _error(ErrorCode.NAME_TAKEN, f"the name {user.name} is already registered")
        account = StoredAccount(user.key, user.name, record, round(now.wall, 3))
        self._accounts.add(account)
        # Like a session write, an account write that fails is kept for the
        # next batch (Ledger.failed), so it is not lost with a failed commit.
        self._ledger.write(SaveAccount(account))
        user.account = user.key
        self._out.send((conn.id,), Registered(user.name, ref=req.ref))
