"""The bodies of the AuthZEN Authorization API 1.0 evaluation endpoints as typed values (sans-IO).

Access Evaluation: ``subject``, ``action``, ``resource`` and an optional ``context``. Access Evaluations adds an
``evaluations`` array whose items take each of the four from the top level when they do not give it themselves (an
item's own replaces the default whole), and ``options.evaluations_semantic``; without items it is one evaluation.
Unknown members are ignored and a null member counts as absent, as the spec's JSON binding says; anything else that
is not as the spec defines it is a 400 naming the member. Reference:
https://openid.net/specs/authorization-api-1_0.html ("Access Evaluation API", "Access Evaluations API").
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ._errors import InvalidEvaluationError

__all__ = ["MAX_EVALUATIONS", "Batch", "Entity", "Evaluation", "Semantic", "parse_evaluation", "parse_evaluations"]

#: The most items one Access Evaluations request may carry.
MAX_EVALUATIONS = 256
_MAX_ID = 2048  # an ARN's longest
_MAX_NAME = 256
_PARTS = ("subject", "action", "resource", "context")


class Semantic(enum.StrEnum):
    """``options.evaluations_semantic``: all items, or stop at the first deny (``&&``) or permit (``||``)."""

    EXECUTE_ALL = "execute_all"
    DENY_ON_FIRST_DENY = "deny_on_first_deny"
    PERMIT_ON_FIRST_PERMIT = "permit_on_first_permit"


@dataclass(frozen=True, slots=True)
class Entity:
    """A Subject or a Resource. ``where`` names it in messages (``evaluations[1].subject``)."""

    type: str
    id: str
    properties: Mapping[str, Any]
    where: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One question: may ``subject`` do the action named ``action`` on ``resource``, in ``context``? The
    ``..._where`` members name where the action and the context were given, for messages."""

    subject: Entity
    action: str
    resource: Entity
    context: Mapping[str, Any]
    action_where: str
    context_where: str


@dataclass(frozen=True, slots=True)
class Batch:
    """An Access Evaluations request. ``boxed`` is False when it has no items: it is then answered as the single
    Access Evaluation it is (one Decision, no ``evaluations`` array)."""

    evaluations: tuple[Evaluation, ...]
    semantic: Semantic
    boxed: bool


def parse_evaluation(body: Mapping[str, Any]) -> Evaluation:
    """The one evaluation of an Access Evaluation request."""
    parts = {name: _part(body, name, name) for name in _PARTS}
    return _evaluation(parts, "")


def parse_evaluations(body: Mapping[str, Any]) -> Batch:
    """The items of an Access Evaluations request, defaults applied, with the semantic they are run under."""
    items = body.get("evaluations")
    if items is not None and not isinstance(items, list):
        raise InvalidEvaluationError("evaluations must be an array of evaluation objects.")
    if len(items or ()) > MAX_EVALUATIONS:
        raise InvalidEvaluationError(f"evaluations holds more than {MAX_EVALUATIONS} items; send fewer per request.")
    semantic = _semantic(body.get("options"))
    if not items:
        return Batch((parse_evaluation(body),), semantic, boxed=False)
    defaults = {name: _part(body, name, name) for name in _PARTS}
    evaluations = []
    for i, item in enumerate(items):
        where = f"evaluations[{i}]"
        if not isinstance(item, dict):
            raise InvalidEvaluationError(f"{where} must be an object.")
        parts = {name: _part(item, name, f"{where}.{name}") for name in _PARTS}
        chosen = {name: parts[name] if parts[name] is not None else defaults[name] for name in _PARTS}
        evaluations.append(_evaluation(chosen, where))
    return Batch(tuple(evaluations), semantic, boxed=True)


def _semantic(options: Any) -> Semantic:
    if options is None:
        return Semantic.EXECUTE_ALL
    if not isinstance(options, dict):
        raise InvalidEvaluationError("options must be an object.")
    value = options.get("evaluations_semantic")
    if value is None:
        return Semantic.EXECUTE_ALL
    try:
        return Semantic(value)
    except ValueError:
        names = ", ".join(s.value for s in Semantic)
        raise InvalidEvaluationError(f"options.evaluations_semantic must be one of {names}.") from None


def _part(body: Mapping[str, Any], name: str, where: str) -> tuple[Any, str] | None:
    """A member as given, with where it was found; None when absent or null."""
    value = body.get(name)
    return None if value is None else (value, where)


def _evaluation(parts: Mapping[str, tuple[Any, str] | None], where: str) -> Evaluation:
    def required(name: str) -> tuple[Any, str]:
        found = parts[name]
        if found is None:
            if where:
                raise InvalidEvaluationError(f"{where}.{name} is required, in the item or at the top level.")
            raise InvalidEvaluationError(f"{name} is required.")
        return found

    subject, resource = _entity(*required("subject")), _entity(*required("resource"))
    action, action_at = required("action")
    if not isinstance(action, dict):
        raise InvalidEvaluationError(f"{action_at} must be an object with a name.")
    name = _string(action.get("name"), f"{action_at}.name", _MAX_NAME)
    context, context_at = parts["context"] or ({}, "context")
    if not isinstance(context, dict):
        raise InvalidEvaluationError(f"{context_at} must be an object.")
    return Evaluation(subject, name, resource, MappingProxyType(context), f"{action_at}.name", context_at)


def _entity(value: Any, where: str) -> Entity:
    if not isinstance(value, dict):
        raise InvalidEvaluationError(f"{where} must be an object with a type and an id.")
    properties = value.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise InvalidEvaluationError(f"{where}.properties must be an object.")
    kind = _string(value.get("type"), f"{where}.type", _MAX_NAME)
    return Entity(kind, _string(value.get("id"), f"{where}.id", _MAX_ID), MappingProxyType(properties or {}), where)


def _string(value: Any, where: str, longest: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvaluationError(f"{where} must be a non-empty string.")
    if len(value) > longest:
        raise InvalidEvaluationError(f"{where} is longer than {longest} characters.")
    return value
