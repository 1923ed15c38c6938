"""The conformance API's URLs and views for Django (see ``_apps``)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import View

from iam_middleware import Principal, permission, public
from iam_middleware_django import token_service_urls

ORDER = "arn:app:orders::{account}:order/{order_id}"
ALL_ORDERS = "arn:app:orders::{account}:order/*"


def _who(request: HttpRequest) -> str | None:
    principal = getattr(request, "iam_principal", None)
    return principal.arn if isinstance(principal, Principal) else None


class Order(View):
    @permission("orders:GetOrder", ORDER)
    def get(self, request: HttpRequest, order_id: str) -> HttpResponse:
        return JsonResponse({"by": _who(request), "order": order_id})

    @permission("orders:DeleteOrder", ORDER)
    def delete(self, request: HttpRequest, order_id: str) -> HttpResponse:
        return JsonResponse({"by": _who(request), "deleted": order_id})


class Notes(View):
    @permission("orders:CreateOrder", ORDER)
    def post(self, request: HttpRequest, order_id: str) -> HttpResponse:
        return JsonResponse({"by": _who(request), "body": request.body.decode()})


@permission("orders:ListOrders", ALL_ORDERS, context={"orders:Team": "{query.team}"})
def search(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"by": _who(request), "team": request.GET.get("team")})


@permission("orders:ListOrders", ALL_ORDERS, context={"orders:Team": "{header.x-team}"})
def by_header(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"by": _who(request), "team": request.headers.get("X-Team")})


@public
def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"by": _who(request)})


def undeclared(request: HttpRequest) -> HttpResponse:
    return HttpResponse(json.dumps({"ran": True}), content_type="application/json")


urlpatterns: list[Any] = [
    path("orders/<str:order_id>", Order.as_view()),
    path("orders/<str:order_id>/notes", Notes.as_view()),
    path("search", search),
    path("by-header", by_header),
    path("health", health),
    path("undeclared", undeclared),
    path("sts/", include(token_service_urls())),
]
