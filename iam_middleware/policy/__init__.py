"""IAM's policy language and evaluation logic: pure, synchronous, compiled once and evaluated per request."""

from __future__ import annotations

from ._authorizer import Authorizer
from ._decision import Decision, DecisionKind, MatchedStatement
from ._evaluate import Caller, CallerKind, evaluate
from ._issues import PolicyIssue, Severity
from ._model import Effect, Policy, PolicyKind, Statement
from ._parse import load_json, parse_policy
from ._policyset import PolicySet

__all__ = [
    "Authorizer",
    "Caller",
    "CallerKind",
    "Decision",
    "DecisionKind",
    "Effect",
    "MatchedStatement",
    "Policy",
    "PolicyIssue",
    "PolicyKind",
    "PolicySet",
    "Severity",
    "Statement",
    "evaluate",
    "load_json",
    "parse_policy",
]
