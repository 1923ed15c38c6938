"""Flask adapter of iam-middleware: the ``IAMFlask`` extension.

    from flask import Flask, g
    from iam_middleware import IAM
    from iam_middleware_flask import IAMFlask

    app = Flask(__name__)
    guard = IAMFlask(app, IAM.from_file("iam.toml"))

    @app.get("/orders/<order_id>")
    @guard.permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    def get_order(order_id: str) -> dict[str, str]:
        return {"order": order_id, "by": g.principal.arn}

    app.register_blueprint(token_service_blueprint(iam), url_prefix="/sts")   # login, temporary credentials
"""

from __future__ import annotations

from ._extension import IAMFlask
from ._sts import token_service_blueprint

__all__ = ["IAMFlask", "token_service_blueprint"]
