"""From the two standard server interfaces to the gate's ``RequestView``: an ASGI scope, a WSGI environ.

Framework-free (ASGI and WSGI are specifications, not frameworks), so every shell translates the same way: the raw
path as the client sent it where the server passes it, never decoded twice; headers lower-cased, repeats kept in
arrival order; the method exactly as received (the gate refuses one that is not upper case).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from ._request import RequestView

__all__ = ["from_asgi_scope", "from_wsgi_environ"]

# What clients leave unencoded in a path (RFC 3986 pchar), for servers that do not pass the raw request target.
_PATH_SAFE = "/:@!$&'()*+,;=~"
# WSGI servers put these two in CONTENT_TYPE and CONTENT_LENGTH; an HTTP_ copy of either is not a header.
_NOT_HEADERS = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})


def from_asgi_scope(scope: Mapping[str, Any], body: bytes | None = None) -> RequestView:
    """The view of an ASGI ``http`` or ``websocket`` scope. ``raw_path`` is optional in ASGI; without it the decoded
    path is encoded again, so nothing downstream decodes it a second time (a decoded ``%41`` must not become
    ``A``). A websocket handshake has no body: ``b""``."""
    client = scope.get("client")
    if body is None and scope["type"] == "websocket":
        body = b""
    raw_path = scope.get("raw_path") or quote(scope.get("path", "/"), safe=_PATH_SAFE).encode("ascii")
    return RequestView(
        method=scope.get("method", "GET") if scope["type"] == "http" else "GET",
        raw_path=raw_path,
        query_string=scope.get("query_string", b""),
        headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())),
        client_host=client[0] if client else None,
        scheme=scope.get("scheme", "http"),
        body=body,
    )


def from_wsgi_environ(environ: Mapping[str, Any], *, scheme: str | None = None, body: bytes | None = None
                      ) -> RequestView:
    """The view of a WSGI environ: the raw request target when the server passes it (``RAW_URI`` /
    ``REQUEST_URI``: Werkzeug, gunicorn, uWSGI, mod_wsgi; an absolute-form target of a proxy gives its path), else
    the re-quoted ``SCRIPT_NAME`` + ``PATH_INFO``. ``scheme`` overrides ``wsgi.url_scheme`` where the framework
    knows better (a trusted proxy's header)."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target:
        path = str(target).partition("?")[0]
        if not path.startswith("/"):
            path = urlsplit(path).path or "/"
        raw_path = path.encode("latin-1")
    else:
        full = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        raw_path = quote(full.encode("latin-1"), safe=_PATH_SAFE).encode("ascii") or b"/"
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in _NOT_HEADERS:
            headers.append((key[5:].replace("_", "-").lower(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower(), str(value)))
    return RequestView(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        raw_path=raw_path,
        query_string=str(environ.get("QUERY_STRING", "")).encode("latin-1"),
        headers=tuple(headers),
        client_host=environ.get("REMOTE_ADDR"),
        scheme=scheme or str(environ.get("wsgi.url_scheme", "http")),
        body=body,
    )
