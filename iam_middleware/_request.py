"""RequestView: a framework-neutral, immutable view of an HTTP request, built by the ASGI and WSGI shells."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RequestView"]

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
