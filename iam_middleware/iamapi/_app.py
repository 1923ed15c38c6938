"""The IAM API as an ASGI app, mountable at any path: every method at every path below the mount reaches the one
Query endpoint (``IAMService.handle``), as AWS's IAM endpoint takes calls at its root.

The app only translates: the gate gives the request its id, clock, caller address and body limit; the call runs
in a worker thread (a change takes the directory's write lock, password hashing is slow); a refusal is the gate's,
in AWS's XML.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from .._exceptions import ConfigurationError, IAMError, MethodNotAllowedError
from .._iam import IAM
from ..asgi import read_body, request_view, serve_replies
from ..directory.sql import SQLDirectory, SQLDirectoryReloader
from ..gate import Reply
from ..routing import PUBLIC
from ._handle import IAMService

__all__ = ["IAMAPI", "iam_api"]


class IAMAPI:
    """IAM's Query API for ``directory``, its callers decided by ``iam`` (see ``IAMService``). Mount it where you
    like: ``Mount("/iam", app=IAMAPI(reloader.iam, directory))``, or ``iam_api(reloader)``. Each call checks its
    own ``iam:*`` permission, so mount it outside ``IAMMiddleware``'s protected routes (or mark it public)."""

    # Public to the route audit and the middleware: each call authenticates and authorizes its own iam:* action.
    __iam_permission__ = PUBLIC

    def __init__(self, iam: IAM, directory: SQLDirectory, *, max_body_bytes: int = 256 * 1024) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ConfigurationError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
        self.service = IAMService(iam, directory, max_body_bytes=max_body_bytes)

    def __repr__(self) -> str:
        return f"IAMAPI(directory={self.service.directory!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_replies(scope, receive, send, self._reply)

    async def _reply(self, scope: Scope, receive: Receive) -> Reply:
        service = self.service
        gate = service.gate
        context = gate.begin(request_view(scope))
        if context.error is None and scope["method"] != "POST":
            return service.refused(context, MethodNotAllowedError("The IAM API takes POST.",
                                                                  headers={"Allow": "POST"}))
        try:
            raw = await read_body(receive, gate) if context.error is None else b""
        except IAMError as error:
            return service.refused(context, error)
        content_type = context.request.header("content-type")
        return await run_in_threadpool(service.handle, context, raw, content_type)


def iam_api(reloader: SQLDirectoryReloader, *, max_body_bytes: int = 256 * 1024) -> IAMAPI:
    """The IAM API of the directory a reloader serves: ``Mount("/iam", app=iam_api(reloader))``. A change made
    through it is in force in ``reloader.iam`` at once."""
    return IAMAPI(reloader.iam, reloader.directory, max_body_bytes=max_body_bytes)
