"""The token service of the microservices example: logins (password + one-time code) and AssumeRole, at ``/sts``.

Run: ``IAM_REDIS_URL=redis://127.0.0.1:6379/0 uvicorn --factory examples.microservices.token_service:create_app
--port 9100`` (docs/microservices.md).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from iam_middleware.sts import token_service

from .common import load_iam, log_decisions

__all__ = ["create_app"]


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app() -> Starlette:
    """The token service over the shared directory; sessions and temporary credentials go to Redis. Each of its
    calls authenticates and authorizes itself, so it sits behind no middleware."""
    log_decisions()
    return Starlette(routes=[Mount("/sts", app=token_service(load_iam())), Route("/health", health)])
