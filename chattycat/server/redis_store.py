"""A cluster node's wiring to Redis: ops out, answers, room messages and events back in.

One :class:`RedisStore` per ``chattycat serve --redis`` process. It is the
node's history store and its link to the other nodes:

- at the end of every loop pass it takes the machine's ops
  (:meth:`ClusterState.take_cluster_work`) and sends them as one pipeline of
  script calls on one connection, so Redis carries them out in the order the
  machine decided them; the replies come back in that order too and go into
  the machine as inputs;
- a second connection is subscribed to ``cc:wake``. A wake-up only says that
  a room's stream or the event stream has something new; the node then reads
  it from the stream, from the last seq it delivered, so a lost wake-up (or a
  lost connection) costs a delay, never a message;
- timers: a heartbeat (``cc:node:<node>`` lives ``NODE_TTL_S``), a reaper
  that signs out the users of nodes whose heartbeat stopped, and a poll of
  the event stream as a backstop for lost wake-ups.

All of it runs on the server's own loop (:mod:`chattycat.net.redis`); the
loop never waits for Redis. Only :meth:`load_state` and :meth:`close`, at
start and stop, use a blocking client.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from chattycat.errors import ConfigError, RedisConnectionError, RedisError, StoreError
from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.redis import RedisClient, RedisSubscriber, parse_redis_url
from chattycat.net.redis_blocking import run_blocking
from chattycat.server.cluster import codec
from chattycat.server.cluster.ops import (
    FOLLOW,
    Claim,
    Enter,
    Fetch,
    Leave,
    Op,
    Publish,
    RemoteUser,
    Rename,
    SendWhisper,
    Settle,
    SignOut,
)
from chattycat.server.cluster.scripts import LAST_EVENT, SCRIPTS
from chattycat.server.cluster.state import ClusterState
from chattycat.server.config import Clock, RedisSettings
from chattycat.server.effects import (
    DropAccount,
    Effect,
    LoadHistory,
    Read,
    SaveAccount,
    StoredState,
    WriteBatch,
)
from chattycat.server.idempotence import WHISPER_WINDOW
from chattycat.server.redis_follow import StreamFollower
from chattycat.server.store import PruneDone, ReadDone, WriteDone

__all__ = ["RedisStore"]

log = logging.getLogger("chattycat.server.redis_store")

#: A node is alive while its heartbeat key is; it is renewed every BEAT_S.
NODE_TTL_S = 10.0
BEAT_S = 1.0
REAP_S = 2.0
EVENTS_POLL_S = 1.0
WAKE = "cc:wake"
# Membership changes kept to send again after an outage (beyond it: a resync).
MAX_UNSENT = 100_000

Handler = Callable[[Any], None]
Membership = Enter | Leave | SignOut


class Host(Protocol):
    """What the store needs of the server it is wired into."""

    clock: Clock

    def apply(self, effects: list[Effect]) -> None: ...


def default_node_name() -> str:
    """This process's name in the cluster: host, pid and a little randomness."""
    return f"{platform.node() or 'node'}-{os.getpid()}-{secrets.token_hex(2)}"


