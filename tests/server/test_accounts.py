"""Accounts, the server password and the name grace period, in the state machine (PROTOCOL 10).

The key derivation is an effect: these tests answer the machine's password
jobs with a stand-in (a record is ``rec:<password>``), so they check the
rules without paying scrypt's cost; tests/server/test_passwords.py checks
the real derivation.
"""

from __future__ import annotations

from typing import Any

import pytest

from chattycat.protocol.messages import Error, Hello, Nick, Register, Registered, Welcome
from chattycat.server.accounts import AUTH_DELAY_MAX_S, AccountMode
from chattycat.server.effects import (
    Effect,
    HashPassword,
    Now,
    SaveAccount,
    Send,
    StoredAccount,
    StoredState,
    VerifyPassword,
)
from chattycat.server.memory_store import MemoryStore
from chattycat.server.model import RoomsConfig
from chattycat.server.state import ChatState
from tests.server.driving import run_store_work

START = 1_000.0
GRACE_S = 120.0


class Server:
    """A machine on a memory store whose password jobs are answered by a stand-in KDF."""

    def __init__(self, stored: tuple[StoredAccount, ...] = (), **config: Any) -> None:
        config.setdefault("flood_rate_per_s", 0.0)
        config.setdefault("name_grace_s", GRACE_S)
        self.machine = ChatState(RoomsConfig(**config))
        self.store = MemoryStore()
        self.machine.restore(StoredState(accounts=stored), Now(START, START))
        self.now = START
        self.jobs: list[HashPassword | VerifyPassword] = []

    def _run(self, effects: list[Effect]) -> list[Effect]:
        now = Now(self.now, self.now)
        out = run_store_work(self.machine, self.store, now, effects)
        for job in self.machine.take_password_work():
            self.jobs.append(job)
            if isinstance(job, HashPassword):
                result = self.machine.password_hashed(job.job, f"rec:{job.password}", now)
            else:
                ok = job.record == f"rec:{job.password}"
                result = self.machine.password_checked(job.job, ok, now)
            out.extend(self._run(result))
        return out

    def connect(self, conn: int, address: str = "10.0.0.1") -> None:
        self._run(self.machine.connect(conn, Now(self.now, self.now), address))

    def send(self, conn: int, request: Any) -> list[Effect]:
        return self._run(self.machine.receive(conn, request, Now(self.now, self.now)))

    def tick(self, at: float) -> list[Effect]:
        self.now = at
        return self._run(self.machine.tick(Now(at, at)))

    def hello(self, conn: int, name: str, address: str = "10.0.0.1", **extra: Any) -> Any:
        """The first frame answering a hello on a new connection (None: held back)."""
        self.connect(conn, address)
        return first_frame(self.send(conn, Hello(name, **extra)))


def first_frame(effects: list[Effect]) -> Any:
    sends = [e.frame for e in effects if isinstance(e, Send)]
    return sends[0] if sends else None


def account(name: str, password: str) -> StoredAccount:
    return StoredAccount(name, name, f"rec:{password}", START)


def auth_failed_after(server: Server, conn: int, name: str, **extra: Any) -> float:
    """Send a hello that must fail; returns how long its auth_failed was held back."""
    assert server.hello(conn, name, **extra) is None  # held, not answered at once
    start = server.now
    for step in range(1, 200):
        frame = first_frame(server.tick(start + step * 0.5))
        if frame is not None:
            assert isinstance(frame, Error) and frame.code == "auth_failed", frame
            return server.now - start
    raise AssertionError("the auth_failed never came")


# -- the grace period ---------------------------------------------------------------


def test_a_parked_name_is_kept_for_its_session_during_the_grace_period() -> None:
    server = Server()
    welcome = server.hello(1, "alice")
    server._run(server.machine.disconnected(1, Now(START, START)))
    refused = server.hello(2, "alice")
    assert isinstance(refused, Error) and refused.code == "name_taken"
    assert isinstance(server.hello(3, "alice", session=welcome.session), Welcome)


def test_after_the_grace_period_anyone_may_take_the_name() -> None:
    server = Server()
    server.hello(1, "alice")
    server._run(server.machine.disconnected(1, Now(START, START)))
    server.now = START + GRACE_S
    assert isinstance(server.hello(2, "alice"), Welcome)


