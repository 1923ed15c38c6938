"""The token service as an ASGI app (Starlette routes, JSON in, JSON out; AWS's Query API at the root, XML out),
mountable at any path.

The app only translates: the gate (``iam_middleware.gate``) gives the request its id, clock, caller address and
body limit, the sans-IO operation runs in a worker thread (password hashing and shared-state round trips must not
block the event loop), and a refusal is the gate's. Anything unexpected fails closed as a 403 that issues nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .._exceptions import ConfigurationError, IAMError
from .._iam import IAM
from ..asgi import read_body, request_view
from ..gate import Gate, Reply, RequestContext
from ..routing import PUBLIC
from ._handle import handle, not_routed, refused
from ._jwks import JWKS_PATH, jwks_reply
from ._operations import OPERATIONS, Answer, Call
from ._query import handle_query, query_refused

__all__ = ["TokenService", "token_service"]

# How a call whose body was read is answered: the JSON operations (``handle``) or the Query API (``handle_query``).
_Answer = Callable[[Gate, RequestContext, bytes, "str | None"], Reply]


class TokenService:
    """The token service (STS): login, logout, GetSessionToken, AssumeRole, AssumeRoleWithWebIdentity, revoke.

    Every endpoint is ``POST`` with a JSON body, below whatever path the service is mounted at
    (``Mount("/sts", app=TokenService(iam))``); the root (``/sts/``) speaks AWS STS's Query API (``_query``).
    Requests are authenticated and authorized by ``iam``; mount the service outside ``IAMMiddleware``'s protected
    routes (or mark the mount public), since each call checks its own ``sts:*`` permission.
    """

    # Public to the route audit and the middleware: each call authenticates and authorizes its own sts:* action.
    __iam_permission__ = PUBLIC

    def __init__(self, iam: IAM, *, max_body_bytes: int = 64 * 1024) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ConfigurationError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
        self.iam = iam
        self.max_body_bytes = max_body_bytes
        self.gate = Gate(iam, max_body_bytes=max_body_bytes)
        routes = [Route(path, self._endpoint(operation), methods=["POST"], name=path.strip("/"))
                  for path, operation in OPERATIONS.items()]
        routes.append(Route(JWKS_PATH, self._jwks, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
                            name="jwks"))
        # Every method reaches the Query API, so a wrong one is refused in its XML, as in the WSGI shells.
        routes.append(Route("/", self._query, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], name="query"))
        self._app = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})

    def __repr__(self) -> str:
        return f"TokenService(iam={self.iam!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def _endpoint(self, operation: Callable[[Call], Answer]) -> Callable[[Request], Awaitable[Response]]:
        def answer(gate: Gate, context: RequestContext, raw: bytes, content_type: str | None) -> Reply:
            return handle(gate, context, operation, raw, content_type)

        async def endpoint(request: Request) -> Response:
            return await self._run(request, answer, refused)

        return endpoint

    async def _jwks(self, request: Request) -> Response:
        return _response(jwks_reply(self.gate, self.gate.begin(request_view(request.scope))))

    async def _query(self, request: Request) -> Response:
        return await self._run(request, handle_query, query_refused)

    async def _run(self, request: Request, answer: _Answer, refuse: Callable[[Gate, RequestContext, IAMError], Reply]
                   ) -> Response:
        """Read the body (bounded by the gate), then ``answer`` it in a worker thread; ``refuse`` a body too large."""
        gate = self.gate
        context = gate.begin(request_view(request.scope))
        try:
            raw = await read_body(request.receive, gate) if context.error is None else b""
        except IAMError as error:
            return _response(refuse(gate, context, error))
        return _response(await run_in_threadpool(answer, gate, context, raw, request.headers.get("content-type")))

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        """Unknown paths and methods: the gate's refusal, as every other answer of the service."""
        context = self.gate.begin(request_view(request.scope))
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return _response(not_routed(self.gate, context, method_allowed=status != 405))


def token_service(iam: IAM, *, max_body_bytes: int = 64 * 1024) -> TokenService:
    """The token service ASGI app for ``iam``: mount it where you like (``Mount("/sts", app=token_service(iam))``)."""
    return TokenService(iam, max_body_bytes=max_body_bytes)


def _response(reply: Reply) -> Response:
    response = Response(reply.body, status_code=reply.status)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
    return response
