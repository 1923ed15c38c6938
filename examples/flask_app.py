"""The orders API on Flask (WSGI): the same core, called synchronously. Run: flask --app examples.flask_app run"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, g

from iam_middleware import IAM
from iam_middleware_flask import IAMFlask

ORDER = "arn:app:orders::{account}:order/{order_id}"
orders: dict[str, str] = {"42": "teapot"}

app = Flask(__name__)
guard = IAMFlask(app, IAM.from_file(os.environ.get("IAM_CONFIG", str(Path(__file__).with_name("iam.toml")))))


@app.get("/health")
@guard.public
def health() -> dict[str, bool]:
    return {"ok": True}


@app.get("/orders/<order_id>")
@guard.permission("orders:GetOrder", resource=ORDER)
def get_order(order_id: str) -> dict[str, str]:
    return {"order": order_id, "item": orders.get(order_id, "?"), "caller": g.principal.arn}


@app.delete("/orders/<order_id>")
@guard.permission("orders:DeleteOrder", resource=ORDER)
def delete_order(order_id: str) -> dict[str, str]:
    orders.pop(order_id, None)
    return {"deleted": order_id, "caller": g.principal.arn}
