"""Whether a request's body is in memory, so the request can be hashed now and sent again after a refusal."""

from __future__ import annotations

import httpx

__all__ = ["body_in_memory"]


def body_in_memory(request: httpx.Request) -> bytes | None:
    """The body when httpx holds it (bytes, JSON, form data, or a stream already read), ``None`` for a stream."""
    try:
        return request.content
    except httpx.RequestNotRead:
        return None
