"""A small orders API on Starlette, protected by iam-middleware. Run: uvicorn examples.starlette_app:app

Every route says what it requires; the policies in iam.toml decide who may. Try it with `iam-middleware demo`.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from iam_middleware import IAM, IAMMiddleware, permission, public

ORDER = "arn:app:orders::{account}:order/{order_id}"
orders: dict[str, dict[str, str]] = {"42": {"item": "teapot"}, "archived-7": {"item": "kettle"}}


@public
async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@permission("orders:ListOrders", resource="arn:app:orders::{account}:order/*")
async def list_orders(request: Request) -> JSONResponse:
    return JSONResponse({"orders": sorted(orders), "caller": request.user.arn})


@permission("orders:CreateOrder", resource="arn:app:orders::{account}:order/new")
async def create_order(request: Request) -> JSONResponse:
    order_id = str(len(orders) + 100)
    orders[order_id] = {"item": (await request.json()).get("item", "?") if await request.body() else "?"}
    return JSONResponse({"created": order_id, "caller": request.user.arn}, status_code=201)


@permission("orders:GetOrder", resource=ORDER)
def get_order(request: Request) -> JSONResponse:  # sync endpoints work too
    order_id = request.path_params["order_id"]
    return JSONResponse({"order": order_id, **orders.get(order_id, {}), "caller": request.user.arn})


@permission("orders:DeleteOrder", resource=ORDER)
async def delete_order(request: Request) -> JSONResponse:
    orders.pop(request.path_params["order_id"], None)
    return JSONResponse({"deleted": request.path_params["order_id"], "caller": request.user.arn})


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/*")
async def order_feed(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"hello": websocket.user.arn, "orders": sorted(orders)})
    await websocket.close()


def build_app(iam: IAM) -> IAMMiddleware:
    """The API wrapped in the middleware: two lines to protect an existing Starlette app."""
    api = Starlette(routes=[
        Route("/health", health),
        Route("/orders", list_orders, methods=["GET"]),
        Route("/orders", create_order, methods=["POST"]),
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/orders/{order_id}", delete_order, methods=["DELETE"]),
        WebSocketRoute("/orders/feed", order_feed),
    ])
    return IAMMiddleware(api, iam=iam, undeclared="error")


CONFIG = os.environ.get("IAM_CONFIG", str(Path(__file__).with_name("iam.toml")))
app = build_app(IAM.from_file(CONFIG))
