"""From a gateway's authorization subrequest to the original request it asks about (sans-IO).

nginx ``auth_request`` sends a subrequest of its own (a ``GET`` to the authorizer's location, without the body) that
carries the client's headers plus what the configuration sets: ``X-Original-Method``, ``X-Original-URI``
(``$request_uri``: the target exactly as the client sent it, which ``proxy_pass`` without a URI part hands to the
upstream unchanged) or ingress-nginx's ``X-Original-URL`` (``$scheme://$http_host$request_uri``),
``X-Original-Framing`` (the protocol and the client's ``Content-Length`` and ``Transfer-Encoding``, which nginx
itself drops from the subrequest) and ``X-Original-Upgrade`` (the client's ``Upgrade``, which nginx drops too).
Envoy's ``ext_authz`` HTTP service mirrors the original request: its method, its raw path below a prefix, the
headers the filter allows and, with ``with_request_body``, its body.

Either way the result is the ``RequestView`` of the original request, which the gate decides as it decides any
other: the original method, raw target and headers, the gateway as the peer (so ``X-Forwarded-For`` counts only when
the gateway is one of ``trusted_proxies``) and the original scheme when a trusted gateway states it. ``body`` is the
original body when the gateway forwarded it whole (``b""`` when it is known to be empty), else None: a signature
over a payload that did not come along cannot be verified. docs/gateways.md says what each gateway forwards.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from .._exceptions import BadRequestError
from .._request import Network, RequestView

__all__ = ["BODY_DECLARATION", "InvalidSubrequestError", "from_envoy", "from_nginx"]

#: The header an Envoy configuration adds to every check request (``headers_to_add``) when it forwards bodies
#: (``with_request_body``): only then does a check request without a body stand for a request without one.
BODY_DECLARATION = "x-iam-request-body"
_PARTIAL_BODY = "x-envoy-auth-partial-body"
# What the nginx configuration sets for the authorizer alone: never part of the original request.
_NGINX_ONLY = frozenset({"x-original-method", "x-original-uri", "x-original-url", "x-original-framing",
                         "x-original-upgrade"})
_ENVOY_ONLY = frozenset({BODY_DECLARATION, _PARTIAL_BODY})
# "$server_protocol length=$http_content_length encoding=$http_transfer_encoding": nginx has validated
# Content-Length (digits, once) before any access check runs, so the three parts cannot run into each other.
_FRAMING = re.compile(r"(HTTP/\d(?:\.\d)?) length=(\d*) encoding=(.*)", re.ASCII)
# HTTP/1.x frames a body only with Content-Length or Transfer-Encoding; HTTP/2 and 3 may send one with neither.
_LENGTH_OPTIONAL = frozenset({"HTTP/1.0", "HTTP/1.1"})
_SCHEMES = frozenset({"http", "https"})


class InvalidSubrequestError(BadRequestError):
    """The subrequest lacks (or repeats) what the gateway's configuration must set: docs/gateways.md."""

    code = "InvalidSubrequest"


def from_nginx(sub: RequestView, trusted: Sequence[Network]) -> RequestView:
    """The original request of an nginx ``auth_request`` subrequest (or of ingress-nginx's ``auth-url`` one)."""
    method = _single(sub, "x-original-method")
    if method is None:
        raise InvalidSubrequestError("The subrequest carries no X-Original-Method; set it to $request_method.")
    url = _single(sub, "x-original-url")
    uri = _single(sub, "x-original-uri")
    headers = [(name, value) for name, value in sub.headers if name not in _NGINX_ONLY]
    scheme = _forwarded_scheme(sub, trusted)
    if url is not None:
        url_scheme, authority, target = _split_url(url)
        if uri is not None and uri != target:
            raise InvalidSubrequestError("X-Original-URL and X-Original-URI name different requests.")
        # ingress-nginx sends the authorizer's own name as Host: the client's is in the URL.
        headers = [(name, value) for name, value in headers if name != "host"]
        headers.insert(0, ("host", authority))
        if _trusted(sub.client_host, trusted):
            scheme = url_scheme
    elif uri is not None:
        target = uri
    else:
        raise InvalidSubrequestError("The subrequest carries neither X-Original-URI ($request_uri) nor "
                                     "X-Original-URL.")
    if not target.startswith("/"):
        raise InvalidSubrequestError("The original request target must be a path starting with '/'.")
    body, framing = _nginx_body(_single(sub, "x-original-framing"))
    headers.extend(framing)
    upgrade = _single(sub, "x-original-upgrade")
    if upgrade:
        # nginx never passes Upgrade to a subrequest: $http_upgrade says the original asked for one (a websocket).
        headers.append(("upgrade", upgrade))
    if not sub.header_values("x-forwarded-for"):
        # X-Real-IP ($remote_addr) is one hop of X-Forwarded-For: it counts only from a trusted gateway, as that does.
        real_ip = _single(sub, "x-real-ip")
        if real_ip is not None:
            headers.append(("x-forwarded-for", real_ip))
    path, _, query = target.partition("?")
    return RequestView(method=method, raw_path=path.encode("latin-1"), query_string=query.encode("latin-1"),
                       headers=tuple(headers), client_host=sub.client_host, scheme=scheme, body=body)


