"""RequestView: a framework-neutral, immutable view of an HTTP request, built by the ASGI and WSGI shells."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Network", "RequestView", "resolve_source_ip"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "x-amz-security-token", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class RequestView:
    """What authenticators read. Paths and query are the raw bytes as received, never re-encoded.

    ``headers`` keeps every header in arrival order with lower-case names (duplicates kept, as SigV4
    needs them). ``body`` is ``None`` when the shell did not buffer it (no authenticator asked for it).
    The header lookups read one multi-map, built on the first lookup of the request and kept with it (the view is
    immutable, so it can never go stale): a request's headers are looked up several times, once per step.
    """

    method: str
    raw_path: bytes
    query_string: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    client_host: str | None = None
    scheme: str = "http"
    body: bytes | None = None
    # Derived from ``headers`` on first use (never an input: not compared, not shown, not copied by ``replace``).
    _by_name: dict[str, list[str]] | None = field(default=None, init=False, repr=False, compare=False)
    _derived: dict[str, object] | None = field(default=None, init=False, repr=False, compare=False)

    def derived(self) -> dict[str, object]:
        """Values the steps of one request derive from this view's own fields (a parsed query), kept with it so
        the next step does not derive them again. Only pure functions of the view's fields may be stored: the
        view is immutable, so they never go stale; ``with_body`` starts a new memo."""
        memo = self._derived
        if memo is None:
            memo = {}
            object.__setattr__(self, "_derived", memo)
        return memo

    def with_body(self, body: bytes) -> RequestView:
        """The same request with its body read (its header index carried over: the headers are the same)."""
        view = RequestView(method=self.method, raw_path=self.raw_path, query_string=self.query_string,
                           headers=self.headers, client_host=self.client_host, scheme=self.scheme, body=body)
        object.__setattr__(view, "_by_name", self._by_name)
        return view

    def _index(self) -> dict[str, list[str]]:
        index = self._by_name
        if index is None:
            index = {}
            for key, value in self.headers:
                found = index.get(key)
                if found is None:
                    index[key] = [value]
                else:
                    found.append(value)
            object.__setattr__(self, "_by_name", index)  # a cache of a frozen view's own headers
        return index

    def header(self, name: str) -> str | None:
        """The value of a header, or ``None``. Repeated headers are joined with ``,`` (RFC 9110)."""
        index = self._by_name if self._by_name is not None else self._index()
        values = index.get(name.lower())
        if not values:
            return None
        return values[0] if len(values) == 1 else ",".join(values)

    def header_values(self, name: str) -> list[str]:
        """Every value of a header, in arrival order (a new list: the caller may change it)."""
        index = self._by_name if self._by_name is not None else self._index()
        values = index.get(name.lower())
        return list(values) if values else []

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
