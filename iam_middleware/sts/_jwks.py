"""``GET /.well-known/jwks.json`` of the token service, for every shell: the public keys that verify its session
tokens (docs/credentials.md, "Tokens other services can verify"). Public: it holds public keys only.
"""

from __future__ import annotations

import json

from ..gate import Gate, Reply, RequestContext
from ._handle import MethodNotAllowedError, refused

__all__ = ["JWKS_MAX_AGE", "JWKS_PATH", "jwks_reply"]

JWKS_PATH = "/.well-known/jwks.json"
#: Seconds a client or cache may keep the key set. Verifiers of this project fetch again on an unknown ``kid``
#: anyway, so a new signing key is picked up at once; a removed one is dropped at their next refresh.
JWKS_MAX_AGE = 300


def jwks_reply(gate: Gate, context: RequestContext) -> Reply:
    """The key set for GET and HEAD (HEAD: the headers only); any other method is refused with 405."""
    if context.error is not None:
        return refused(gate, context, context.error)
    method = context.request.method
    if method not in ("GET", "HEAD"):
        error = MethodNotAllowedError("The key set is read with GET.", headers={"Allow": "GET, HEAD"})
        return refused(gate, context, error)
    body = json.dumps(gate.iam.credentials.sessions.jwks(), separators=(",", ":")).encode()
    headers = [("content-type", "application/jwk-set+json"), ("content-length", str(len(body))),
               ("cache-control", f"public, max-age={JWKS_MAX_AGE}"), ("x-request-id", context.request_id)]
    return Reply(200, headers, b"" if method == "HEAD" else body)
