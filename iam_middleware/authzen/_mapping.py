"""From an AuthZEN action, resource and context to what IAM decides on: an action, a resource ARN and condition
keys (sans-IO). docs/authzen.md states the mapping with examples.

- ``action.name``: ``service:Action`` is that IAM action; a bare name (the spec's ``can_read``) is an action of the
  directory's own service (``settings.service``), as a SigV4 request to this service is.
- ``resource.id``: an ARN is that resource, ``*`` the resource of an action that names none (as a route without a
  resource); anything else is ``arn:{partition}:{service}::{account}:{type}/{id}`` in the subject's account, the type
  and the id percent-encoded as a route's placeholders are (``routing.render_template``), so an id can never add a
  wildcard, a policy variable or an ARN segment.
- ``context``: members named ``prefix:Key`` are condition keys; others (the spec's ``time``) are not IAM's, and are
  ignored. The request may add keys, never set those that IAM computes or a credential carries: the ``aws:`` keys
  but ``aws:RequestTag/...`` and ``aws:TagKeys`` (the rule route permissions follow), and the keys of an outside
  identity provider's claims.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from .._settings import Settings
from ..routing import _REQUEST_AWS_KEYS, render_template
from ._errors import InvalidEvaluationError
from ._model import Entity

__all__ = ["RESOURCE_TEMPLATE", "condition_keys", "iam_action", "resource_arn"]

#: The ARN of a resource given by type and id.
RESOURCE_TEMPLATE = "arn:{partition}:{service}::{account}:{type}/{id}"
_ACTION = re.compile(r"(?:[A-Za-z0-9-]{1,64}:)?[\w.-]{1,128}", re.ASCII)
_KEY = re.compile(r"[\w.-]{1,64}:[^\x00-\x1f\x7f]{1,256}", re.ASCII)
_SHOWN = 64  # characters of a member name repeated in a message


def iam_action(name: str, where: str, settings: Settings) -> str:
    """The IAM action an ``action.name`` stands for."""
    if _ACTION.fullmatch(name) is None:
        raise InvalidEvaluationError(f"{where} must be an IAM action (service:Action, e.g. orders:GetOrder) or an "
                                     "action name of this service, without wildcards.")
    return name if ":" in name else f"{settings.service}:{name}"


def resource_arn(resource: Entity, settings: Settings, account: str) -> str:
    """The resource ARN a Resource stands for, in ``account`` when it is given by type and id."""
    given = resource.id
    if given == "*":
        return given
    if given.startswith("arn:"):
        if given.count(":") < 5 or any(c in given for c in "*?") or not given.isprintable():
            raise InvalidEvaluationError(f"{resource.where}.id must be one resource's ARN "
                                         "(arn:partition:service:region:account:resource), without wildcards.")
        return given
    values = {"partition": settings.partition, "service": settings.service, "account": account,
              "type": resource.type, "id": given}
    return render_template(RESOURCE_TEMPLATE, values)


def condition_keys(context: Mapping[str, Any], where: str, *, providers: Collection[str],
                   credential_keys: Collection[str]) -> dict[str, Any]:
    """The condition keys a Context adds (lower-cased, as IAM compares them). ``providers`` are the outside
    identity providers' names (their keys come from a verified token), ``credential_keys`` the keys the subject's
    credential sets itself."""
    keys: dict[str, Any] = {}
    for key, value in context.items():
        if ":" not in key or value is None:
            continue  # not an IAM condition key; or absent, as a null member is
        shown = f"{where}[{key[:_SHOWN]!r}]"
        if _KEY.fullmatch(key) is None:
            raise InvalidEvaluationError(f"{shown} is not a condition key (prefix:Name, 1-64 + 1-256 characters).")
        lower = key.lower()
        if lower.startswith("aws:") and _REQUEST_AWS_KEYS.fullmatch(key) is None:
            raise InvalidEvaluationError(f"{shown} is computed by IAM and cannot come from the request (of the aws: "
                                         "keys only aws:RequestTag/... and aws:TagKeys can).")
        if lower.partition(":")[0] in providers or lower in credential_keys:
            raise InvalidEvaluationError(f"{shown} comes from a credential and cannot come from the request.")
        if lower in keys:
            raise InvalidEvaluationError(f"{shown} is given twice (condition keys are not case-sensitive).")
        keys[lower] = _value(value, shown)
    return keys


def _value(value: Any, shown: str) -> Any:
    """A condition value: a string, number or boolean, or a list of them (a multivalued key)."""
    scalar = (str, int, float, bool)
    if isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value)):
        return value
    raise InvalidEvaluationError(f"{shown} must be a string, number or boolean, or an array of them.")
