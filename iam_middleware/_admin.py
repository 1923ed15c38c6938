"""The admin endpoint: an ASGI app, itself protected by the middleware, that reloads the directory on demand.

Mount it where operators reach it (``Mount("/admin", app=admin_app(iam, reloader))``). ``POST /reload`` requires
``iam:ReloadDirectory`` and ``GET /status`` ``iam:GetDirectoryStatus``, both on
``arn:<partition>:iam::<admin account>:directory``, and only principals of the operators' account (``admin_account``,
needed when the directory has several accounts) are served: the directory is the whole deployment's, so a tenant's
``Action: *`` never reloads it for everyone or reads another tenant's configuration errors.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._exceptions import AccessDeniedError, ConfigurationError
from ._iam import IAM
from ._principal import Principal
from ._reload import DirectoryReloader
from .asgi import IAMMiddleware
from .gate import render_error
from .routing import permission

__all__ = ["admin_app"]


def admin_app(iam: IAM, reloader: DirectoryReloader, *, admin_account: str | None = None) -> IAMMiddleware:
    """An ASGI app with ``POST /reload`` and ``GET /status`` for the operators of ``admin_account``."""
    if admin_account is not None and not admin_account.isdigit():
        raise ConfigurationError(f"admin_account must be an account id, not {admin_account!r}")
    # The caller's account must be the operators': that is what {account} renders to, and what is checked below.
    directory = "arn:{partition}:iam::{account}:directory"

    def operator_only(request: Request) -> Response | None:
        # Read at request time: the directory may have no valid accounts yet (a broken file awaiting its reload).
        accounts = list(iam.snapshot.accounts)
        account = admin_account or (accounts[0] if len(accounts) == 1 else None)
        principal = request.user
        if account is not None and isinstance(principal, Principal) and principal.account == account:
            return None
        error = AccessDeniedError("Only principals of the operators' account may administer the directory"
                                  + ("" if account is not None else " (several accounts: give admin_app "
                                     "admin_account=)") + ".")
        status, headers, body = render_error(error, request.state.request_id)
        return Response(body, status_code=status, headers=dict(headers))

    @permission("iam:ReloadDirectory", resource=directory)
    def reload(request: Request) -> Response:
        refused = operator_only(request)
        if refused is not None:
            return refused
        # A sync endpoint: Starlette runs it in a worker thread, so reading the files never blocks the event loop.
        result = reloader.reload()
        body: dict[str, Any] = {"reloaded": result.ok, "version": result.version}
        if result.errors is not None:
            body["errors"] = result.errors.splitlines()
        return JSONResponse(body, status_code=200 if result.ok else 422)

    @permission("iam:GetDirectoryStatus", resource=directory)
    def status(request: Request) -> Response:
        refused = operator_only(request)
        if refused is not None:
            return refused
        snapshot = iam.snapshot
        return JSONResponse({"version": snapshot.version, "source": snapshot.source, "serving": reloader.serving,
                             "last_error": reloader.last_error, "restart_needed": reloader.restart_needed})

    app = Starlette(routes=[Route("/reload", reload, methods=["POST"]), Route("/status", status, methods=["GET"])])
    return IAMMiddleware(app, iam=iam, undeclared="error")

