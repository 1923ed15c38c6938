"""From the gate's outcome to the answer each gateway expects (sans-IO).

Allowed: ``200`` with the principal in response headers (``PRINCIPAL_HEADERS``), which nginx's ``auth_request_set``
and Envoy's ``allowed_upstream_headers`` hand to the upstream. Refused: Envoy passes any other status, its headers
and its body to the client as they are, so the gate's refusal goes out unchanged. nginx accepts only 401 and 403
from a subrequest (anything else is its own 500) and drops the body: a refusal is answered 401 (keeping
``WWW-Authenticate``, which nginx passes on) or 403, with the gate's status in ``X-IAM-Status`` and its JSON body in
``X-IAM-Refusal``, which the configuration's ``error_page`` location answers with (docs/gateways.md).
"""

from __future__ import annotations

from urllib.parse import quote

from .._principal import Principal
from ..gate import Reply, RequestContext, render_error

__all__ = ["PRINCIPAL_HEADERS", "allowed", "nginx_refusal"]

#: The response headers that carry the principal of an allowed request (lower case, in this order); a header whose
#: value the principal lacks (a session name for a user, every one on a public route without a credential) is left
#: out.
PRINCIPAL_HEADERS = ("x-iam-principal-arn", "x-iam-principal-account", "x-iam-principal-type", "x-iam-session-name")
_ENVOY_REMOVE = "x-envoy-auth-headers-to-remove"
# Everything printable in ASCII but "%" stays as it is; anything else is percent-encoded UTF-8, so a header value
# can never carry a line break or a byte the gateway would refuse.
_VISIBLE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
# The refusal body rides in a response header: kept well inside nginx's default 4 KiB buffer for them.
_MAX_REFUSAL_HEADER = 2048


def principal_headers(principal: Principal | None) -> list[tuple[str, str]]:
    """The ``PRINCIPAL_HEADERS`` this principal fills, values percent-encoded where needed."""
    if principal is None:
        return []
    values = (principal.arn, principal.account, principal.type.value, principal.session_name)
    return [(name, quote(value, safe=_VISIBLE)) for name, value in zip(PRINCIPAL_HEADERS, values, strict=True)
            if value]


def allowed(context: RequestContext, *, envoy: bool) -> Reply:
    """The answer that lets the request through to the upstream, with its principal. Envoy also gets the principal
    headers this answer does not set in ``x-envoy-auth-headers-to-remove``, so a client's own never reaches the
    upstream; nginx drops them by itself (``proxy_set_header`` with an empty value)."""
    found = principal_headers(context.principal)
    headers = [("content-length", "0"), ("x-request-id", context.request_id), *found]
    if envoy:
        set_here = {name for name, _ in found}
        absent = [name for name in PRINCIPAL_HEADERS if name not in set_here]
        if absent:
            headers.append((_ENVOY_REMOVE, ", ".join(absent)))
    return Reply(200, headers, b"")


def nginx_refusal(refusal: Reply, context: RequestContext) -> Reply:
    """The gate's refusal as nginx's ``auth_request`` can take it (see the module docstring)."""
    status, headers, body = refusal
    carried = _header_safe(body)
    if carried is None and context.error is not None:
        # A refusal shaped by on_error that cannot ride in a header: the standard one (always JSON) does.
        carried = _header_safe(render_error(context.error, context.request_id).body)
    if carried is None:
        carried = _header_safe(f'{{"error": "Refused", "request_id": "{context.request_id}"}}'.encode()) or ""
    extra = [("x-iam-status", str(status)), ("x-iam-refusal", carried)]
    return Reply(401 if status == 401 else 403, [*headers, *extra], body)


def _header_safe(body: bytes) -> str | None:
    """The body as a header value, or None when it is too long or holds a byte a header value must not."""
    if len(body) > _MAX_REFUSAL_HEADER or any(byte < 0x20 or byte > 0x7E for byte in body):
        return None
    return body.decode("ascii")
