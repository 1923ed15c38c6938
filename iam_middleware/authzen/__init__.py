"""An OpenID AuthZEN Authorization API 1.0 policy decision point over the directory's policies.

A policy enforcement point (an API gateway, a service, an identity provider) that speaks AuthZEN asks "may this
subject do this action on this resource, in this context?" and gets ``{"decision": true|false, "context": ...}``,
decided by the same evaluator, with the same explicit denies, boundaries, guardrails and session policies, as every
shell. The PEP authenticates as a principal of the directory and must be allowed ``iam:SimulatePrincipalPolicy`` on
each subject it asks about. Serve it with ``iam-middleware authz`` (beside the gateway endpoints) or mount
``AuthZEN(iam)``; docs/authzen.md has the mapping and examples. Reference:
https://openid.net/specs/authorization-api-1_0.html
"""

from __future__ import annotations

from ._app import PATHS, AuthZEN
from ._errors import (
    InvalidEvaluationError,
    MalformedJSONError,
    MethodNotAllowedError,
    NoSuchEndpointError,
    UnsupportedMediaTypeError,
)
from ._mapping import RESOURCE_TEMPLATE
from ._metadata import EVALUATION_PATH, EVALUATIONS_PATH, METADATA_PATH
from ._model import MAX_EVALUATIONS
from ._pdp import SIMULATE_ACTION
from ._subjects import DEFAULT_SESSION_NAME

__all__ = [
    "DEFAULT_SESSION_NAME",
    "EVALUATIONS_PATH",
    "EVALUATION_PATH",
    "MAX_EVALUATIONS",
    "METADATA_PATH",
    "PATHS",
    "RESOURCE_TEMPLATE",
    "SIMULATE_ACTION",
    "AuthZEN",
    "InvalidEvaluationError",
    "MalformedJSONError",
    "MethodNotAllowedError",
    "NoSuchEndpointError",
    "UnsupportedMediaTypeError",
]
