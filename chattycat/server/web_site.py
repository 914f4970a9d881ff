"""What the web door answers to each HTTP request: sans-IO, tested without sockets.

The page is a handful of static files read once at start-up; each is kept
with its ETag and, where it pays, a gzip copy. :meth:`WebSite.answer` maps a
request head to a response or to "accept this WebSocket", applying the rules
that make the page safe to serve on a public port:

- every response carries the security headers (:data:`SECURITY_HEADERS`): a
  Content-Security-Policy that allows only the page's own scripts, styles and
  socket (no inline code, so an injected ``<script>`` or ``onerror`` would not
  run even if one got into the DOM), no framing, no MIME sniffing, no referrer;
- files are revalidated on every load (``no-cache`` + ``ETag``): the names
  carry no content hash (there is no build step), so a longer cache would
  serve a stale page after an upgrade, and a 304 costs one round trip;
- the WebSocket upgrade at ``/ws`` is refused (403) unless its ``Origin`` is
  the page's own or one the operator allowed (``--web-origin``): browsers send
  cookies and credentials with a cross-site WebSocket, and only this check
  stops another site from chatting in a visitor's name.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from chattycat.net.websocket import AcceptWebSocket, HttpRequest, HttpResponse

__all__ = ["SECURITY_HEADERS", "StaticFile", "WebSite", "normalize_origin"]

WEBSOCKET_PATH = "/ws"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}
# Compressing pays for text above a packet or so, when it saves a tenth or more.
GZIP_MIN_BYTES = 1024
GZIP_MIN_SAVING = 0.1
CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file of the page, ready to send."""

    content_type: str
    body: bytes
    etag: str
    gzipped: bytes | None  # None when compressing would not pay

    @classmethod
    def build(cls, name: str, body: bytes) -> StaticFile:
        """Type, ETag and gzip copy of ``body`` served as ``name``."""
        suffix = name[name.rfind("."):] if "." in name else ""
        content_type = CONTENT_TYPES.get(suffix, "application/octet-stream")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        gzipped: bytes | None = None
        if len(body) >= GZIP_MIN_BYTES and not content_type.startswith("image/png"):
            packed = gzip.compress(body, mtime=0)  # mtime=0: the same bytes on every start
            if len(packed) <= len(body) * (1 - GZIP_MIN_SAVING):
                gzipped = packed
        return cls(content_type, body, etag, gzipped)


def normalize_origin(origin: str) -> str:
    """``https://Chat.Example.org:443/`` -> ``https://chat.example.org`` (RFC 6454 form)."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class WebSite:
    """The page's files and the rules for answering requests for them."""

    def __init__(self, files: Mapping[str, bytes], *, tls: bool,
                 allowed_origins: Iterable[str] = ()) -> None:
        self.files = {name: StaticFile.build(name, body) for name, body in files.items()}
        self.tls = tls
        self.allowed_origins = frozenset(normalize_origin(o) for o in allowed_origins)

    def answer(self, request: HttpRequest) -> HttpResponse | AcceptWebSocket:
        """The response to one request head."""
        path = urlsplit(request.target).path
        if path == WEBSOCKET_PATH:
            return self._websocket(request)
        if path == "/":
            path = "/index.html"
        static = self.files.get(path.lstrip("/")) if path.startswith("/") else None
        if static is None:
            return _plain(404, "not found")
        return self._static(request, static)

    def origin_allowed(self, request: HttpRequest) -> bool:
        """Whether a WebSocket upgrade comes from the page itself or an allowed origin.

        A request without ``Origin`` is not from a browser (browsers always send
        it with a WebSocket): such a program could claim any origin anyway, so
        the check, which protects visitors' browsers, does not apply to it.
        """
        origin = request.header("origin")
        if origin is None:
            return True
        try:
            origin = normalize_origin(origin)
        except ValueError:
            return False
        if origin in self.allowed_origins:
            return True
        host = request.header("host")
        if host is None:
            return False
        scheme = "https" if self.tls else "http"
        try:
            return origin == normalize_origin(f"{scheme}://{host}")
        except ValueError:
            return False

    def _websocket(self, request: HttpRequest) -> HttpResponse | AcceptWebSocket:
        if not request.websocket:
            return _plain(426, "this address takes WebSocket connections only",
                          (("upgrade", "websocket"),))
        if not self.origin_allowed(request):
            return _plain(403, "this origin may not open a chat connection")
        return AcceptWebSocket()

    def _static(self, request: HttpRequest, static: StaticFile) -> HttpResponse:
        headers = [*SECURITY_HEADERS, ("content-type", static.content_type),
                   ("cache-control", "no-cache"), ("etag", static.etag)]
        if static.gzipped is not None:
            headers.append(("vary", "accept-encoding"))
        if _etag_matches(request.header("if-none-match"), static.etag):
            return HttpResponse(304, tuple(h for h in headers if h[0] != "content-type"))
        if static.gzipped is not None and _accepts_gzip(request.header("accept-encoding")):
            headers.append(("content-encoding", "gzip"))
            return HttpResponse(200, tuple(headers), static.gzipped)
        return HttpResponse(200, tuple(headers), static.body)


def _plain(status: int, text: str, extra: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    headers = (*SECURITY_HEADERS, ("content-type", "text/plain; charset=utf-8"),
               ("cache-control", "no-store"), *extra)
    return HttpResponse(status, headers, (text + "\n").encode())


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _accepts_gzip(header: str | None) -> bool:
    """RFC 9110 section 12.5.3, enough of it: ``gzip`` listed without ``q=0``."""
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().replace(" ", "")
            return q not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