class RedisStore:
    """History in Redis streams, and this node's share of the cluster."""

    def __init__(self, loop: EventLoop, settings: RedisSettings) -> None:
        self.loop = loop
        self.settings = settings
        try:
            self.address = parse_redis_url(settings.url)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.node = settings.node_name or default_node_name()
        self._client = RedisClient(loop, self.address, name=f"chattycat-{self.node}",
                                   on_up=self._up, on_down=self._down)
        self._wake = RedisSubscriber(loop, self.address, [WAKE], self._woken,
                                     name=f"chattycat-{self.node}-wake", on_up=self._caught_up,
                                     quiet=True)
        self._host: Host | None = None
        self._state: ClusterState | None = None
        self._rules: codec.Settings | None = None
        self._shas: dict[str, str] = {}
        self._wait_aof = False
        self._users: list[RemoteUser] = []
        self._last_event = "0-0"  # where the event stream was read up to at start
        self._follower: StreamFollower | None = None
        # Until the loop's connection is first up, each pass's pipeline waits here.
        self._started = False
        self._held: list[tuple[list[list[Any]], Callable[[list[Any]], None]]] = []
        self._unsent: list[Membership] = []
        self._timers: list[TimerHandle] = []
        self._closed = False

    # -- start and stop (blocking, outside the loop's work) -------------------------

    def load_state(self) -> StoredState:
        """Check Redis, load the scripts, sign out what this node's name held, read the cluster."""
        try:
            config, info = run_blocking(self.address, [["CONFIG", "GET", "append*"],
                                                       ["INFO", "server"]])
            self._check_durability(_pairs(config), _pairs(info))
            names = list(SCRIPTS)
            shas = run_blocking(self.address, [["SCRIPT", "LOAD", SCRIPTS[n]] for n in names])
            self._shas = {name: _text(sha) for name, sha in zip(names, shas, strict=True)}
            *_, snapshot = run_blocking(self.address, [
                self._script("reap", self.node, self._wall(), self._ttl_ms(), "1"),
                self._script("beat", self.node, int(NODE_TTL_S * 1000)),
                self._script("snapshot"),
            ])
            last, users, accounts = codec.decode_snapshot(snapshot)
        except RedisError as exc:
            raise StoreError(f"cannot use Redis at {self.address}: {exc}") from None
        self._last_event, self._users = last, users
        return StoredState({}, (), tuple(accounts))

    def _check_durability(self, config: dict[str, str], info: dict[str, str]) -> None:
        aof = config.get("appendonly") == "yes"
        fsync = config.get("appendfsync", "")
        if self.settings.durability != "always":
            if not aof:
                log.warning("Redis at %s keeps no append-only file: a Redis restart loses "
                            "the chat's history (see docs/scale-out.md)", self.address)
            return
        if aof and fsync == "always":
            return
        version = info.get("redis_version", "0")
        if aof and tuple(int(p) for p in version.split(".")[:2]) >= (7, 2):
            self._wait_aof = True  # WAITAOF after each pass's appends
            return
        raise ConfigError(
            f"--redis-durability always needs Redis at {self.address} to run with "
            "appendonly yes and appendfsync always (or Redis 7.2+ with appendonly yes, "
            f"for WAITAOF); it has appendonly {config.get('appendonly', '?')}, "
            f"appendfsync {fsync or '?'}, version {version}")

    def attach(self, host: Host, state: ClusterState) -> None:
        """Wire into the server (``state`` is its machine): replica, connections, timers."""
        self._host, self._state = host, state
        rooms = state.config
        self._rules = codec.Settings(self.node, grace_s=rooms.name_grace_s,
                                     session_ttl_s=rooms.session_ttl_s,
                                     window=rooms.idempotence_window,
                                     whisper_window=WHISPER_WINDOW)
        state.restore_cluster(self._users)
        self._users = []
        self._follower = StreamFollower(self._client, state, self._input, self._script,
                                        self._last_event)
        self._client.start()
        self._wake.start()
        self._every(BEAT_S, self._beat)
        self._every(REAP_S, self._reap)
        self._every(EVENTS_POLL_S, lambda: self._follow().fetch_events())

    def close(self) -> None:
        """Stop: this node leaves the cluster (its users are already signed out)."""
        if self._closed:
            return
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._client.close()
        self._wake.close()
        if not self._shas:
            return  # it never joined
        try:
            run_blocking(self.address, [
                self._script("reap", self.node, self._wall(), self._ttl_ms(), "1"),
                self._script("leave", self.node),
            ], timeout_s=2.0)
        except RedisError as exc:
            log.warning("could not leave the cluster cleanly (%s); the others will time "
                        "this node out", exc)

    # -- the HistoryStore calls the server makes ------------------------------------

    def submit(self, batch: WriteBatch, done: WriteDone) -> None:
        """Accounts (the only writes a cluster node's ledger batches)."""
        commands = []
        for write in batch.writes:
            if isinstance(write, SaveAccount):
                commands.append(self._script("account", write.account.name_key,
                                             codec.account_json(write.account), self.node))
            elif isinstance(write, DropAccount):
                commands.append(["HDEL", "cc:accounts", write.name_key])
        if not commands:
            self.loop.call_soon(done, batch, None)
            return

        def answered(replies: list[Any]) -> None:
            failed = next((r for r in replies if isinstance(r, Exception)), None)
            done(batch, None if failed is None else StoreError(str(failed)))

        self._client.call_many(commands, answered)

    def fetch(self, read: Read, done: ReadDone) -> None:
        """Not used: a cluster node's reads travel among its ops (see ``Fetch``)."""
        self.loop.call_soon(done, read, StoreError("reads go through the cluster's ops"))

    def prune(self, older_than_ts: float, done: PruneDone) -> None:
        """Trim every room's stream of messages older than ``older_than_ts``."""

        def answered(reply: Any) -> None:
            done(StoreError(str(reply)) if isinstance(reply, Exception) else int(reply))

        self._client.call(self._script("prune", repr(older_than_ts)), answered)

    # -- each pass: the machine's ops ---------------------------------------------------

    def flush(self) -> None:
        """Send the machine's ops (and account writes) decided in this pass."""
        state = self._machine()
        work = state.take_store_work()
        if work.batch is not None:
            self.submit(work.batch, self._batch_done)
        ops = state.take_cluster_work()
        if not ops:
            return
        commands: list[list[Any]] = []
        handlers: list[Handler] = []
        for op in ops:
            command, handler = self._translate(op)
            commands.append(command)
            handlers.append(handler)
        if self._wait_aof and any(isinstance(op, Publish) for op in ops):
            commands.append(["WAITAOF", 1, 0, 0])
            handlers.append(_ignore)

        def answered(replies: list[Any]) -> None:
            if self._wait_aof and isinstance(replies[-1], Exception):
                replies = [replies[-1]] * len(replies)  # not known to be on disk
            for handler, reply in zip(handlers, replies, strict=True):
                handler(reply)

        if not self._started:
            # The node listens as soon as it has read the cluster; its own
            # connection to Redis may take a moment more. Hold this pass's ops.
            self._held.append((commands, answered))
            return
        self._client.call_many(commands, answered)

    def _translate(self, op: Op) -> tuple[list[Any], Handler]:
        s = self._settings()
        if isinstance(op, Publish):
            return self._script("publish", *codec.publish_args(op, s)), self._published(op)
        if isinstance(op, Fetch):
            read = op.read
            if isinstance(read, LoadHistory):
                return self._script("page", *codec.page_args(read)), self._paged(read)
            return ["PING"], lambda _reply: self._input(
                lambda state, now: state.loaded(read.read, [], False, now))
        if isinstance(op, Claim):
            return self._script("claim", *codec.claim_args(op, s)), self._claimed(op)
        if isinstance(op, Rename):
            return self._script("rename", *codec.rename_args(op, s)), self._renamed(op)
        if isinstance(op, SendWhisper):
            return self._script("whisper", *codec.whisper_args(op, s)), self._whispered(op)
        if isinstance(op, Settle):
            return ["GET", LAST_EVENT], self._settle(op)
        return self._membership(op)

    def _membership(self, op: Membership) -> tuple[list[Any], Handler]:
        s = self._settings()
        if isinstance(op, Enter):
            command = self._script("join", *codec.enter_args(op, s))
        elif isinstance(op, Leave):
            command = self._script("part", *codec.leave_args(op, s))
        else:
            command = self._script("sign_out", *codec.sign_out_args(op, s))

        def answered(reply: Any) -> None:
            if isinstance(reply, RedisConnectionError):
                self._keep_unsent(op)
            elif isinstance(reply, Exception):
                log.error("cluster: %s failed: %s", type(op).__name__, reply)

        return command, answered

    # -- answers --------------------------------------------------------------------------

    def _published(self, op: Publish) -> Handler:
        room = op.message.room

        def answered(reply: Any) -> None:
            if isinstance(reply, Exception):
                self._input(lambda state, now: state.publish_failed(op.token, now))
                return
            if int(reply[0]) == 1:
                original = codec.decode_message(room, [reply[1], reply[2]])
                self._input(lambda state, now: state.published(op.token, original, True, now))
                return
            message = dataclasses.replace(op.message, seq=codec.seq_of(reply[1]))
            self._input(lambda state, now: state.published(op.token, message, False, now))
            self._follow().arrived(room, message.seq, message, _text(reply[2]))

        return answered

    def _paged(self, read: LoadHistory) -> Handler:
        def answered(reply: Any) -> None:
            if isinstance(reply, Exception):
                log.error("history store: %s", reply)
                self._input(lambda state, now: state.load_failed(read.read, now))
                return
            top, messages, truncated = codec.decode_page(read, reply)
            bound = self._machine().follow(read.room, top) if read.up_to == FOLLOW else read.up_to
            shown = [m for m in messages if m.seq <= bound]
            self._input(lambda state, now: state.loaded(read.read, shown, truncated, now))
            if read.up_to == FOLLOW:
                # Newer than where following began, or announced by a wake-up that
                # came before this reply (ignored then): read on from the cursor.
                self._follow().read_on(read.room)

        return answered

    def _claimed(self, op: Claim) -> Handler:
        def answered(reply: Any) -> None:
            if isinstance(reply, Exception):
                if isinstance(reply, RedisConnectionError):
                    # It may have been carried out: undo it once Redis is back.
                    for digest in {op.new_digest, op.hello_digest} - {""}:
                        self._keep_unsent(SignOut(op.key, digest, "", "disconnected", op.ts))
                self._input(lambda state, now: state.claim_failed(op.token, now))
                return
            claimed = codec.decode_claimed(reply)
            self._input(lambda state, now: state.claimed(op.token, claimed, now))

        return answered

    def _renamed(self, op: Rename) -> Handler:
        def answered(reply: Any) -> None:
            if isinstance(reply, Exception):
                self._input(lambda state, now: state.claim_failed(op.token, now))
                return
            outcome = codec.decode_claimed(reply).outcome
            self._input(lambda state, now: state.renamed(op.token, outcome, now))

        return answered

    def _whispered(self, op: SendWhisper) -> Handler:
        def answered(reply: Any) -> None:
            if isinstance(reply, Exception):
                self._input(lambda state, now: state.whisper_failed(op.token, now))
                return
            outcome, node, sent = codec.decode_whispered(op, reply)
            self._input(lambda state, now: state.whispered(op.token, outcome, node, sent, now))

        return answered

    def _settle(self, op: Settle) -> Handler:
        def go_on() -> None:
            self._input(lambda state, now: state.settled(op.read, now))

        def answered(reply: Any) -> None:
            if isinstance(reply, Exception) or reply is None:
                go_on()  # out of reach (the replica is the best there is), or no events
                return
            self._follow().when_read(_text(reply), go_on)

        return answered

    def _batch_done(self, batch: WriteBatch, error: StoreError | None) -> None:
        if error is None:
            self._input(lambda state, now: state.committed(batch.id, now))
        else:
            log.error("cluster: accounts not saved: %s", error)
            self._input(lambda state, now: state.commit_failed(batch.id, now))

    # -- connection life -------------------------------------------------------------------

    def _up(self) -> None:
        # After a Redis restart its script cache is empty: load ours before any call.
        for text in SCRIPTS.values():
            self._client.call(["SCRIPT", "LOAD", text], _ignore)
        self._started = True
        held, self._held = self._held, []
        for commands, answered in held:
            self._client.call_many(commands, answered)
        unsent, self._unsent = self._unsent, []
        for op in unsent:
            command, handler = self._membership(op)
            self._client.call(command, handler)
        self._beat()
        self._follow().catch_up()  # whatever the streams got while this link was down

    def _down(self, exc: BaseException) -> None:
        if self._follower is not None:
            self._follower.release()
        held, self._held = self._held, []
        for commands, answered in held:  # never sent: they fail like any call while down
            answered([RedisConnectionError(str(exc))] * len(commands))
        if self._host is not None:
            self._input(lambda state, now: state.cluster_lost(now))

    def _woken(self, channel: bytes, data: bytes) -> None:
        if self._follower is not None:
            self._follower.woken(channel, data)

    def _caught_up(self) -> None:
        """The wake-up channel is (back) up: read whatever was missed meanwhile."""
        if self._follower is not None:
            self._follower.catch_up()

    def _beat(self) -> None:
        if not self._client.connected:
            return

        def answered(reply: Any) -> None:
            if isinstance(reply, int) and reply == 0:
                log.warning("cluster: the other nodes gave this node up for dead; its "
                            "users sign in again")
                self._follow().resync()

        self._client.call(self._script("beat", self.node, int(NODE_TTL_S * 1000)), answered)

    def _reap(self) -> None:
        if self._client.connected:
            self._client.call(self._script("reap", self.node, self._wall(), self._ttl_ms(),
                                           "0"), _ignore)

    # -- helpers --------------------------------------------------------------------------

    def _input(self, step: Callable[[ClusterState, Any], list[Effect]]) -> None:
        host = self._require_host()
        host.apply(step(self._machine(), host.clock.now()))

    def _keep_unsent(self, op: Membership) -> None:
        if self._client.connected:  # back already (the failure was reported late)
            command, handler = self._membership(op)
            self._client.call(command, handler)
        elif len(self._unsent) < MAX_UNSENT:
            self._unsent.append(op)

    def _script(self, name: str, *args: Any) -> list[Any]:
        return ["EVALSHA", self._shas[name], 0, *args]

    def _settings(self) -> codec.Settings:
        if self._rules is None:
            raise RuntimeError("the Redis store is not attached to a server")
        return self._rules

    def _ttl_ms(self) -> int:
        rooms = self._state.config if self._state is not None else None
        return int((rooms.session_ttl_s if rooms is not None else 86400.0) * 1000)

    def _wall(self) -> float:
        host = self._host
        return round(host.clock.now().wall if host is not None else time.time(), 3)

    def _every(self, interval_s: float, action: Callable[[], None]) -> None:
        def run() -> None:
            self._timers[index] = self.loop.call_later(interval_s, run)
            action()

        index = len(self._timers)
        self._timers.append(self.loop.call_later(interval_s, run))

    def _follow(self) -> StreamFollower:
        if self._follower is None:
            raise RuntimeError("the Redis store is not attached to a server")
        return self._follower

    def _machine(self) -> ClusterState:
        if self._state is None:
            raise RuntimeError("the Redis store is not attached to a server")
        return self._state

    def _require_host(self) -> Host:
        if self._host is None:
            raise RuntimeError("the Redis store is not attached to a server")
        return self._host


def _ignore(_reply: Any) -> None:
    pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(reply: Any) -> dict[str, str]:
    """CONFIG GET / INFO as a dict of text, whichever shape the client gave them."""
    if isinstance(reply, dict):
        return {_text(k): _text(v) for k, v in reply.items()}
    if isinstance(reply, bytes | str):
        lines = _text(reply).splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line)
    return {_text(reply[i]): _text(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}
