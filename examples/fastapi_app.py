"""The orders API on FastAPI. Run: uvicorn examples.fastapi_app:app   (then open /docs: each operation shows the
IAM action it requires, as x-iam-action, and the three security schemes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI

from iam_middleware import IAM, Principal, public
from iam_middleware_fastapi import Authorize, install

ORDER = "arn:app:orders::{account}:order/{order_id}"
orders: dict[str, str] = {"42": "teapot"}

# What each operation requires, as dependencies that hand the endpoint its principal.
MayGet = Annotated[Principal, Depends(Authorize("orders:GetOrder", resource=ORDER))]
MayDelete = Annotated[Principal, Depends(Authorize("orders:DeleteOrder", resource=ORDER))]

app = FastAPI(title="Orders")
install(app, IAM.from_file(os.environ.get("IAM_CONFIG", str(Path(__file__).with_name("iam.toml")))), public_docs=True)


@app.get("/health")
@public
async def health() -> dict[str, bool]:
    return {"ok": True}


@app.get("/orders/{order_id}")
async def get_order(order_id: str, principal: MayGet) -> dict[str, str]:
    return {"order": order_id, "item": orders.get(order_id, "?"), "caller": principal.arn}


@app.delete("/orders/{order_id}")
def delete_order(order_id: str, principal: MayDelete) -> dict[str, str]:  # sync endpoints work too
    orders.pop(order_id, None)
    return {"deleted": order_id, "caller": principal.arn}