def test_nick_to_a_name_in_its_grace_period_is_name_taken() -> None:
    server = Server()
    server.hello(1, "alice")
    server._run(server.machine.disconnected(1, Now(START, START)))
    server.hello(2, "bob")
    refused = first_frame(server.send(2, Nick("alice")))
    assert isinstance(refused, Error) and refused.code == "name_taken"


# -- registering -------------------------------------------------------------------


def test_register_saves_the_name_with_a_derived_record_and_answers_registered() -> None:
    server = Server()
    server.hello(1, "alice")
    effects = server.send(1, Register("correct horse", ref=7))
    assert first_frame(effects) == Registered("alice", ref=7)
    (stored,) = server.store.accounts()
    assert (stored.name_key, stored.record) == ("alice", "rec:correct horse")
    assert isinstance(server.jobs[0], HashPassword)


def test_register_of_a_registered_name_is_name_taken() -> None:
    server = Server((account("alice", "correct horse"),))
    server.hello(1, "alice", password="correct horse")
    refused = first_frame(server.send(1, Register("another one", ref=1)))
    assert isinstance(refused, Error) and (refused.code, refused.ref) == ("name_taken", 1)


@pytest.mark.parametrize("mode", [AccountMode.REQUIRED, AccountMode.OFF])
def test_register_is_refused_when_users_may_not_register(mode: AccountMode) -> None:
    server = Server((account("alice", "correct horse"),), accounts=mode)
    server.hello(1, "alice", password="correct horse")
    refused = first_frame(server.send(1, Register("another one")))
    assert isinstance(refused, Error) and refused.code == "bad_request"


def test_secrets_never_appear_in_a_repr() -> None:
    texts = [repr(Hello("alice", password="hunter2hunter2", server_password="s3cret!!")),
             repr(Register("hunter2hunter2")), repr(HashPassword(1, "hunter2hunter2")),
             repr(VerifyPassword(1, "hunter2hunter2", "rec:x")), repr(account("a", "hunter2"))]
    assert not any("hunter2" in t or "s3cret" in t for t in texts), texts


# -- signing in ---------------------------------------------------------------------


def test_a_registered_name_is_given_to_its_password() -> None:
    server = Server((account("alice", "correct horse"),))
    assert isinstance(server.hello(1, "alice", password="correct horse"), Welcome)
    assert isinstance(server.jobs[0], VerifyPassword)


def test_a_registered_name_is_given_to_its_session_without_the_password() -> None:
    server = Server((account("alice", "correct horse"),))
    welcome = server.hello(1, "alice", password="correct horse")
    server._run(server.machine.disconnected(1, Now(START, START)))
    assert isinstance(server.hello(2, "alice", session=welcome.session), Welcome)


def test_the_password_takes_the_name_over_from_another_connection() -> None:
    server = Server((account("alice", "correct horse"),))
    server.hello(1, "alice", password="correct horse")
    server.connect(2)
    effects = server.send(2, Hello("alice", password="correct horse"))
    to = {type(e.frame).__name__: e.conns for e in effects if isinstance(e, Send)}
    assert to["Error"] == (1,) and to["Welcome"] == (2,)  # `replaced`, then the new welcome
    assert server.machine.state_of(1).name == "CLOSED"


def test_a_wrong_password_and_a_missing_one_get_the_same_auth_failed() -> None:
    server = Server((account("alice", "correct horse"),))
    server.hello(1, "alice", password="wrong horse")
    server.hello(2, "alice", address="10.0.0.2")
    first = first_frame(server.tick(START + AUTH_DELAY_MAX_S))
    answers = [e.frame for e in server.tick(START + AUTH_DELAY_MAX_S + 1)]
    assert first is not None and first.code == "auth_failed"
    assert all(a == first for a in answers)


def test_in_required_mode_an_unknown_name_and_a_wrong_password_answer_alike() -> None:
    server = Server((account("alice", "correct horse"),),
                    accounts=AccountMode.REQUIRED)
    server.hello(1, "alice", password="wrong horse", address="10.0.0.1")
    server.hello(2, "mallory", password="wrong horse", address="10.0.0.2")
    effects = server.tick(START + 1.0)
    frames = {next(iter(e.conns)): e.frame for e in effects if isinstance(e, Send)}
    assert frames[1] == frames[2] and frames[1].code == "auth_failed"
    assert "operator" in frames[1].message
    # The unknown name paid for a derivation too, against a record nobody matches.
    assert [type(j) for j in server.jobs] == [VerifyPassword, VerifyPassword]


