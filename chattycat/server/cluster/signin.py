"""Signing in on a cluster node: a name is the cluster's, claimed atomically in Redis.

:class:`ClusterSignIn` replaces the one-server rules of
:class:`~chattycat.server.signin.SignIn` where a name is given out: a
``hello`` (after the local checks: protocol, server password, an account's
password) and a ``nick`` become a :class:`~chattycat.server.cluster.ops.Claim`
or :class:`~chattycat.server.cluster.ops.Rename` op, and the connection
waits for Redis's answer as it would for a read. A ``hello`` first settles
(:class:`~chattycat.server.cluster.ops.Settle`), so that the color it is
given and the rosters in its welcome know every user who signed in before.
Redis applies PROTOCOL 7's session rules across nodes (takeover, resume, the
grace period); the answer says how it ended, and this module finishes the
welcome (or the refusal) exactly as one server would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chattycat.errors import ErrorCode, ProtocolError
from chattycat.protocol.messages import Hello, Nick, name_key
from chattycat.server.cluster.ops import (
    Claim,
    Claimed,
    ClaimMode,
    Op,
    Rename,
    Settle,
    SignOut,
)
from chattycat.server.cluster.replica import ClusterDirectory, remote_user
from chattycat.server.colors import pick_color
from chattycat.server.effects import ConnId, Effect, Now
from chattycat.server.model import REMOTE, Connection, ConnState, User
from chattycat.server.sessions import new_secret, secret_digest
from chattycat.server.signin import SignIn

__all__ = ["ClusterSignIn"]


def _error(code: ErrorCode, message: str) -> ProtocolError:
    return ProtocolError(code, message)


@dataclass(frozen=True, slots=True)
class _ClaimWait:
    conn: ConnId
    hello: Hello
    secret: str  # the fresh secret, if the claim does not resume a session


class ClusterSignIn(SignIn):
    """Hello and nick on a node: the name is claimed in Redis first."""

    node: str
    _ops: list[Op]
    _greetings: dict[int, tuple[ConnId, Hello, str]]  # settling before their claim
    _claims: dict[int, _ClaimWait]
    _renames: dict[int, tuple[ConnId, Nick]]
    _won: dict[str, int]

    if TYPE_CHECKING:
        @property
        def _members(self) -> ClusterDirectory: ...

    # -- answers -------------------------------------------------------------------

    def _greeting_settled(self, token: int, now: Now) -> bool:
        """If ``token`` is a hello's settle, claim its name now; whether it was."""
        greeting = self._greetings.pop(token, None)
        if greeting is None:
            return False
        conn_id, hello, mode = greeting
        conn = self._conns.get(conn_id)
        if conn is not None and conn.state is not ConnState.CLOSED and conn.waiting == token:
            self._claim_settled(conn, hello, now, mode)
        return True

    def claimed(self, token: int, result: Claimed, now: Now) -> list[Effect]:
        """Redis answered a :class:`Claim`."""
        wait = self._claims.pop(token, None)
        if wait is None:
            return self._flush()
        conn = self._conns.get(wait.conn)
        if conn is None or conn.state is ConnState.CLOSED or conn.waiting != token:
            if result.outcome in ("fresh", "resume", "takeover"):
                # Signed in for a connection that is gone: sign it out again.
                key = name_key(wait.hello.name)
                self._ops.append(SignOut(key, result.digest, result.color, "disconnected",
                                         round(now.wall, 3)))
            return self._flush()
        conn.waiting = None
        try:
            self._claim_answered(conn, wait, result, now)
        except ProtocolError as exc:
            self._reply_error(conn, exc.with_ref(wait.hello.ref), None)
        self._drain_parked(conn)
        return self._flush()

    def claim_failed(self, token: int, now: Now) -> list[Effect]:
        """A :class:`Claim` or :class:`Rename` did not reach Redis."""
        wait = self._claims.pop(token, None)
        renamed = self._renames.pop(token, None)
        conn_id, ref = ((wait.conn, wait.hello.ref) if wait is not None
                        else (renamed[0], renamed[1].ref) if renamed is not None else (0, None))
        conn = self._conns.get(conn_id)
        if conn is not None and conn.state is not ConnState.CLOSED and conn.waiting == token:
            conn.waiting = None
            error = _error(ErrorCode.INTERNAL, "the cluster is unavailable; try again")
            self._reply_error(conn, error.with_ref(ref), None)
            self._drain_parked(conn)
        return self._flush()

    def renamed(self, token: int, outcome: str, now: Now) -> list[Effect]:
        """Redis answered a :class:`Rename`: ok, taken, reserved or gone."""
        waiting = self._renames.pop(token, None)
        if waiting is None:
            return self._flush()
        conn_id, req = waiting
        conn = self._conns.get(conn_id)
        user = None if conn is None else conn.user
        if conn is None or user is None or conn.waiting != token:
            if outcome == "ok":  # signed out meanwhile, under its old name: under this one too
                self._ops.append(SignOut(name_key(req.name), "", "", "disconnected",
                                         round(now.wall, 3)))
            return self._flush()
        conn.waiting = None
        if outcome in ("taken", "reserved"):
            text = ("is taken" if outcome == "taken" else "is kept for its session")
            self._reply_error(conn, _error(ErrorCode.NAME_TAKEN,
                                           f"the name {req.name} {text}").with_ref(req.ref), None)
        elif outcome == "ok":
            key = name_key(req.name)
            self._won[key] = self._won.get(key, 0) + 1
            self._directory.rename(user, req.name)
        self._drain_parked(conn)
        return self._flush()

    # -- hello ---------------------------------------------------------------------

    def _hello(self, conn: Connection, hello: Hello, now: Now) -> None:
        if not self._hello_checked(conn, hello, now):
            return
        account = self._accounts.get(name_key(hello.name))
        if account is None and not self._accounts.required:
            self._claim(conn, hello, now, ClaimMode.OPEN)
        elif account is not None and hello.password is None:
            self._claim(conn, hello, now, ClaimMode.ACCOUNT)  # its own session may prove it
        elif hello.password is None:
            self._auth_failed(conn, hello, now)
        else:
            self._verify(conn, hello, account)

    def _admit(self, conn: Connection, hello: Hello, now: Now, *, proven: bool) -> None:
        self._claim(conn, hello, now, ClaimMode.PROVEN if proven else ClaimMode.OPEN)

    def _claim(self, conn: Connection, hello: Hello, now: Now, mode: str) -> None:
        token = self._ledger.next_read()
        conn.waiting = token
        self._greetings[token] = (conn.id, hello, mode)
        self._ops.append(Settle(token))

    def _claim_settled(self, conn: Connection, hello: Hello, now: Now, mode: str) -> None:
        rooms = list(hello.resume or ()) or [self.config.default_room]
        neighbours = self._directory.colors_in(rooms)
        color = pick_color(neighbours, (u.color for u in self._directory.users()))
        secret = new_secret()
        token = self._ledger.next_read()
        conn.waiting = token
        self._claims[token] = _ClaimWait(conn.id, hello, secret)
        presented = secret_digest(hello.session) if hello.session else ""
        self._ops.append(Claim(token, name_key(hello.name), hello.name, presented,
                               secret_digest(secret), mode, color,
                               tuple(sorted(set(neighbours))), round(now.wall, 3),
                               tuple(rooms)))

    def _claim_answered(self, conn: Connection, wait: _ClaimWait, result: Claimed,
                        now: Now) -> None:
        hello = wait.hello
        if result.outcome == "taken":
            raise _error(ErrorCode.NAME_TAKEN, f"the name {hello.name} is taken")
        if result.outcome == "reserved":
            raise _error(ErrorCode.NAME_TAKEN,
                         f"the name {hello.name} is kept for its session for a while")
        if result.outcome == "auth":
            self._auth_failed(conn, hello, now)
            return
        key = name_key(hello.name)
        self._won[key] = self._won.get(key, 0) + 1
        secret = wait.secret
        if hello.session is not None and secret_digest(hello.session) == result.digest:
            secret = hello.session
        existing = self._directory.user(key)
        if result.outcome == "takeover":
            if existing is None:  # its sign-in elsewhere has not been read here yet
                existing = remote_user(hello.name, result.color, result.from_node)
                self._directory.add(existing)
            if existing.conn == REMOTE:  # its joins and parts may not have been read yet
                self._match_rooms(existing, result.rooms, now)
            self._take_over_claimed(conn, existing, hello, secret, now)
            return
        if existing is not None:  # Redis says it is gone; its sign-out is still on its way
            self._drop_stale(existing)
        user = User(hello.name, result.color, secret, conn.id)
        user.account = key if self._accounts.get(key) is not None else None
        self._directory.add(user)
        self._activate(conn, user, hello)
        for room in list(hello.resume or ()) or [self.config.default_room]:
            self._directory.enter(user, room, round(now.wall, 3))
            self._send_room_state(conn, room, hello.resume, ref=hello.ref)

    def _match_rooms(self, user: User, rooms: tuple[str, ...], now: Now) -> None:
        """Make a remote ``user``'s rooms here the cluster's ``rooms`` (members here are told)."""
        for room in [r for r in user.rooms if r not in rooms]:
            self._directory.leave(user, room, "part", include_self=False)
        for room in rooms:
            if room not in user.rooms:
                self._directory.enter(user, room, round(now.wall, 3))

    def _take_over_claimed(self, conn: Connection, user: User, hello: Hello, secret: str,
                           now: Now) -> None:
        user.node, user.session, user.session_key = "", secret, secret_digest(secret)
        # Its session or its password proved it: a registered name is its own.
        if self._accounts.get(user.key) is not None:
            user.account = user.key
        self._take_over(conn, user, hello, now)

    def _drop_stale(self, user: User) -> None:
        """Forget ``user`` here without telling the cluster (it already knows)."""
        self._replace_connection(user.conn)
        self._directory.move(user, REMOTE)
        self._directory.remove(user, "disconnected")

    def _handed_over(self, user: User, node: str) -> None:
        """Our user signed in on ``node`` with its session: this connection is replaced."""
        self._replace_connection(user.conn)
        self._members.hand_over(user, node)

    # -- nick ----------------------------------------------------------------------

    def _on_nick(self, conn: Connection, user: User, req: Nick, now: Now) -> None:
        """A rename: claimed in Redis unless only the case changes."""
        new_key = name_key(req.name)
        token = self._ledger.next_read()
        rename = Rename(token, user.key, new_key, req.name, user.session_key,
                        owner=user.account == new_key, ts=round(now.wall, 3))
        if new_key == user.key:  # a change of case: nobody else can hold it
            self._ops.append(rename)
            self._directory.rename(user, req.name)
            return
        # Whether a parked session keeps the name is the cluster's to say (Rename).
        self._check_name_free(user, req.name, new_key)
        conn.waiting = token
        self._renames[token] = (conn.id, req)
        self._ops.append(rename)
