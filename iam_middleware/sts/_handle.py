"""One token-service call from read body to answer, for every shell (the ASGI app, the Flask blueprint).

Sans-IO and synchronous: the shell reads the body (bounded by the gate's limit) and sends the answer; ``handle``
runs the operation (in a worker thread under ASGI: password hashing and shared-state round trips block). Every
answer says ``Cache-Control: no-store``: credentials are never cached by anyone on the way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from .._exceptions import AccessDeniedError, IAMError, MethodNotAllowedError, NotFoundError
from ..gate import Gate, Reply, RequestContext
from ._operations import OPERATIONS, Answer, Call, parse_body

__all__ = ["NOT_FOUND_MESSAGE", "MethodNotAllowedError", "NoSuchOperationError", "handle", "not_routed", "refused"]

logger = logging.getLogger("iam_middleware.sts")

NOT_FOUND_MESSAGE = ("No such operation: the token service takes POST to "
                     + ", ".join(OPERATIONS) + ".")


#: A path of the token service that names no operation.
NoSuchOperationError = NotFoundError


def handle(gate: Gate, context: RequestContext, operation: Callable[[Call], Answer], raw: bytes,
           content_type: str | None) -> Reply:
    """Run ``operation`` on a request whose body was read: the JSON answer, or the gate's refusal. Never raises."""
    try:
        if context.error is not None:
            raise context.error
        call = Call(gate.iam, context.request.with_body(raw), parse_body(raw, content_type), now=context.now,
                    source_ip=context.source_ip, request_id=context.request_id)
        answer = operation(call)
    except IAMError as error:
        logger.info("sts %s refused (request %s): %s %s", context.path, context.request_id, error.status_code,
                    error.code)
        return refused(gate, context, error)
    except Exception:  # noqa: BLE001 - fail closed: nothing was issued, and no 500 tells anything
        logger.exception("sts %s failed closed (request %s)", context.path, context.request_id)
        return refused(gate, context, AccessDeniedError("The request could not be completed; nothing was issued.",
                                                        code="RequestFailed"))
    payload = json.dumps(answer.body).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(payload))),
               *((name.lower(), value) for name, value in answer.headers.items()),
               ("cache-control", "no-store"), ("x-request-id", context.request_id)]
    return Reply(200, headers, payload)


def not_routed(gate: Gate, context: RequestContext, *, method_allowed: bool) -> Reply:
    """The refusal of a call that reaches no operation: an unknown path (404) or a method other than POST (405)."""
    if method_allowed:
        return refused(gate, context, NoSuchOperationError(NOT_FOUND_MESSAGE))
    return refused(gate, context, MethodNotAllowedError(NOT_FOUND_MESSAGE, headers={"Allow": "POST"}))


def refused(gate: Gate, context: RequestContext, error: IAMError) -> Reply:
    """The gate's refusal of a token-service call (recorded), never cached."""
    status, headers, body = gate.render(gate.refuse(context, error))
    return Reply(status, [*headers, ("cache-control", "no-store")], body)
