"""Django adapter of iam-middleware: ``IAMMiddleware``, ``permission_required`` and the token service's URLs.

    # settings.py
    IAM_FILE = BASE_DIR / "iam.toml"                       # or IAM = IAM.from_file(...)
    MIDDLEWARE = [..., "iam_middleware_django.IAMMiddleware"]

    # views.py
    from iam_middleware import permission, public

    @permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
    def get_order(request, order_id):
        return JsonResponse({"order": order_id, "by": request.user.arn})

    # urls.py
    urlpatterns = [path("orders/<order_id>", get_order), path("sts/", include(token_service_urls()))]
"""

from __future__ import annotations

from ._middleware import IAMMiddleware, gate_for
from ._views import permission_required, token_service_urls

__all__ = ["IAMMiddleware", "gate_for", "permission_required", "token_service_urls"]
