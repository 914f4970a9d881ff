"""Non-blocking byte streams (plain TCP and TLS) on :class:`~chattycat.net.loop.EventLoop`.

Modelled on asyncio's selector transports, with one twist: ``write()`` never
sends. It queues the data and schedules one flush with
``loop.call_before_poll``, so everything written to a connection during a loop
pass leaves in a single ``sendmsg()``. A chat server turns one incoming message
into a write to every member of a room; without coalescing, each of those
becomes its own system call and its own TCP segment.

Flow control follows asyncio too, but is judged where it means something:
after a send attempt, never on what ``write()`` merely queued during this
pass (that would count the bytes the flush is about to hand to the kernel,
and call a client that reads promptly slow). The unsent bytes are measured
after the end-of-pass flush and after every writable event; while the socket
waits for writability, the flush sends nothing (the poll of this pass just
said the kernel buffer is full) but still measures. Three limits apply:

- above ``high``: ``protocol.pause_writing()``;
- back down to ``low``: ``protocol.resume_writing()``;
- above ``hard`` (off unless set): ``protocol.write_buffer_overflow()``, once.
  Unless the protocol returns True (it then closes the connection itself,
  say after a last error frame), the transport aborts the connection; a peer
  that stopped reading cannot make us hold more than ``hard`` plus one pass
  of output. A burst written in one pass counts in full, less what the
  kernel takes at once: ``hard`` must exceed the largest such burst.

Because pausing waits for the flush, a producer that writes in a loop until
paused must yield to the loop between chunks (or bound each pass with
``get_write_buffer_size()``); the pause comes at the end of the pass.

TLS runs through an ``ssl.SSLObject`` between two ``ssl.MemoryBIO``s, so the
encrypted bytes go through exactly the same queue, flush and limits as plain
ones.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import ssl
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import cast

from chattycat.net.loop import EventLoop, TimerHandle
from chattycat.net.tls import TLSEngine

__all__ = ["Protocol", "Transport", "set_nodelay"]

logger = logging.getLogger("chattycat.net.transport")

RECV_CHUNK_BYTES = 256 * 1024
DEFAULT_HIGH_WATER_BYTES = 64 * 1024
DEFAULT_LOW_WATER_BYTES = 16 * 1024
# close() waits this long for the peer to take our pending output (and TLS close_notify);
# a client that stopped reading must not pin a file descriptor forever.
CLOSE_FLUSH_TIMEOUT_S = 10.0
# How long a gracefully closed socket keeps draining the peer's input (see _force_close).
LINGER_S = 2.0
# Without MSG_NOSIGNAL a write to a reset connection raises SIGPIPE in programs that
# embed us and do not ignore it the way the Python interpreter does.
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")
_FALLBACK_JOIN_BYTES = 256 * 1024


# The pending output of every connection that has none (see Transport.__init__).
_NO_OUTPUT = cast("list[bytes | memoryview]", ())


def _iov_max() -> int:
    try:
        value = os.sysconf("SC_IOV_MAX")
    except (AttributeError, ValueError, OSError):
        return 16
    return min(value, 1024) if value > 0 else 16


_IOV_MAX = _iov_max()


class Protocol:
    """Callbacks of one connection; subclass and override what you need."""

    __slots__ = ()  # so that a subclass may do without an instance dict

    def connection_made(self, transport: Transport) -> None:
        """The connection is up (after the TLS handshake, with TLS)."""

    def data_received(self, data: bytes) -> None:
        """Bytes arrived (already decrypted, with TLS)."""

    def eof_received(self) -> bool | None:
        """The peer will send no more; return True to keep our side open for writing."""
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is closed; ``exc`` is None after close()/abort()/clean EOF."""

    def connection_failed(self, exc: BaseException) -> None:
        """An outbound connection (or its TLS handshake) failed before connection_made."""

    def pause_writing(self) -> None:
        """The write buffer went above the high-water mark: stop producing."""

    def resume_writing(self) -> None:
        """The write buffer drained to the low-water mark: produce again."""

    def write_buffer_overflow(self) -> bool | None:
        """After a send attempt, more than the hard limit is unsent (called at most once).

        By default the transport then aborts the connection (``connection_lost``
        gets a ConnectionAbortedError). Return True to close it yourself instead,
        say after a last error frame; do so soon, with a short ``close()``
        timeout, because the transport keeps accepting writes until then.
        """
        return None


