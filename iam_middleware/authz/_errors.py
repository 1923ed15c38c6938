"""The authorizer's own refusals: a signed payload the gateway did not forward, and a path that is no gateway's."""

from __future__ import annotations

from .._exceptions import IAMError
from ..authenticators._sigv4 import PayloadHashError

__all__ = ["NotAGatewayPathError", "PayloadNotForwardedError"]


class PayloadNotForwardedError(PayloadHashError):
    """A SigV4 signature covers the payload, and the gateway did not forward the body (or not all of it): the hash
    cannot be verified, so the request is refused rather than let through with a body nobody checked."""

    code = "PayloadNotForwarded"

    def __init__(self) -> None:
        super().__init__("The gateway did not forward the request body, so the payload hash the signature covers "
                         "cannot be verified. Sign UNSIGNED-PAYLOAD over HTTPS where the server allows it, or have "
                         "the gateway forward bodies (docs/gateways.md).")


class NotAGatewayPathError(IAMError):
    """A request to the authorizer that is neither an nginx subrequest (``/nginx``) nor an Envoy check request
    (below ``/envoy/``)."""

    status_code = 404
    code = "NotFound"

    def __init__(self) -> None:
        super().__init__("The authorizer answers nginx at /nginx, Envoy below /envoy/ and AuthZEN at "
                         "/access/v1/evaluation and /access/v1/evaluations.")