def test_failures_from_one_address_are_answered_more_and_more_slowly() -> None:
    server = Server((account("alice", "correct horse"),), max_failed_hellos=100)
    delays = [auth_failed_after(server, conn, "alice", password="nope nope")
              for conn in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    # Another address is not slowed by these.
    assert auth_failed_after(server, 99, "alice", address="10.9.9.9") == 1.0


def test_requests_sent_while_an_answer_is_held_wait_for_it() -> None:
    server = Server((account("alice", "correct horse"),))
    server.hello(1, "alice")
    assert server.send(1, Hello("bob")) == []  # parked behind the held answer
    frames = [e.frame for e in server.tick(START + 1.0) if isinstance(e, Send)]
    assert [type(f).__name__ for f in frames][:2] == ["Error", "Welcome"]


# -- nick ---------------------------------------------------------------------------


def test_nick_to_a_registered_name_is_only_for_its_owner() -> None:
    server = Server((account("alice", "correct horse"),))
    server.hello(1, "bob")
    refused = first_frame(server.send(1, Nick("alice")))
    assert isinstance(refused, Error) and refused.code == "name_taken"
    server.hello(2, "alice", password="correct horse")
    server.send(2, Nick("al"))
    assert first_frame(server.send(2, Nick("alice"))).TYPE == "renamed"


def test_in_required_mode_nick_to_an_unregistered_name_is_refused() -> None:
    server = Server((account("alice", "correct horse"),),
                    accounts=AccountMode.REQUIRED)
    server.hello(1, "alice", password="correct horse")
    refused = first_frame(server.send(1, Nick("someone")))
    assert isinstance(refused, Error) and refused.code == "auth_failed"


# -- the server password -------------------------------------------------------------


@pytest.mark.parametrize("presented", [None, "wrong one"])
def test_a_missing_or_wrong_server_password_is_auth_failed(presented: str | None) -> None:
    server = Server(server_password="let me in")
    assert server.hello(1, "alice", server_password=presented) is None
    frame = first_frame(server.tick(START + 1.0))
    assert isinstance(frame, Error) and frame.code == "auth_failed"


def test_the_right_server_password_gets_welcome() -> None:
    server = Server(server_password="let me in")
    assert isinstance(server.hello(1, "alice", server_password="let me in"), Welcome)


def test_accounts_off_ignores_stored_accounts() -> None:
    server = Server((account("alice", "correct horse"),), accounts=AccountMode.OFF)
    assert isinstance(server.hello(1, "alice"), Welcome)


def test_an_account_write_is_a_save_account_in_the_batch() -> None:
    server = Server()
    server.hello(1, "alice")
    server.connect(5)
    server.machine.receive(1, Register("correct horse"), Now(START, START))
    assert server.machine.take_store_work().batch is None  # nothing until the hash is back
    (job,) = server.machine.take_password_work()
    server.machine.password_hashed(job.job, "rec:correct horse", Now(START, START))
    batch = server.machine.take_store_work().batch
    assert batch is not None and any(isinstance(w, SaveAccount) for w in batch.writes)


def test_derivations_in_progress_are_bounded_per_address() -> None:
    # Connections that send a hello and hang up must not queue work without end.
    server = Server((account("alice", "correct horse"),), max_failed_hellos=100)
    for conn in (1, 2):
        server.machine.connect(conn, Now(START, START), "10.0.0.1")
        server.machine.receive(conn, Hello("alice", password="guess one"), Now(START, START))
    server.machine.connect(3, Now(START, START), "10.0.0.1")
    effects = server.machine.receive(3, Hello("alice", password="guess two"), Now(START, START))
    refused = first_frame(effects)
    assert isinstance(refused, Error) and refused.code == "rate_limited"
    assert len(server.machine.take_password_work()) == 2
    # Another address still gets its turn.
    server.machine.connect(4, Now(START, START), "10.0.0.9")
    assert server.machine.receive(4, Hello("alice", password="guess"), Now(START, START)) == []
