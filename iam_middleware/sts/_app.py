"""The token service as an ASGI app (Starlette routes, JSON in, JSON out), mountable at any path.

The app only moves bytes: it reads the body (bounded), builds the ``RequestView`` the facade authenticates, runs the
sans-IO operation in a worker thread (password hashing and shared-state round trips must not block the event loop)
and renders the answer or the ``IAMError``. Anything unexpected fails closed as a 403 that issues nothing.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .._asgi import request_view, source_ip
from .._exceptions import AccessDeniedError, AuthenticationError, BadRequestError, ConfigurationError, IAMError
from .._iam import IAM
from ._operations import OPERATIONS, Answer, Call, parse_body

__all__ = ["BodyTooLargeError", "TokenService", "token_service"]

logger = logging.getLogger("iam_middleware.sts")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed"}


class BodyTooLargeError(BadRequestError):
    """The request body is larger than the token service reads (``max_body_bytes``)."""

    status_code = 413
    code = "RequestEntityTooLarge"


class TokenService:
    """The token service (STS): login, logout, GetSessionToken, AssumeRole, AssumeRoleWithWebIdentity, revoke.

    Every endpoint is ``POST`` with a JSON body, below whatever path the service is mounted at
    (``Mount("/sts", app=TokenService(iam))``). Requests are authenticated and authorized by ``iam``; mount the
    service outside ``IAMMiddleware``'s protected routes (or mark the mount public), since each call checks its own
    ``sts:*`` permission.
    """

    def __init__(self, iam: IAM, *, max_body_bytes: int = 64 * 1024) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ConfigurationError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
        self.iam = iam
        self.max_body_bytes = max_body_bytes
        routes = [Route(path, self._endpoint(operation), methods=["POST"], name=path.strip("/"))
                  for path, operation in OPERATIONS.items()]
        self._app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})

    def __repr__(self) -> str:
        return f"TokenService(iam={self.iam!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def _endpoint(self, operation: Callable[[Call], Answer]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._run(request, operation)

        return endpoint

    async def _run(self, request: Request, operation: Callable[[Call], Answer]) -> Response:
        request_id = _request_id(request)
        try:
            raw = await _read_body(request, self.max_body_bytes)
            view = request_view(request.scope, raw)
            body = parse_body(raw, request.headers.get("content-type"))
            call = Call(self.iam, view, body, now=self.iam.clock(),
                        source_ip=source_ip(view, self.iam.settings.trusted_proxies), request_id=request_id)
            answer = await run_in_threadpool(operation, call)
        except IAMError as error:
            logger.info("sts %s refused (request %s): %s %s", request.url.path, request_id, error.status_code,
                        error.code)
            return _error(error, request_id)
        except Exception:  # noqa: BLE001 - fail closed: nothing was issued, and no 500 tells anything
            logger.exception("sts %s failed closed (request %s)", request.url.path, request_id)
            return _error(AccessDeniedError("The request could not be completed; nothing was issued.",
                                            code="RequestFailed"), request_id)
        headers = {**answer.headers, "Cache-Control": "no-store", "X-Request-Id": request_id}
        return JSONResponse(answer.body, headers=headers)


def token_service(iam: IAM, *, max_body_bytes: int = 64 * 1024) -> TokenService:
    """The token service ASGI app for ``iam``: mount it where you like (``Mount("/sts", app=token_service(iam))``)."""
    return TokenService(iam, max_body_bytes=max_body_bytes)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    return given if given is not None and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(f"The request body is larger than {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequestError("The client disconnected before sending the whole body.",
                              code="IncompleteBody") from None
    return b"".join(chunks)


def _challenge(error: AuthenticationError) -> str:
    if error.scheme == "AWS4-HMAC-SHA256":
        return "AWS4-HMAC-SHA256"
    if error.scheme == "Bearer":
        return 'Bearer realm="iam-middleware", error="invalid_token"'
    return f'{error.scheme} realm="iam-middleware"'


def _error(error: IAMError, request_id: str) -> JSONResponse:
    headers = {**error.headers, "Cache-Control": "no-store", "X-Request-Id": request_id}
    if isinstance(error, AuthenticationError) and not any(k.lower() == "www-authenticate" for k in error.headers):
        headers["WWW-Authenticate"] = _challenge(error)
    return JSONResponse({"error": error.code, "message": error.message, "request_id": request_id},
                        status_code=error.status_code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods, answered in the service's JSON error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    request_id = _request_id(request)
    headers = {**(exc.headers or {} if isinstance(exc, HTTPException) else {}), "X-Request-Id": request_id}
    message = ("No such operation: the token service takes POST to /login, /logout, /GetSessionToken, /AssumeRole, "
               "/AssumeRoleWithWebIdentity and /revoke.")
    return JSONResponse({"error": _HTTP_CODES.get(status, "BadRequest"), "message": message, "request_id": request_id},
                        status_code=status, headers=headers)
