"""The TLS engine of a transport: an ``ssl.SSLObject`` between two memory BIOs.

Keeping TLS in memory (as asyncio's sslproto does) lets encrypted bytes go
through exactly the same write queue, coalescing and water marks as plain ones.
"""

from __future__ import annotations

import ssl

__all__ = ["TLS_RECV_CHUNK_BYTES", "TLSEngine"]

TLS_RECV_CHUNK_BYTES = 256 * 1024


class TLSEngine:
    """The TLS engine of one transport: an SSLObject between two memory BIOs."""

    def __init__(
        self, context: ssl.SSLContext, server_side: bool, server_hostname: str | None
    ) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(
            self.incoming, self.outgoing, server_side=server_side, server_hostname=server_hostname
        )
        # Application bytes not yet encrypted. Encrypting once per flush instead of
        # once per write() turns N small writes into one TLS record, not N.
        self.plaintext: list[bytes] = []
        self.plaintext_bytes = 0

    def do_handshake(self) -> bool:
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def encrypt(self) -> None:
        if not self.plaintext:
            return
        try:
            self.obj.write(b"".join(self.plaintext))
        except ssl.SSLWantReadError:
            return  # a TLS 1.2 renegotiation is under way; retried after the next read
        self.plaintext.clear()
        self.plaintext_bytes = 0

    def decrypt(self, data: bytes) -> tuple[bytes, bool]:
        """Feed ciphertext; return the plaintext now available and whether close_notify came."""
        if data:
            self.incoming.write(data)
        chunks: list[bytes] = []
        try:
            while chunk := self.obj.read(TLS_RECV_CHUNK_BYTES):
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            return b"".join(chunks), False
        except ssl.SSLZeroReturnError:
            pass
        return b"".join(chunks), True
