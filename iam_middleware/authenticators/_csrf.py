"""Cross-site request forgery defence for cookie sessions: unsafe requests must come from a trusted origin.

Browsers attach cookies to cross-site requests, but they also say where a request comes from (``Origin``, or
``Referer`` when ``Origin`` is missing) and a page cannot forge either. So a state-changing request that carries
the session cookie is accepted only from an allowed origin or the service's own. Requests without the cookie need
no check: a bearer token is never sent by a browser on its own. ``SameSite=Strict`` on the cookie is a second
layer, not a replacement (older browsers, same-site subdomains).
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from .._exceptions import AccessDeniedError, ConfigurationError
from .._request import RequestView
from ._sessions import _cookie_values

__all__ = ["CSRFError", "CSRFGuard", "check_csrf"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_HEADER_CHARS = 8192


class CSRFError(AccessDeniedError):
    """An unsafe request carrying the session cookie did not come from an allowed origin."""

    code = "CSRFCheckFailed"


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased, default port dropped; else ``None``."""
    if len(url) > _MAX_HEADER_CHARS or not url.isascii():
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if ":" in host:  # IPv6 literal: keep its brackets
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _allowed_origin(origin: object) -> str:
    """A configured origin in the normalised form ``_origin`` gives request headers."""
    if not isinstance(origin, str) or (parsed := _origin(origin)) is None:
        raise ConfigurationError(f"allowed origin {origin!r} must look like 'https://app.example.com[:port]'")
    parts = urlsplit(origin.strip())
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(f"allowed origin {origin!r} must not have a path, query or fragment")
    return parsed


class CSRFGuard:
    """Checks requests against a fixed set of allowed origins (validated once, here).

    The service's own origin (request scheme + ``Host``) is always allowed. Behind a proxy that terminates TLS
    or rewrites ``Host``, that is not the origin browsers see: list the public origin in ``allowed_origins``.
    """

    def __init__(self, *, allowed_origins: Collection[str], cookie_name: str) -> None:
        if isinstance(allowed_origins, str):
            raise ConfigurationError("allowed_origins must be a collection of origins, not one string")
        normalised = {_allowed_origin(origin) for origin in allowed_origins}
        if not isinstance(cookie_name, str) or not cookie_name:
            raise ConfigurationError("cookie_name must be the session cookie's name")
        self._allowed = frozenset(normalised)
        self._cookie_name = cookie_name

    def check(self, request: RequestView) -> None:
        """Return if the request is safe or not cookie-authenticated or from a trusted origin; else ``CSRFError``."""
        # Exact, case-sensitive match (RFC 9110 §9.1): anything else, "get" included, is treated as unsafe.
        if request.method in _SAFE_METHODS:
            return
        # The cookie's presence decides, not which credential the authenticator used: a request carrying both a
        # cookie and an Authorization header is checked too (fail closed).
        if not any(_cookie_values(request, self._cookie_name)):
            return
        origins = request.header_values("origin")
        if origins:
            # "null" (sandboxed frames, privacy redirects) and repeated headers parse to None.
            source = _origin(origins[0]) if len(origins) == 1 else None
        else:
            referers = request.header_values("referer")
            source = _origin(referers[0]) if len(referers) == 1 else None
        if source is not None and (source in self._allowed or source == self._own_origin(request)):
            return
        raise CSRFError(
            "cross-site request refused: a state-changing request with the session cookie must come from this "
            "site or an allowed origin (Origin or Referer header)"
        )

    @staticmethod
    def _own_origin(request: RequestView) -> str | None:
        hosts = request.header_values("host")
        if len(hosts) != 1 or not hosts[0] or "/" in hosts[0] or "@" in hosts[0]:
            return None
        return _origin(f"{request.scheme}://{hosts[0]}")


def check_csrf(request: RequestView, *, allowed_origins: Collection[str], cookie_name: str) -> None:
    """One-shot form of ``CSRFGuard(...).check(request)``; build a ``CSRFGuard`` once to validate config at startup."""
    CSRFGuard(allowed_origins=allowed_origins, cookie_name=cookie_name).check(request)
