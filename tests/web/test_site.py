"""The web door's answers, sans-IO: files, caching, compression, headers, origins."""

from __future__ import annotations

import gzip

from chattycat.net.websocket import AcceptWebSocket, HttpRequest, HttpResponse
from chattycat.server.web_site import SECURITY_HEADERS, WebSite, normalize_origin
from tests.web.conftest import page_files

BIG_JS = b"export const x = 1;\n" * 200
SITE = WebSite({"index.html": b"<!doctype html><p>hi", "app.js": BIG_JS,
                "logo.png": b"\x89PNG" + bytes(2000)}, tls=False,
               allowed_origins=["https://Chat.Example.org:443/"])


def get(target: str, *headers: tuple[str, str], websocket: bool = False) -> HttpResponse:
    answer = SITE.answer(HttpRequest("GET", target, (("host", "127.0.0.1:8080"), *headers),
                                     websocket))
    assert isinstance(answer, HttpResponse)
    return answer


def header(response: HttpResponse, name: str) -> str | None:
    return dict(response.headers).get(name)


def upgrade(origin: str | None, host: str = "127.0.0.1:8080") -> HttpResponse | AcceptWebSocket:
    headers = [("host", host)] + ([("origin", origin)] if origin is not None else [])
    return SITE.answer(HttpRequest("GET", "/ws", tuple(headers), True))


def test_root_serves_the_page_with_its_content_type() -> None:
    response = get("/")
    assert response.status == 200
    assert header(response, "content-type") == "text/html; charset=utf-8"
    assert response.body.startswith(b"<!doctype html>")


def test_modules_are_javascript() -> None:
    assert header(get("/app.js"), "content-type") == "text/javascript; charset=utf-8"


def test_every_answer_carries_the_security_headers() -> None:
    for response in (get("/"), get("/missing"), get("/ws")):
        for name, value in SECURITY_HEADERS:
            assert header(response, name) == value
    csp = dict(SECURITY_HEADERS)["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp


def test_unknown_paths_and_traversal_are_not_found() -> None:
    for target in ("/missing", "/../pyproject.toml", "/%2e%2e/x", "//etc/passwd", "*"):
        assert get(target).status == 404


def test_a_matching_etag_gets_304_without_a_body() -> None:
    etag = header(get("/app.js"), "etag")
    assert etag and etag.startswith('"')
    response = get("/app.js", ("if-none-match", f'"nope", {etag}'))
    assert response.status == 304 and response.body == b""
    assert get("/app.js", ("if-none-match", '"other"')).status == 200


def test_files_are_revalidated_not_cached_blindly() -> None:
    assert header(get("/"), "cache-control") == "no-cache"


def test_gzip_when_asked_and_worth_it() -> None:
    response = get("/app.js", ("accept-encoding", "br, gzip;q=0.8"))
    assert header(response, "content-encoding") == "gzip"
    assert gzip.decompress(response.body) == BIG_JS
    assert header(response, "vary") == "accept-encoding"


def test_no_gzip_when_refused_or_small_or_already_compressed() -> None:
    assert header(get("/app.js", ("accept-encoding", "gzip;q=0")), "content-encoding") is None
    assert header(get("/app.js"), "content-encoding") is None
    small = get("/index.html", ("accept-encoding", "gzip"))
    assert header(small, "content-encoding") is None
    assert header(get("/logo.png", ("accept-encoding", "gzip")), "content-encoding") is None


def test_websocket_path_without_an_upgrade_is_426() -> None:
    assert get("/ws").status == 426


def test_upgrade_from_the_pages_own_origin_is_accepted() -> None:
    assert isinstance(upgrade("http://127.0.0.1:8080"), AcceptWebSocket)
    assert isinstance(upgrade("http://LOCALHOST", host="localhost:80"), AcceptWebSocket)


def test_upgrade_from_an_allowed_origin_is_accepted() -> None:
    assert isinstance(upgrade("https://chat.example.org"), AcceptWebSocket)


def test_upgrade_from_a_foreign_origin_is_403() -> None:
    for origin in ("http://evil.example", "https://127.0.0.1:8080", "null",
                   "http://127.0.0.1:8081", "http://chat.example.org"):
        answer = upgrade(origin)
        assert isinstance(answer, HttpResponse) and answer.status == 403, origin


def test_upgrade_without_origin_is_not_a_browser_and_is_accepted() -> None:
    assert isinstance(upgrade(None), AcceptWebSocket)


def test_origins_compare_in_rfc6454_form() -> None:
    assert normalize_origin("HTTPS://Chat.Example.org:443/path") == "https://chat.example.org"
    assert normalize_origin("http://[::1]:8080") == "http://[::1]:8080"


def test_the_packaged_page_has_its_files() -> None:
    files = page_files()
    for name in ("index.html", "style.css", "main.js", "session.js", "view.js", "link.js",
                 "commands.js"):
        assert name in files
    site = WebSite(files, tls=True)
    page = site.answer(HttpRequest("GET", "/", (), False))
    assert isinstance(page, HttpResponse) and b'type="module"' in page.body
    # No inline script or style: the CSP would block them, so the page must not need them.
    assert b"<script>" not in page.body and b"style=" not in page.body
