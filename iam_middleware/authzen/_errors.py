"""The refusals of the AuthZEN endpoints that are theirs alone; every other refusal is the gate's own (401, 403, 503).

Each is an ``IAMError``, so it renders as every refusal of the project does (``gate.render``): the status, a stable
code and a message that names the member at fault, never a value that could be a credential.
"""

from __future__ import annotations

from .._exceptions import (
    BadRequestError,
    MalformedJSONError,
    MethodNotAllowedError,
    NotFoundError,
    UnsupportedMediaTypeError,
)

__all__ = ["InvalidEvaluationError", "MalformedJSONError", "MethodNotAllowedError", "NoSuchEndpointError",
           "UnsupportedMediaTypeError"]


class InvalidEvaluationError(BadRequestError):
    """A member of the request is missing, of the wrong type or out of range; the message names it by its path
    (``evaluations[1].resource.id``)."""

    code = "ValidationError"


#: A path below the AuthZEN app that is none of its endpoints.
NoSuchEndpointError = NotFoundError
