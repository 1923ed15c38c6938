"""The same small API in every shell, for the conformance matrix: the same routes, the same declarations, the
same JSON from each endpoint, and the token service mounted at /sts.

    GET    /orders/{order_id}        orders:GetOrder     on arn:app:orders::{account}:order/{order_id}
    DELETE /orders/{order_id}        orders:DeleteOrder  on the same
    POST   /orders/{order_id}/notes  orders:CreateOrder  on the same (answers the body it read)
    GET    /search?team=             orders:ListOrders   with orders:Team from the query (answers the team it read)
    GET    /by-header                orders:ListOrders   with orders:Team from X-Team (answers the team it read)
    GET    /health                   public (answers who called, when the credential was good)
    GET    /undeclared               nothing declared
    WS     /ws                       orders:GetOrder     (ASGI shells)
    POST   /sts/...                  the token service
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, WebSocket

from iam_middleware import IAM, IAMMiddleware, Principal, permission, public
from iam_middleware_fastapi import Authorize

ORDER = "arn:app:orders::{account}:order/{order_id}"
ALL_ORDERS = "arn:app:orders::{account}:order/*"

# FastAPI reads the endpoints' annotations from this module's globals.
MayGet = Annotated[Principal, Depends(Authorize("orders:GetOrder", ORDER))]
MayDelete = Annotated[Principal, Depends(Authorize("orders:DeleteOrder", ORDER))]
MayCreate = Annotated[Principal, Depends(Authorize("orders:CreateOrder", ORDER))]
MaySearch = Annotated[Principal, Depends(Authorize("orders:ListOrders", ALL_ORDERS,
                                                   context={"orders:Team": "{query.team}"}))]
MayByHeader = Annotated[Principal, Depends(Authorize("orders:ListOrders", ALL_ORDERS,
                                                     context={"orders:Team": "{header.x-team}"}))]
MayWatch = Annotated[Principal, Depends(Authorize("orders:GetOrder", ALL_ORDERS))]


def _who(user: Any) -> str | None:
    return user.arn if isinstance(user, Principal) else None


def starlette_app(iam: IAM) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route, WebSocketRoute

    from iam_middleware.sts import token_service

    @permission("orders:GetOrder", ORDER)
    async def get_order(request: Request) -> JSONResponse:
        return JSONResponse({"by": _who(request.user), "order": request.path_params["order_id"]})

    @permission("orders:DeleteOrder", ORDER)
    async def delete_order(request: Request) -> JSONResponse:
        return JSONResponse({"by": _who(request.user), "deleted": request.path_params["order_id"]})

    @permission("orders:CreateOrder", ORDER)
    async def add_note(request: Request) -> JSONResponse:
        return JSONResponse({"by": _who(request.user), "body": (await request.body()).decode()})

    @permission("orders:ListOrders", ALL_ORDERS, context={"orders:Team": "{query.team}"})
    async def search(request: Request) -> JSONResponse:
        return JSONResponse({"by": _who(request.user), "team": request.query_params.get("team")})

    @permission("orders:ListOrders", ALL_ORDERS, context={"orders:Team": "{header.x-team}"})
    async def by_header(request: Request) -> JSONResponse:
        return JSONResponse({"by": _who(request.user), "team": request.headers.get("x-team")})

    @public
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"by": _who(request.user)})

    async def undeclared(request: Request) -> JSONResponse:
        return JSONResponse({"ran": True})

    @permission("orders:GetOrder", ALL_ORDERS)
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"by": _who(websocket.user)})
        await websocket.close()

    app = Starlette(routes=[
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/orders/{order_id}", delete_order, methods=["DELETE"]),
        Route("/orders/{order_id}/notes", add_note, methods=["POST"]),
        Route("/search", search), Route("/by-header", by_header), Route("/health", health),
        Route("/undeclared", undeclared), WebSocketRoute("/ws", ws),
        Mount("/sts", app=token_service(iam)),
    ])
    return IAMMiddleware(app, iam=iam)


def fastapi_app(iam: IAM, *, middleware: bool) -> Any:
    from iam_middleware_fastapi import install

    app = FastAPI()
    install(app, iam, middleware=middleware, token_service="/sts")

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str, principal: MayGet) -> dict[str, Any]:
        return {"by": principal.arn, "order": order_id}

    @app.delete("/orders/{order_id}")
    async def delete_order(order_id: str, principal: MayDelete) -> dict[str, Any]:
        return {"by": principal.arn, "deleted": order_id}

    @app.post("/orders/{order_id}/notes")
    async def add_note(order_id: str, request: Request, principal: MayCreate) -> dict[str, Any]:
        return {"by": principal.arn, "body": (await request.body()).decode()}

    @app.get("/search")
    async def search(principal: MaySearch, team: str | None = None) -> dict[str, Any]:
        return {"by": principal.arn, "team": team}

    @app.get("/by-header")
    async def by_header(principal: MayByHeader, x_team: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        return {"by": principal.arn, "team": x_team}

    @app.get("/health")
    @public
    async def health(request: Request) -> dict[str, Any]:
        return {"by": _who(request.scope.get("user"))}

    @app.get("/undeclared")
    async def undeclared() -> dict[str, Any]:
        return {"ran": True}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, principal: MayWatch) -> None:
        await websocket.accept()
        await websocket.send_json({"by": principal.arn})
        await websocket.close()

    return app


def flask_app(iam: IAM) -> Any:
    from flask import Flask, g, request

    from iam_middleware_flask import IAMFlask, token_service_blueprint

    app = Flask("conformance")
    guard = IAMFlask(app, iam)
    app.register_blueprint(token_service_blueprint(iam), url_prefix="/sts")

    @app.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", ORDER)
    def get_order(order_id: str) -> Any:
        return {"by": g.principal.arn, "order": order_id}

    @app.delete("/orders/<order_id>")
    @guard.permission("orders:DeleteOrder", ORDER)
    def delete_order(order_id: str) -> Any:
        return {"by": g.principal.arn, "deleted": order_id}

    @app.post("/orders/<order_id>/notes")
    @guard.permission("orders:CreateOrder", ORDER)
    def add_note(order_id: str) -> Any:
        return {"by": g.principal.arn, "body": request.get_data(as_text=True)}

    @app.get("/search")
    @guard.permission("orders:ListOrders", ALL_ORDERS, context={"orders:Team": "{query.team}"})
    def search() -> Any:
        return {"by": g.principal.arn, "team": request.args.get("team")}

    @app.get("/by-header")
    @guard.permission("orders:ListOrders", ALL_ORDERS, context={"orders:Team": "{header.x-team}"})
    def by_header() -> Any:
        return {"by": g.principal.arn, "team": request.headers.get("X-Team")}

    @app.get("/health")
    @guard.public
    def health() -> Any:
        return {"by": _who(g.principal)}

    @app.get("/undeclared")
    def undeclared() -> Any:
        return {"ran": True}

    return app


def django_app(iam: IAM, *, asgi: bool) -> Any:
    """The API as a Django project (settings configured once per process; each handler takes ``iam`` at
    construction, as the middleware reads ``settings.IAM`` when the handler loads it)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="conformance-only", ROOT_URLCONF="conformance._django_urls", ALLOWED_HOSTS=["*"],
            MIDDLEWARE=["iam_middleware_django.IAMMiddleware"], INSTALLED_APPS=[], USE_TZ=True, IAM=iam,
            LOGGING_CONFIG=None,
        )
        django.setup()
    settings.IAM = iam
    if asgi:
        from django.core.handlers.asgi import ASGIHandler

        return ASGIHandler()
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()
