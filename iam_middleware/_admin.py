"""The admin endpoint: an ASGI app, itself protected by the middleware, that reloads the directory on demand.

Mount it where operators reach it (``Mount("/admin", app=admin_app(iam, reloader))``). ``POST /reload`` requires
``iam:ReloadDirectory`` on ``arn:<partition>:iam::<account>:directory``; ``GET /status`` requires
``iam:GetDirectoryStatus`` on the same resource (``<account>`` is the caller's own account).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._iam import IAM
from ._reload import DirectoryReloader
from .asgi import IAMMiddleware
from .routing import permission

__all__ = ["admin_app"]

_DIRECTORY = "arn:{partition}:iam::{account}:directory"


def admin_app(iam: IAM, reloader: DirectoryReloader) -> IAMMiddleware:
    """An ASGI app with ``POST /reload`` and ``GET /status``, authorized like any other route."""

    @permission("iam:ReloadDirectory", resource=_DIRECTORY)
    def reload(request: Request) -> JSONResponse:
        # A sync endpoint: Starlette runs it in a worker thread, so reading the files never blocks the event loop.
        result = reloader.reload()
        body: dict[str, Any] = {"reloaded": result.ok, "version": result.version}
        if result.errors is not None:
            body["errors"] = result.errors.splitlines()
        return JSONResponse(body, status_code=200 if result.ok else 422)

    @permission("iam:GetDirectoryStatus", resource=_DIRECTORY)
    def status(request: Request) -> JSONResponse:
        snapshot = iam.snapshot
        return JSONResponse({"version": snapshot.version, "source": snapshot.source, "serving": reloader.serving,
                             "last_error": reloader.last_error, "restart_needed": reloader.restart_needed})

    app = Starlette(routes=[Route("/reload", reload, methods=["POST"]), Route("/status", status, methods=["GET"])])
    return IAMMiddleware(app, iam=iam, undeclared="error")
