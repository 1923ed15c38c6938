"""The AuthZEN PDP as an ASGI app: one more shell over the gate, for policy enforcement points that speak the OpenID
AuthZEN Authorization API 1.0 instead of sending the request itself.

``POST /access/v1/evaluation`` and ``POST /access/v1/evaluations`` decide (``_pdp``, in a worker thread);
``GET /.well-known/authzen-configuration`` says where they are. The gate gives each request its id, clock, caller
address, snapshot and body limit, and renders every refusal. The external authorizer (``iam_middleware.authz``)
serves the same endpoints beside its gateway paths.
"""

from __future__ import annotations

import anyio
from starlette.types import Receive, Scope, Send

from .._exceptions import IAMError
from .._iam import IAM
from ..asgi import read_body, request_view, serve_replies
from ..gate import ErrorHandler, Gate, Reply, RequestContext
from ._errors import MethodNotAllowedError, NoSuchEndpointError
from ._metadata import EVALUATION_PATH, EVALUATIONS_PATH, METADATA_PATH, metadata, pdp_identifier
from ._pdp import DecisionPoint, json_reply, refused

__all__ = ["PATHS", "AuthZEN"]

#: The paths the app answers, below where it is mounted.
PATHS = frozenset({EVALUATION_PATH, EVALUATIONS_PATH, METADATA_PATH})
_RAW_PATHS = frozenset(path.encode("ascii") for path in PATHS)
_BOXED = {EVALUATION_PATH: False, EVALUATIONS_PATH: True}
_READS = frozenset({"GET", "HEAD"})


class AuthZEN:
    """An ASGI app that answers AuthZEN evaluation requests with ``iam``'s policies: the subject's principal,
    decided by the evaluator of every shell, for a caller allowed ``iam:SimulatePrincipalPolicy`` on that subject
    (docs/authzen.md). Mount it where you like; its metadata document is where the spec looks for it only when the
    app is served at the root of ``pdp_url``'s host.

    ``pdp_url`` is the PDP's own https URL, published in the metadata document (without it the document is not
    served). ``max_body_bytes`` bounds a request body; ``explain`` and ``on_error`` are the gate's.
    """

    def __init__(self, iam: IAM, *, pdp_url: str | None = None, max_body_bytes: int = 256 * 1024,
                 explain: bool = False, on_error: ErrorHandler | None = None) -> None:
        self.iam = iam
        self.pdp_url = pdp_identifier(pdp_url) if pdp_url is not None else None
        self.gate = Gate(iam, explain=explain, max_body_bytes=max_body_bytes, on_error=on_error)
        self._point = DecisionPoint(self.gate)

    def __repr__(self) -> str:
        return f"AuthZEN(iam={self.iam!r}, pdp_url={self.pdp_url!r})"

    def handles(self, scope: Scope) -> bool:
        """Whether an ``http`` request is for one of this app's paths (``PATHS``), below the app's mount point."""
        raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
        root = str(scope.get("root_path", "")).encode("utf-8")
        if root and raw.startswith(root + b"/"):
            raw = raw[len(root):]
        return raw in _RAW_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_replies(scope, receive, send, self.reply)

    async def reply(self, scope: Scope, receive: Receive) -> Reply:
        """The answer to one ``http`` request (the external authorizer calls this for ``PATHS``)."""
        gate = self.gate
        token = gate.enter()  # a reload due now applies; the request is decided on one snapshot
        try:
            context = gate.begin(request_view(scope), root_path=str(scope.get("root_path", "")))
            if context.error is not None:
                return refused(gate, context, context.error)
            if context.path == METADATA_PATH:
                return self._metadata(context)
            boxed = _BOXED.get(context.path)
            if boxed is None:
                return refused(gate, context, NoSuchEndpointError(
                    f"The PDP answers POST {EVALUATION_PATH} and {EVALUATIONS_PATH}, and GET {METADATA_PATH}."))
            if context.request.method != "POST":
                return refused(gate, context, MethodNotAllowedError(f"{context.path} takes POST.",
                                                                    headers={"Allow": "POST"}))
            try:
                raw = await read_body(receive, gate)
            except IAMError as error:
                return refused(gate, context, error)
            content_type = context.request.header("content-type")
            return await anyio.to_thread.run_sync(lambda: self._point.answer(context, raw, content_type,
                                                                             boxed=boxed))
        finally:
            gate.exit(token)

    def _metadata(self, context: RequestContext) -> Reply:
        if context.request.method not in _READS:
            return refused(self.gate, context, MethodNotAllowedError(f"{METADATA_PATH} takes GET.",
                                                                     headers={"Allow": "GET, HEAD"}))
        if self.pdp_url is None:
            return refused(self.gate, context, NoSuchEndpointError(
                "This PDP publishes no metadata: it is given its own URL with pdp_url (iam-middleware authz "
                "--pdp-url)."))
        return json_reply(metadata(self.pdp_url), context.request_id, cache="max-age=3600")
