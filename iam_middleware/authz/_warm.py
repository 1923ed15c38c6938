"""The authorizer's warm path: an exact repeat of a recently allowed subrequest gets the same answer without
deciding again, under the rules of ``iam_middleware.recent`` (the middleware's warm path).

The key is a digest of everything the decision can read: the subrequest's method, path, query and peer, and the
headers of ``DECISION_HEADERS``, those the rules' permissions name, and those the gateway sets to describe the
original request (``GATEWAY_HEADERS``). Never kept: refusals, public requests without a principal, SigV4 (signed per
request), decisions that change with the clock alone, and check requests that carried a body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.types import Scope

from .._iam import IAM
from ..asgi import request_digest
from ..gate import Reply, RequestContext, decision_log, log_decision
from ..recent import RecentDecisions, header_placeholders
from ..routing import Permission, RuleTable

__all__ = ["GATEWAY_HEADERS", "WarmAnswers"]

#: What nginx or Envoy sets to describe the original request: each is an input of the decision.
GATEWAY_HEADERS = frozenset({"x-original-method", "x-original-uri", "x-original-url", "x-original-framing",
                             "x-original-upgrade", "upgrade", "x-real-ip", "x-forwarded-proto", "content-length",
                             "x-iam-request-body", "x-envoy-auth-partial-body"})


@dataclass(frozen=True, slots=True)
class _Kept:
    """What a repeat needs: the answer's headers but its request id, and the decision record's fields."""

    headers: tuple[tuple[str, str], ...]
    method: str
    path: str
    source_ip: str | None
    resource: str | None
    scheme: str
    resource_pattern: str | None


class WarmAnswers:
    """Recent allowed answers of one authorizer, by the digest of their subrequests."""

    def __init__(self, iam: IAM, rules: RuleTable) -> None:
        self._recent = RecentDecisions(iam)
        self._recent.name_headers(GATEWAY_HEADERS)
        for rule in rules.rules:
            if isinstance(rule.requirement, Permission):
                self._recent.name_headers(header_placeholders(rule.requirement))

    def key(self, scope: Scope) -> tuple[bytes, str | None]:
        """(the digest of a subrequest, the caller's ``X-Request-ID``)."""
        return request_digest(scope, self._recent.asgi_headers())

    def answer(self, key: bytes, request_id: str) -> Reply | None:
        """The answer to a repeat of a recently allowed subrequest (and its decision record), or None."""
        recent = self._recent.lookup(key)
        if recent is None:
            return None
        kept: _Kept = recent.extra
        if decision_log.isEnabledFor(logging.INFO):
            decision = recent.decision
            log_decision(request_id=request_id, method=kept.method, path=kept.path, principal=recent.principal,
                         source_ip=kept.source_ip, decision=decision, error=None, action=decision.action,
                         resource=kept.resource, outcome=decision.kind.value, scheme=kept.scheme,
                         resource_pattern=kept.resource_pattern)
        return Reply(200, [("x-request-id", request_id), *kept.headers], b"")

    def keep(self, key: bytes, context: RequestContext, answer: Reply) -> None:
        """Keep an allowed answer for its exact repeats, where ``iam_middleware.recent`` finds that safe."""
        request = context.request
        if context.error is not None or request.body:
            return
        kept = _Kept(tuple((k, v) for k, v in answer.headers if k != "x-request-id"), context.method, context.path,
                     context.source_ip, context.resource, request.scheme, context.resource_pattern)
        self._recent.remember(key, context.principal, context.decision, kept)
