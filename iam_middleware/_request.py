"""RequestView: a framework-neutral, immutable view of an HTTP request, built by the ASGI and WSGI shells."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["Network", "RequestView", "resolve_source_ip"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "x-amz-security-token", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class RequestView:
    """What authenticators read. Paths and query are the raw bytes as received, never re-encoded.

    ``headers`` keeps every header in arrival order with lower-case names (duplicates kept, as SigV4
    needs them). ``body`` is ``None`` when the shell did not buffer it (no authenticator asked for it).
    """

    method: str
    raw_path: bytes
    query_string: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    client_host: str | None = None
    scheme: str = "http"
    body: bytes | None = None

    def with_body(self, body: bytes) -> RequestView:
        """The same request with its body read."""
        return replace(self, body=body)

    def header(self, name: str) -> str | None:
        """The value of a header, or ``None``. Repeated headers are joined with ``,`` (RFC 9110)."""
        values = self.header_values(name)
        if not values:
            return None
        return ",".join(values)

    def header_values(self, name: str) -> list[str]:
        """Every value of a header, in arrival order."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def __repr__(self) -> str:
        shown = tuple((k, "********" if k in _SENSITIVE_HEADERS else v) for k, v in self.headers)
        return (
            f"RequestView(method={self.method!r}, raw_path={self.raw_path!r}, query_string={self.query_string!r}, "
            f"headers={shown!r}, client_host={self.client_host!r}, scheme={self.scheme!r})"
        )


def resolve_source_ip(request: RequestView, trusted: Sequence[Network]) -> str | None:
    """``aws:SourceIp``: the peer address; when the peer is a trusted proxy, the right-most ``X-Forwarded-For`` hop
    that is not itself a trusted proxy. Forwarded headers from anyone else are ignored. A forwarded chain that cannot
    be read gives None (the key is absent), never the proxy's own address, which IP conditions might allow."""
    peer = request.client_host
    if not trusted or peer is None or not _in(peer, trusted):
        return peer
    hops = [h.strip() for v in request.header_values("x-forwarded-for") for h in v.split(",")]
    if not hops:
        return peer
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not any(address in network for network in trusted):
            return str(address)
    # Every hop is one of our proxies: the left-most is where the request came from.
    return str(ipaddress.ip_address(hops[0]))


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
