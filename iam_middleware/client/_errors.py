"""The client's one error: the token service refused a call, or answered something it never answers."""

from __future__ import annotations

__all__ = ["TokenServiceError"]


class TokenServiceError(Exception):
    """A call to the token service failed: its HTTP status, its error ``code`` (``AccessDenied``,
    ``InvalidLogin``, ``ValidationError``, ... or ``InvalidResponse`` for an answer that is not the service's JSON),
    its message (which never holds a secret) and its request id."""

    def __init__(self, status_code: int, code: str, message: str, *, request_id: str | None = None) -> None:
        super().__init__(f"{code} (HTTP {status_code}): {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.request_id = request_id
