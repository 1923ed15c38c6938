"""Service A of the microservices example, the reports API that people call with their session. It answers from the
ledger (service B), which it calls as a session of the role ``ledger-reader`` assumed *on behalf of the caller*:
the caller's name is the session's source identity and their department a session tag, so the ledger's policies
decide on the person, not on the reports API. A refusal at the ledger comes back to the caller with its status.

Run (docs/microservices.md)::

    IAM_REDIS_URL=redis://127.0.0.1:6379/0 TOKEN_SERVICE_URL=http://127.0.0.1:9100/sts \\
    LEDGER_URL=http://127.0.0.1:9102 REPORTS_ACCESS_KEY_ID=... REPORTS_SECRET_ACCESS_KEY=... \\
    uvicorn --factory examples.microservices.reports:create_app --port 9101
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from iam_middleware import IAMMiddleware, Principal, PrincipalType, permission, public
from iam_middleware.client import Credentials, SigV4Auth, TemporaryCredentials, TokenServiceClient, TokenServiceError

from .common import load_iam, log_decisions

__all__ = ["Ledger", "create_app"]

LEDGER_ROLE = "arn:app:iam::111122223333:role/ledger-reader"
#: What the ledger answers that is about the person's request: passed on with its status. Anything else (a 401 is
#: about the reports API's own credentials, a 5xx or no answer about the ledger) is this service's failure: 502.
_PASSED_ON = frozenset({400, 403, 404})


class Ledger:
    """Calls to the ledger at ``url`` on behalf of people: one ``ledger-reader`` session per person, asked for with
    the reports API's own ``credentials`` and kept (and renewed before it ends) by its provider, for the
    ``max_people`` most recent people."""

    def __init__(self, url: str, sts: TokenServiceClient, credentials: Credentials, client: httpx.AsyncClient, *,
                 max_people: int = 1024) -> None:
        self.url = url.rstrip("/")
        self.sts = sts
        self.client = client
        self._credentials = credentials
        self._max_people = max_people
        self._sessions: OrderedDict[tuple[str, str | None], TemporaryCredentials] = OrderedDict()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r}, people={len(self._sessions)})"

    def signer(self, person: Principal) -> SigV4Auth:
        """The signer of calls made for ``person``: the session's source identity is their name (set once, for
        good: nobody down the chain can change it) and their ``department`` tag is a session tag."""
        department = person.tags.get("department")
        key = (person.name, department)
        provider = self._sessions.get(key)
        if provider is None:
            provider = self.sts.assume_role(
                self._credentials, LEDGER_ROLE, f"reports-{person.name}"[:64], duration=900,
                tags={"department": department} if department is not None else None, source_identity=person.name)
            self._sessions[key] = provider
            if len(self._sessions) > self._max_people:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(key)
        return self.sts.signer(provider)

    async def get(self, person: Principal, path: str, request_id: str) -> httpx.Response:
        """GET ``path`` at the ledger for ``person``, under this request's id (the ledger's decision log then
        records the call under the same id as ours)."""
        return await self.client.get(f"{self.url}{path}", auth=self.signer(person),
                                     headers={"X-Request-Id": request_id})


def answer(request: Request, what: str, called: httpx.Response | None) -> JSONResponse:
    """The reports API's answer from the ledger's: its data, or its refusal with its status and code."""
    request_id: str = request.state.request_id
    headers = {"X-Request-Id": request_id}
    if called is not None and called.status_code == 200:
        return JSONResponse({what: called.json(), "request_id": request_id}, headers=headers)
    if called is not None and called.status_code in _PASSED_ON:
        code = _error_code(called)
        return JSONResponse({"error": code, "message": f"The ledger refused this request ({code}).",
                             "request_id": request_id}, status_code=called.status_code, headers=headers)
    return JSONResponse({"error": "LedgerUnavailable", "message": "The ledger could not be asked; try again later.",
                         "request_id": request_id}, status_code=502, headers=headers)


def _error_code(response: httpx.Response) -> str:
    try:
        code = response.json().get("error")
    except ValueError:
        code = None
    return code if isinstance(code, str) else "Refused"


async def ask_ledger(request: Request, path: str, what: str) -> JSONResponse:
    person: Principal = request.user
    if person.type is not PrincipalType.USER:
        return JSONResponse({"error": "AccessDenied", "message": "The reports API acts on behalf of people only.",
                             "request_id": request.state.request_id}, status_code=403)
    ledger: Ledger = request.app.state.ledger
    try:
        called: httpx.Response | None = await ledger.get(person, path, request.state.request_id)
    except (httpx.HTTPError, TokenServiceError):  # the ledger or the token service did not answer as they do
        called = None
    return answer(request, what, called)


@permission("reports:GetStatement", resource="arn:app:reports::{account}:statement/{owner}")
async def statement(request: Request) -> JSONResponse:
    return await ask_ledger(request, f"/entries/{request.path_params['owner']}", "statement")


@permission("reports:GetSummary", resource="arn:app:reports::{account}:summary")
async def summary(request: Request) -> JSONResponse:
    return await ask_ledger(request, "/totals", "summary")


@public
async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app() -> IAMMiddleware:
    """The reports API behind the middleware. Its own access key comes from ``REPORTS_ACCESS_KEY_ID`` and
    ``REPORTS_SECRET_ACCESS_KEY``, the token service and the ledger from ``TOKEN_SERVICE_URL`` and ``LEDGER_URL``."""
    log_decisions()
    iam = load_iam()
    credentials = Credentials(os.environ["REPORTS_ACCESS_KEY_ID"], os.environ["REPORTS_SECRET_ACCESS_KEY"])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10) as client:
            sts = TokenServiceClient(os.environ["TOKEN_SERVICE_URL"], service=iam.settings.service,
                                     region=iam.settings.regions[0], async_client=client)
            app.state.ledger = Ledger(os.environ["LEDGER_URL"], sts, credentials, client)
            yield {}

    routes = [Route("/statements/{owner}", statement), Route("/summary", summary), Route("/health", health)]
    return IAMMiddleware(Starlette(routes=routes, lifespan=lifespan), iam=iam, undeclared="error")