def from_envoy(sub: RequestView, raw_path: bytes, trusted: Sequence[Network]) -> RequestView:
    """The original request of an Envoy ``ext_authz`` check request whose path, below the prefix, is ``raw_path``;
    ``sub.body`` is the check request's body."""
    if not raw_path.startswith(b"/"):
        raise InvalidSubrequestError("The check request's path must be the original path below the prefix.")
    headers = [(name, value) for name, value in sub.headers if name not in _ENVOY_ONLY]
    body = _envoy_body(sub)
    if body is None:
        # Content-Length describes the check request; the original's did not come along.
        headers = [(name, value) for name, value in headers if name != "content-length"]
    return RequestView(method=sub.method, raw_path=raw_path, query_string=sub.query_string, headers=tuple(headers),
                       client_host=sub.client_host, scheme=_forwarded_scheme(sub, trusted), body=body)


def _envoy_body(sub: RequestView) -> bytes | None:
    """The original body when Envoy forwarded it whole, else None. Only a configuration that declares it forwards
    bodies is believed: without ``with_request_body`` a request with a body and one without look alike."""
    if _single(sub, BODY_DECLARATION) != "forwarded":
        return None
    partial = _single(sub, _PARTIAL_BODY)
    if partial == "false":
        return sub.body
    if partial is None and not sub.body:
        return b""  # Envoy adds the partial-body header only when the request had a body to buffer
    return None  # cut at max_request_bytes: what the upstream gets was not all seen


def _nginx_body(framing: str | None) -> tuple[bytes | None, list[tuple[str, str]]]:
    """(b"" when the original request is known to have no body, else None; its framing headers, restored as the
    client sent them so a signature that covers them verifies)."""
    found = _FRAMING.fullmatch(framing) if framing is not None else None
    if found is None:
        return None, []
    protocol, length, encoding = found.groups()
    restored = [(name, value) for name, value in (("content-length", length), ("transfer-encoding", encoding))
                if value]
    empty = not encoding and (length == "0" or (not length and protocol in _LENGTH_OPTIONAL))
    return (b"" if empty else None), restored


def _forwarded_scheme(sub: RequestView, trusted: Sequence[Network]) -> str:
    """``X-Forwarded-Proto`` from a trusted gateway, else ``http`` (never taken for https on a client's word)."""
    if not _trusted(sub.client_host, trusted):
        return "http"
    stated = (_single(sub, "x-forwarded-proto") or "").lower()
    return stated if stated in _SCHEMES else "http"


def _split_url(url: str) -> tuple[str, str, str]:
    """(scheme, authority, target) of ``scheme://authority/target``, the target as sent (not normalized)."""
    scheme, separator, rest = url.partition("://")
    authority, slash, target = rest.partition("/")
    if not separator or scheme.lower() not in _SCHEMES or not authority or not slash:
        raise InvalidSubrequestError("X-Original-URL must be an absolute http(s) URL with a path.")
    return scheme.lower(), authority, "/" + target


def _single(sub: RequestView, name: str) -> str | None:
    values = sub.header_values(name)
    if len(values) > 1:
        raise InvalidSubrequestError(f"The subrequest carries {name} more than once.")
    return values[0] if values else None


def _trusted(peer: str | None, trusted: Sequence[Network]) -> bool:
    if peer is None or not trusted:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)