class _State(enum.Enum):
    CONNECTING = "connecting"  # protocol not made yet: TLS handshake or connection_made pending
    OPEN = "open"
    CLOSING = "closing"  # close() called: flushing output, then the socket is closed
    CLOSED = "closed"  # connection_lost is scheduled or done


# Module-level aliases: looking a member up on an Enum class costs ~4x a global
# lookup, and write() checks the state once per frame per recipient.
_CONNECTING, _OPEN, _CLOSING, _CLOSED = (
    _State.CONNECTING, _State.OPEN, _State.CLOSING, _State.CLOSED
)


class Transport:
    """One connection: buffered, coalesced writes; reads delivered to a Protocol.

    Created by :func:`listen` and :func:`connect`, not directly.
    """

    # Slots: a server holds thousands of these. "__dict__" stays available (a
    # test may replace a method on one instance) but is only made when used.
    __slots__ = (
        "__dict__", "_bytes_sent", "_close_timer", "_eof", "_flush_scheduled",
        "_handshake_timer", "_hard_limit", "_high_water", "_linger", "_loop", "_low_water",
        "_on_handshake_failed", "_overflowed", "_peername", "_pending", "_pending_bytes",
        "_pending_shared", "_protocol", "_protocol_factory", "_protocol_paused", "_reading",
        "_reading_paused", "_sock", "_state", "_tls", "_writing",
    )

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], Protocol],
        *,
        tls: TLSEngine | None = None,
        handshake_timeout_s: float | None = None,
        on_handshake_failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._protocol_factory = protocol_factory
        self._protocol = Protocol()  # a no-op stand-in until the real one is made
        self._tls = tls
        self._on_handshake_failed = on_handshake_failed
        self._state = _CONNECTING
        # Whole bytes objects as written (a chunk is sliced into a memoryview
        # only when the kernel takes part of it); ciphertext, with TLS.
        # A list while output is pending, else the shared empty tuple: most
        # connections are idle most of the time, and thousands of them should
        # not hold a container each (a deque is over 600 bytes, a list 56).
        self._pending: list[bytes | memoryview] = _NO_OUTPUT
        self._pending_bytes = 0
        # _pending is the caller's list of write_frames (copied before any change).
        self._pending_shared = False
        self._flush_scheduled = False
        self._writing = False  # write interest registered with the loop
        self._reading = False  # read interest registered with the loop
        self._reading_paused = False
        self._eof = False
        self._protocol_paused = False
        self._high_water = DEFAULT_HIGH_WATER_BYTES
        self._low_water = DEFAULT_LOW_WATER_BYTES
        self._hard_limit: int | None = None
        self._overflowed = False  # write_buffer_overflow() was called
        self._bytes_sent = 0  # accepted by the kernel, ever: shows whether output moves
        self._close_timer: TimerHandle | None = None
        self._handshake_timer: TimerHandle | None = None
        self._linger = False
        self._peername: object = None
        with contextlib.suppress(OSError):  # already reset by the peer
            self._peername = _shared_host(sock.getpeername())
        if tls is None:
            loop.call_soon(self._make_connection)
            return
        if handshake_timeout_s is not None:
            self._handshake_timer = loop.call_later(handshake_timeout_s, self._handshake_timed_out)
        self._update_reading()
        self._continue_handshake()

    # -- public interface -------------------------------------------------------------

    @property
    def loop(self) -> EventLoop:
        """The loop this transport runs on."""
        return self._loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; it is sent at the end of this loop pass, coalesced with other writes."""
        if self._state is not _OPEN:
            logger.debug("write() on a %s transport ignored", self._state.value)
            return
        # Copy mutable buffers: the caller may reuse them before we send.
        chunk = data if isinstance(data, bytes) else bytes(data)
        if not chunk:
            return
        if self._tls is not None:
            self._tls.plaintext.append(chunk)
            self._tls.plaintext_bytes += len(chunk)
        else:
            self._queue([chunk])
            self._pending_bytes += len(chunk)
        if not self._flush_scheduled:
            self._schedule_flush()

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Queue several chunks; they leave together with anything else written this pass."""
        for chunk in chunks:
            self.write(chunk)

    def write_frames(self, frames: list[bytes], size: int | None = None) -> None:
        """Queue whole ``bytes`` objects (immutable, so not copied) in one call.

        The fan-out path: a server hands every recipient the same list of
        encoded frames, so the cost per recipient is one call, whatever the
        count. The transport may send from ``frames`` itself, without a copy,
        so the caller must not change the list afterwards; ``size`` is their
        total length if the caller knows it (else it is counted here).
        """
        if self._state is not _OPEN:
            return
        if size is None:
            size = sum(map(len, frames))
        if self._tls is not None:
            self._tls.plaintext.extend(frames)
            self._tls.plaintext_bytes += size
        else:
            if self._pending:
                self._queue(frames)
            else:  # the usual case: this pass's only output, sent straight from that list
                self._pending, self._pending_shared = frames, True  # type: ignore[assignment]
            self._pending_bytes += size
        if not self._flush_scheduled:
            self._schedule_flush()

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet accepted by the kernel.

        As in asyncio, this includes what was written during this loop pass and
        is not flushed yet; the limits are judged only after a send attempt.
        """
        plaintext = self._tls.plaintext_bytes if self._tls is not None else 0
        return self._pending_bytes + plaintext

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None, *, hard: int | None = None
    ) -> None:
        """Set the water marks (64 KiB / 16 KiB) and the hard limit (None: no hard limit).

        Above ``high`` after a send attempt: ``pause_writing()``; down to ``low``:
        ``resume_writing()``; above ``hard``: ``write_buffer_overflow()``.
        """
        if high is None:
            high = DEFAULT_HIGH_WATER_BYTES if low is None else 4 * low
        if low is None:
            low = high // 4
        if not 0 <= low <= high:
            raise ValueError(f"need 0 <= low <= high, got high={high} low={low}")
        if hard is not None and hard < high:
            raise ValueError(f"need hard >= high, got hard={hard} high={high}")
        self._high_water, self._low_water, self._hard_limit = high, low, hard
        if self.get_write_buffer_size():
            self._schedule_flush()  # judged against the new limits after its send attempt

    def get_bytes_sent(self) -> int:
        """Bytes the kernel has accepted on this connection so far."""
        return self._bytes_sent

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The (low, high) water marks."""
        return self._low_water, self._high_water

    def get_write_buffer_hard_limit(self) -> int | None:
        """The hard limit on unsent bytes, or None."""
        return self._hard_limit

    def set_kernel_send_buffer(self, nbytes: int) -> None:
        """Cap what the kernel holds for this socket (``SO_SNDBUF``).

        Left alone, Linux grows a socket's send buffer to megabytes for a peer
        that is slow to read; a server with thousands of such peers would park
        gigabytes of its output in kernel memory, outside any limit it sets.
        A fixed size also stops autotuning, which is what a server with many
        small, bursty connections wants. (Linux doubles the value for its
        bookkeeping; ``getsockopt`` reports the doubled figure.)
        """
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, nbytes)
        except OSError as exc:  # a closed socket, or a platform without the option
            logger.debug("%r: cannot set SO_SNDBUF: %s", self, exc)

    def pause_reading(self) -> None:
        """Stop calling data_received until resume_reading()."""
        self._reading_paused = True
        self._update_reading()

    def resume_reading(self) -> None:
        """Undo pause_reading()."""
        self._reading_paused = False
        self._update_reading()

    def is_reading(self) -> bool:
        """Whether the transport is watching its socket for input."""
        return self._reading

    def close(self, timeout_s: float = CLOSE_FLUSH_TIMEOUT_S) -> None:
        """Stop reading, flush pending output (and TLS close_notify), then close.

        Output the peer has not taken within ``timeout_s`` is dropped and
        ``connection_lost`` gets a TimeoutError.
        """
        if self._state is not _OPEN:
            if self._state is _CONNECTING:
                self._force_close(None)
            return
        self._state = _CLOSING
        self._update_reading()
        if self._tls is not None:
            self._tls.encrypt()
            # Queues our close_notify; we do not wait for the peer's (SSLWantReadError).
            with contextlib.suppress(ssl.SSLError):
                self._tls.obj.unwrap()
            self._pump_tls_output()
        if self.get_write_buffer_size() == 0:
            self._force_close(None, linger=True)
            return
        self._close_timer = self._loop.call_later(timeout_s, self._close_timed_out, timeout_s)
        self._schedule_flush()

    def abort(self) -> None:
        """Discard pending output and close now."""
        self._force_close(None)

    def is_closing(self) -> bool:
        """Whether close() or abort() was called or the connection was lost."""
        return self._state is _CLOSING or self._state is _CLOSED

    def get_extra_info(self, name: str, default: object = None) -> object:
        """"peername", "sockname", "socket", and with TLS "ssl_object", "peercert", "cipher"."""
        if name == "peername":
            return default if self._peername is None else self._peername
        if name == "socket":
            return self._sock
        if name == "sockname":
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        tls = self._tls
        if tls is None or self._state is _CONNECTING:
            return default
        if name == "ssl_object":
            return tls.obj
        if name == "peercert":
            return tls.obj.getpeercert()
        if name == "cipher":
            return tls.obj.cipher()
        return default

    def __repr__(self) -> str:
        return f"<Transport {self._state.value} peer={self._peername}>"

    # -- connection setup -------------------------------------------------------------

    def _make_connection(self) -> None:
        if self._state is not _CONNECTING:
            return
        try:
            self._protocol = self._protocol_factory()
        except Exception:
            logger.exception("protocol factory failed; dropping the connection")
            self._force_close(None)
            return
        self._state = _OPEN
        try:
            self._protocol.connection_made(self)
        except Exception as exc:
            self._protocol_failed("connection_made", exc)
            return
        self._update_reading()

    def _continue_handshake(self) -> None:
        assert self._tls is not None
        try:
            done = self._tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self._pump_tls_output()
            self._send_pending()  # best effort: tell the peer why (the alert)
            self._handshake_failed(exc)
            return
        self._pump_tls_output()
        if not done:
            return
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        self._make_connection()
        if self._state is _OPEN:
            # Application data may have arrived in the same segment as the last handshake flight.
            self._receive_tls(b"")

    def _handshake_timed_out(self) -> None:
        self._handshake_failed(TimeoutError("TLS handshake timed out"))

    def _handshake_failed(self, exc: BaseException) -> None:
        if self._state is not _CONNECTING:
            return
        logger.debug("TLS handshake with %s failed: %r", self._peername, exc)
        self._force_close(None)
        if self._on_handshake_failed is not None:
            self._on_handshake_failed(exc)

    # -- reading ----------------------------------------------------------------------

    def _update_reading(self) -> None:
        if self._state is _CONNECTING:
            want = self._tls is not None  # the handshake needs input; plain waits for the protocol
        elif self._state is _OPEN:
            want = not self._reading_paused and not self._eof
        else:
            want = False
        if want == self._reading:
            return
        self._reading = want
        if want:
            self._loop.add_reader(self._sock, self._on_readable)
        else:
            self._loop.remove_reader(self._sock)

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(RECV_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if self._state is _CONNECTING:
                self._handshake_failed(exc)
            else:
                self._fatal_error(exc)
            return
        if self._tls is None:
            if data:
                self._deliver(data)
            else:
                self._on_eof()
        elif self._state is _CONNECTING:
            if data:
                self._tls.incoming.write(data)
                self._continue_handshake()
            else:
                self._handshake_failed(ConnectionResetError("peer closed during the TLS handshake"))
        elif data:
            self._receive_tls(data)
        else:
            # A raw EOF without close_notify. Our framing detects a truncated message,
            # so treat it like a normal EOF rather than an attack.
            self._on_eof()

    def _receive_tls(self, data: bytes) -> None:
        assert self._tls is not None
        try:
            plaintext, eof = self._tls.decrypt(data)
        except ssl.SSLError as exc:
            self._fatal_error(exc)
            return
        self._pump_tls_output()  # session tickets, key updates, alerts
        if self._tls.plaintext:
            self._schedule_flush()  # writes held back by a renegotiation can go now
        if plaintext:
            self._deliver(plaintext)
        if eof and self._state is _OPEN:
            self._on_eof()

    def _deliver(self, data: bytes) -> None:
        try:
            self._protocol.data_received(data)
        except Exception as exc:
            self._protocol_failed("data_received", exc)

    def _on_eof(self) -> None:
        self._eof = True
        self._update_reading()
        try:
            keep_open = self._protocol.eof_received()
        except Exception as exc:
            self._protocol_failed("eof_received", exc)
            return
        if not keep_open:
            self.close()

    # -- writing ----------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._state is not _CLOSED:
            self._flush_scheduled = True
            self._loop.flush_before_poll(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._state is _CLOSED:
            return
        if not self._writing:
            self._write_out()
        else:
            # The poll of this pass found the kernel buffer still full (or the
            # writable callback already sent in this pass): a send now would only
            # fail with EAGAIN. That poll was the send attempt; judge after it.
            self._judge_write_buffer()

    def _on_writable(self) -> None:
        if self._state is not _CLOSED:
            self._write_out()

    def _write_out(self) -> None:
        """Send what the kernel takes now; watch for writability only if some remains."""
        if self._tls is not None and self._state is not _CONNECTING:
            self._tls.encrypt()
            self._pump_tls_output()
        error = self._send_pending()
        if error is not None:
            self._fatal_error(error)
            return
        if self._pending and not self._writing:
            self._writing = True
            self._loop.add_writer(self._sock, self._on_writable)
        elif not self._pending and self._writing:
            self._writing = False
            self._loop.remove_writer(self._sock)
        self._judge_write_buffer()
        if self._state is _CLOSING and self.get_write_buffer_size() == 0:
            self._force_close(None, linger=True)

    def _send_pending(self) -> OSError | None:
        pending = self._pending
        while pending:
            # The queue itself when it fits in one call (the common case).
            if len(pending) <= _IOV_MAX:
                buffers = pending
                size = self._pending_bytes
            else:
                buffers = pending[:_IOV_MAX]
                size = sum(map(len, buffers))
            try:
                sent = self._send_buffers(buffers)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:
                return exc
            if sent == self._pending_bytes:
                self._pending = _NO_OUTPUT
                self._pending_bytes = 0
                self._bytes_sent += sent
                return None
            self._consume(sent)
            if sent < size:
                return None  # the kernel buffer is full
            # _consume may have replaced a list shared with write_frames' caller
            # by its own copy: go on from that one, never from the caller's.
            pending = self._pending
        return None

    def _queue(self, chunks: Sequence[bytes]) -> None:
        # Never mutates _NO_OUTPUT (a tuple, so a slip would fail loudly), nor
        # a list that write_frames took from its caller.
        if self._pending:
            self._own_pending()
            self._pending.extend(chunks)
        else:
            self._pending, self._pending_shared = list(chunks), False

    def _own_pending(self) -> None:
        """Copy a list taken from write_frames' caller before changing it."""
        if self._pending_shared:
            self._pending, self._pending_shared = list(self._pending), False

    def _send_buffers(self, buffers: Sequence[bytes | memoryview]) -> int:
        """One system call: ``sendmsg`` (scatter/gather), else ``send`` of a joined chunk."""
        if len(buffers) == 1:  # the fan-out's usual case (one joined run): the lighter call
            return self._sock.send(buffers[0], _SEND_FLAGS)
        if _HAS_SENDMSG:
            return self._sock.sendmsg(buffers, (), _SEND_FLAGS)
        if len(buffers[0]) >= _FALLBACK_JOIN_BYTES:
            return self._sock.send(buffers[0])
        joined, size = [], 0
        for buffer in buffers:  # join small chunks only, so big ones are never re-copied
            if size + len(buffer) > _FALLBACK_JOIN_BYTES:
                break
            joined.append(buffer)
            size += len(buffer)
        return self._sock.send(b"".join(joined))

    def _consume(self, sent: int) -> None:
        # The unsent remainder stays as a memoryview slice: no copying, even for a
        # 50 MB buffer sent in 200 KB bites.
        self._pending_bytes -= sent
        self._bytes_sent += sent
        self._own_pending()
        pending = self._pending
        done = 0  # whole buffers sent: removed at once below
        while sent:
            head = pending[done]
            if len(head) <= sent:
                sent -= len(head)
                done += 1
            else:
                pending[done] = memoryview(head)[sent:]
                sent = 0
        del pending[:done]

    def _pump_tls_output(self) -> None:
        assert self._tls is not None
        data = self._tls.outgoing.read()
        if data:
            self._queue([data])
            self._pending_bytes += len(data)
            self._schedule_flush()

    def _judge_write_buffer(self) -> None:
        """Apply the hard limit and the water marks to what a send attempt left."""
        if self._state is _CONNECTING:
            return  # only the TLS handshake is queued, and no protocol exists yet
        unsent = self.get_write_buffer_size()
        hard = self._hard_limit
        if hard is not None and unsent > hard and not self._overflowed and self._state is _OPEN:
            self._overflowed = True
            self._overflow(unsent, hard)
            if self._state is not _OPEN:
                return
        if not self._protocol_paused and unsent > self._high_water:
            self._protocol_paused = True
            self._call_protocol("pause_writing")
        elif self._protocol_paused and unsent <= self._low_water:
            self._protocol_paused = False
            self._call_protocol("resume_writing")

    def _overflow(self, unsent: int, hard: int) -> None:
        try:
            handled = self._protocol.write_buffer_overflow()
        except Exception as exc:
            self._protocol_failed("write_buffer_overflow", exc)
            return
        if not handled and self._state is _OPEN:
            logger.info("%r: %d bytes unsent, over the hard limit of %d: aborting",
                        self, unsent, hard)
            self._force_close(ConnectionAbortedError(
                f"the peer left {unsent} bytes unsent, over the hard limit of {hard}"
            ))

    def _call_protocol(self, method: str) -> None:
        try:
            getattr(self._protocol, method)()
        except Exception:
            logger.exception("protocol.%s() failed", method)

    # -- closing ----------------------------------------------------------------------

    def _close_timed_out(self, timeout_s: float) -> None:
        logger.debug("%r: pending output not flushed in %s s; closing", self, timeout_s)
        self._force_close(TimeoutError("close() could not flush the pending output"))

    def _fatal_error(self, exc: BaseException) -> None:
        # Resets and broken pipes are routine on the Internet: one closed connection,
        # not an alarm. Anything else is a bug and deserves a traceback.
        if isinstance(exc, OSError):
            logger.debug("%r: connection lost: %r", self, exc)
        else:
            logger.error("%r: fatal error", self, exc_info=exc)
        self._force_close(exc)

    def _protocol_failed(self, method: str, exc: Exception) -> None:
        logger.error("protocol.%s() failed; aborting %r", method, self, exc_info=exc)
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None, *, linger: bool = False) -> None:
        """Close now, dropping output; connection_lost(exc) follows via call_soon if made.

        ``linger`` (a graceful close whose output is all sent) half-closes the
        socket and drains what the peer still sends before closing it: closing
        with unread input makes the kernel send a reset, which can destroy our
        last frames (an error reply, say) before the peer has read them.
        """
        if self._state is _CLOSED:
            return
        self._linger = linger
        protocol_made = self._state is not _CONNECTING
        self._state = _CLOSED
        for timer in (self._close_timer, self._handshake_timer):
            if timer is not None:
                timer.cancel()
        self._pending = _NO_OUTPUT
        self._pending_bytes = 0
        if self._tls is not None:
            self._tls.plaintext.clear()
            self._tls.plaintext_bytes = 0
        self._update_reading()
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._sock)
        if protocol_made:
            # Never re-entrantly: the protocol may be in the middle of write() or data_received.
            self._loop.call_soon(self._call_connection_lost, exc)
        else:
            self._sock.close()

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        except Exception:
            logger.exception("protocol.connection_lost() failed")
        finally:
            if self._linger:
                _linger_and_close(self._loop, self._sock)
            else:
                self._sock.close()


def _linger_and_close(loop: EventLoop, sock: socket.socket) -> None:
    """Send FIN, discard input until the peer's EOF (or LINGER_S), then close."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        sock.close()
        return

    def finish() -> None:
        timer.cancel()
        loop.remove_reader(sock)
        sock.close()

    def drain() -> None:
        try:
            data = sock.recv(RECV_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            finish()

    timer = loop.call_later(LINGER_S, finish)
    loop.add_reader(sock, drain)


def _shared_host(address: object) -> object:
    # Many clients share an address (a NAT, a proxy, a benchmark): one copy of
    # the host string serves them all.
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        return (sys.intern(address[0]), *address[1:])
    return address


def set_nodelay(sock: socket.socket) -> None:
    # Chat lines are small and latency-bound; Nagle would hold them back waiting for
    # ACKs. Coalescing in the transport already keeps segments full.
    with contextlib.suppress(OSError):  # not TCP (e.g. a Unix socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


