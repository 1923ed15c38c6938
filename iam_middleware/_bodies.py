"""JSON request bodies: the one reader of every JSON endpoint (the token service, the AuthZEN endpoints)."""

from __future__ import annotations

from typing import Any

from ._exceptions import MalformedJSONError, UnsupportedMediaTypeError
from ._json import JSONError, loads

__all__ = ["json_object"]


def json_object(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object ``raw`` holds, read by the project's one strict parser. Requiring ``application/json`` also
    keeps browsers from sending the call cross-site without a CORS preflight."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaTypeError("Send the request body as JSON with Content-Type: application/json.")
    try:
        data = loads(raw)
    except JSONError as exc:
        raise MalformedJSONError(f"The request body is not valid UTF-8 JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise MalformedJSONError("The request body must be a JSON object.")
    return data
