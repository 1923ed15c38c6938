"""One AuthZEN evaluation call, from its read body to its answer (sans-IO and synchronous: the ASGI app runs it in a
worker thread, since authenticating may wait on shared state or an identity provider's key set).

1. The caller, the policy enforcement point (PEP), is authenticated by the directory's authenticators, as in every
   shell (401 without a good credential).
2. Every evaluation is read and mapped to a principal, an action, a resource and condition keys (400 naming the
   member at fault); nothing is decided before the whole request is valid.
3. The PEP must be allowed ``iam:SimulatePrincipalPolicy`` on each subject it asks about, AWS's permission for
   evaluating a principal's policies (403 for the whole request otherwise).
4. Each evaluation is decided by ``IAM.authorize``, the evaluator of every shell, for the subject's principal and
   without a request of its own: the keys IAM reads from a request (``aws:SourceIp``, ``aws:SecureTransport``, ...)
   are absent, since the PDP never sees the request the PEP enforces on.

Each PEP check and each evaluation is one record of the decision log under the request's id (an item of an Access
Evaluations request as ``<id>.<index>``). docs/authzen.md describes the whole exchange.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._bodies import json_object
from .._exceptions import AccessDeniedError, IAMError, MissingCredentialError
from .._principal import Principal
from ..gate import Gate, Reply, RequestContext, log_decision
from ..policy import Decision, DecisionKind
from ._mapping import condition_keys, iam_action, resource_arn
from ._model import Batch, Evaluation, Semantic, parse_evaluation, parse_evaluations
from ._subjects import Named, resolve

__all__ = ["SIMULATE_ACTION", "DecisionPoint", "json_reply", "refused"]

logger = logging.getLogger("iam_middleware")

#: What a PEP must be allowed on a subject's ARN to ask about it.
SIMULATE_ACTION = "iam:SimulatePrincipalPolicy"


@dataclass(frozen=True, slots=True)
class _Question:
    """One evaluation, mapped: who, which action on which resource, with which extra condition keys."""

    named: Named
    action: str
    resource: str
    keys: Mapping[str, Any]


class DecisionPoint:
    """Answers Access Evaluation and Access Evaluations requests for ``gate``'s directory."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._providers = frozenset(p.name.lower() for p in gate.iam.settings.web_identity)

    def answer(self, context: RequestContext, raw: bytes, content_type: str | None, *, boxed: bool) -> Reply:
        """The answer to one request whose body is ``raw`` (``boxed``: to the Access Evaluations endpoint): the
        decisions, or the gate's refusal. Never raises."""
        gate = self.gate
        try:
            if context.error is not None:
                raise context.error
            context.request = context.request.with_body(raw)  # a SigV4 signature may cover it
            caller = self._authenticate(context)
            body = json_object(raw, content_type)
            batch = (parse_evaluations(body) if boxed
                     else Batch((parse_evaluation(body),), Semantic.EXECUTE_ALL, boxed=False))
            questions = [self._question(evaluation, caller, context) for evaluation in batch.evaluations]
            for arn in dict.fromkeys(question.named.arn for question in questions):
                self._may_ask(context, caller, arn)
            answers = self._decide(context, questions, batch)
        except IAMError as error:  # shared state that did not answer too: a 503 that names no infrastructure
            return refused(gate, context, error)
        except Exception:  # noqa: BLE001 - fail closed: a refusal, never a 500 and never a decision
            logger.exception("authzen failed closed (request %s)", context.request_id)
            return refused(gate, context, AccessDeniedError("The request could not be evaluated.",
                                                             code="AuthorizationFailed"))
        return json_reply({"evaluations": answers} if batch.boxed else answers[0], context.request_id)

    def _authenticate(self, context: RequestContext) -> Principal:
        principal = self.gate.iam.authenticators.authenticate(context.request, now=context.now)
        if principal is None:
            raise MissingCredentialError("The AuthZEN endpoints need a credential: a bearer token, a session or a "
                                         "SigV4 signature of the policy enforcement point.")
        context.principal = principal
        return principal

    def _question(self, evaluation: Evaluation, caller: Principal, context: RequestContext) -> _Question:
        iam = self.gate.iam
        named = resolve(context.snapshot, evaluation.subject, caller, now=context.now)
        credential = named.principal.extra_context if named.principal is not None else {}
        keys = condition_keys(evaluation.context, evaluation.context_where, providers=self._providers,
                              credential_keys={key.lower() for key in credential})
        return _Question(named, iam_action(evaluation.action, evaluation.action_where, iam.settings),
                         resource_arn(evaluation.resource, iam.settings, named.account), keys)

    def _may_ask(self, context: RequestContext, caller: Principal, arn: str) -> None:
        """Refuse (403) unless the PEP may simulate the principal ``arn``; recorded either way."""
        context.action, context.resource, context.decision = SIMULATE_ACTION, arn, None
        decision = self.gate.iam.decisions.require(caller, SIMULATE_ACTION, arn, now=context.now,
                                                   request=context.request, source_ip=context.source_ip)
        context.decision, context.outcome = decision, decision.kind.value
        self.gate.log(context)

    def _decide(self, context: RequestContext, questions: list[_Question], batch: Batch) -> list[dict[str, Any]]:
        answers = []
        for index, question in enumerate(questions):
            record = f"{context.request_id}.{index}" if batch.boxed else context.request_id
            allowed, answer = self._evaluate(context, question, record)
            answers.append(answer)
            if (batch.semantic is Semantic.DENY_ON_FIRST_DENY and not allowed) or (
                    batch.semantic is Semantic.PERMIT_ON_FIRST_PERMIT and allowed):
                break
        return answers

    def _evaluate(self, context: RequestContext, question: _Question, record: str) -> tuple[bool, dict[str, Any]]:
        """(allowed, the Decision object of the answer) for one question, recorded in the decision log. The record
        has no source address: the subject sent no request (the PEP's record, under the same id, has it)."""
        iam = self.gate.iam
        principal = question.named.principal
        decision = None
        if principal is not None:
            decision = iam.decisions.decide(principal, question.action, question.resource, question.keys,
                                            now=context.now)
        log_decision(request_id=record, method=context.method, path=context.path, principal=principal,
                     source_ip=None, decision=decision, error=None, action=question.action,
                     resource=question.resource, outcome=decision.kind.value if decision else "NoSuchEntity",
                     scheme=context.request.scheme)
        if principal is None or decision is None:
            error = {"status": 404, "code": "NoSuchEntity", "message": question.named.missing}
            return False, {"decision": False, "context": {"error": error}}
        return decision.allowed, self._answer(principal, question, decision, context.now)

    def _answer(self, principal: Principal, question: _Question, decision: Decision, now: float) -> dict[str, Any]:
        """The spec's Decision object: ``decision``, and a ``context`` that says why a request is denied (the
        decision's kind and AWS's message) and which condition keys the policies read that were absent."""
        reasons: dict[str, Any] = {}
        if not decision.allowed:
            reasons["reason"], reasons["message"] = decision.kind.value, decision.message
            if decision.kind is DecisionKind.IMPLICITLY_DENIED and decision.error is None:
                decisions = self.gate.iam.decisions
                full = {**question.keys, **decisions.context_for(principal, None, now=now)}
                if decisions.would_allow_with_mfa(principal, question.action, question.resource, full):
                    reasons["reason"] = "MultiFactorAuthRequired"
                    reasons["message"] += " (multi-factor authentication would allow it)"
        if decision.missing_context_keys:
            reasons["missing_context_keys"] = list(decision.missing_context_keys)
        return {"decision": decision.allowed, "context": reasons} if reasons else {"decision": decision.allowed}


def json_reply(body: Any, request_id: str, *, cache: str = "no-store") -> Reply:
    """A 200 JSON answer with the request's id, as the HTTPS binding answers."""
    payload = json.dumps(body).encode()
    return Reply(200, [("content-type", "application/json"), ("content-length", str(len(payload))),
                       ("x-request-id", request_id), ("cache-control", cache)], payload)


def refused(gate: Gate, context: RequestContext, error: IAMError) -> Reply:
    """The gate's refusal (recorded), never cached."""
    status, headers, body = gate.render(gate.refuse(context, error))
    return Reply(status, [*headers, ("cache-control", "no-store")], body)
