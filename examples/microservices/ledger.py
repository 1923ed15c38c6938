"""Service B of the microservices example, the ledger: only ever called by the reports API, as a session of the role
``ledger-reader`` on behalf of a person. Its routes say what they require; the role's policy decides with the
session's ``aws:SourceIdentity`` (whom the reports API acts for) and ``aws:PrincipalTag/department``.

Run: ``IAM_REDIS_URL=redis://127.0.0.1:6379/0 uvicorn --factory examples.microservices.ledger:create_app
--port 9102`` (docs/microservices.md).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from iam_middleware import IAMMiddleware, Principal, permission, public

from .common import load_iam, log_decisions, source_identity

__all__ = ["create_app"]

ENTRIES: dict[str, list[dict[str, Any]]] = {
    "alice": [{"id": "e-1", "amount": 120}, {"id": "e-2", "amount": -40}],
    "bob": [{"id": "e-3", "amount": 75}],
}


def caller(principal: Principal) -> dict[str, Any]:
    """Who the ledger served, as its policies saw them (returned so the example shows the chain)."""
    return {"arn": principal.arn, "source_identity": source_identity(principal),
            "department": principal.tags.get("department")}


@permission("ledger:ListEntries", resource="arn:app:ledger::{account}:entries/{owner}")
async def entries(request: Request) -> JSONResponse:
    owner = request.path_params["owner"]
    return JSONResponse({"owner": owner, "entries": ENTRIES.get(owner, []), "caller": caller(request.user)})


@permission("ledger:GetTotals", resource="arn:app:ledger::{account}:totals")
async def totals(request: Request) -> JSONResponse:
    sums = {owner: sum(entry["amount"] for entry in rows) for owner, rows in ENTRIES.items()}
    return JSONResponse({"totals": sums, "caller": caller(request.user)})


@public
async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app() -> IAMMiddleware:
    """The ledger API behind the middleware, over the shared directory."""
    log_decisions()
    routes = [Route("/entries/{owner}", entries), Route("/totals", totals), Route("/health", health)]
    return IAMMiddleware(Starlette(routes=routes), iam=load_iam(), undeclared="error")
