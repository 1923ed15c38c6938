"""FastAPI adapter of iam-middleware: ``install(app, iam)`` and the ``Authorize`` dependency.

    from fastapi import Depends, FastAPI
    from iam_middleware import IAM, Principal
    from iam_middleware_fastapi import Authorize, install

    app = FastAPI()
    install(app, IAM.from_file("iam.toml"))

    @app.delete("/orders/{order_id}")
    async def delete_order(order_id: str, principal: Principal = Depends(
            Authorize("orders:DeleteOrder", resource="arn:app:orders::{account}:order/{order_id}"))) -> dict[str, str]:
        return {"deleted": order_id, "by": principal.arn}
"""

from __future__ import annotations

from ._authorize import Authorize
from ._install import install, security_schemes

__all__ = ["Authorize", "install", "security_schemes"]
