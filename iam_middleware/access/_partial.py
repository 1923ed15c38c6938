"""Partial evaluation: AWS's evaluation logic run with some context keys and some resource ids unknown.

The policies are the evaluator's compiled ones (``PolicySet``, ``Statement``, ``ConditionEntry``), walked the way
``policy/_evaluate.py`` walks them, with one difference: where a statement's condition reads an unknown key, or its
Resource depends on an unknown id or variable, the answer is not true or false but an *atom*, kept for later. A
statement then applies under a *term* (the atoms that must all hold; none: it applies outright), each layer allows
under a disjunction of terms, and the whole decision becomes a ``Residual``:

    Allowed  iff  every required layer has a term that holds  and  no Deny term holds

(explicit deny first, then guardrails, identity, boundary and session policy, as the evaluator decides). So an
explicit Deny whose conditions are unknown makes the answer Conditional, never Allowed.

An atom keeps the evaluator's own compiled test, so given concrete values it answers exactly as the evaluator
would: ``Residual.verdict`` on a full context and resource is the evaluator's decision on them
(tests/access/test_partial_agrees.py checks this over generated policies, principals and requests). Only what can
be settled without the unknowns is settled early: conditions whose keys are all known, Resource entries that match
every id or none (``_glob.classify``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..policy import CallerKind, DecisionKind, Effect, PolicySet, Statement
from ..policy._conditions import ConditionEntry
from ..policy._model import Policy, ResourcePattern
from ..policy._variables import Part, Variable, parse_template, substitute
from ._describe import describe_condition, describe_ids, filled
from ._glob import ALWAYS, NEVER, Hole, TemplatePart, classify, hole_pattern
from ._knowledge import Knowledge

__all__ = ["Atom", "Candidate", "ConditionAtom", "Residual", "ResourceAtom", "describe_terms", "partial_decide"]

#: Above this many terms, the layers' conjunction is kept as it is instead of multiplied out.
_EXPANSION_LIMIT = 256


@dataclass(frozen=True, slots=True)
class ConditionAtom:
    """A condition that reads an unknown key (or names an unknown key's value as a policy variable). ``rank``
    orders atoms as the policies do, for the report; it is not part of what the atom is."""

    entry: ConditionEntry
    text: str
    keys: tuple[str, ...]
    rank: int = field(default=0, compare=False)
    #: Whether the policy's version reads ``${...}`` in the values as policy variables (2012-10-17).
    variables: bool = field(default=True, compare=False)

    @property
    def ids(self) -> tuple[str, ...]:
        return ()

    def holds(self, context: Mapping[str, Any], resource: str) -> bool:
        return self.entry.test(context, None)


@dataclass(frozen=True, slots=True)
class ResourceAtom:
    """A Resource (or NotResource) element whose match depends on unknown ids or unknown policy variables.
    ``patterns`` are only the entries that may match; those that match every id are settled before."""

    patterns: tuple[ResourcePattern, ...]
    negated: bool
    text: str
    keys: tuple[str, ...]
    ids: tuple[str, ...]
    rank: int = field(default=0, compare=False)
    #: Each pattern as the evaluator substitutes it with the known values (None: it reads an unknown variable).
    parts: tuple[tuple[Part, ...] | None, ...] = field(default=(), compare=False)

    def holds(self, context: Mapping[str, Any], resource: str) -> bool:
        hit = any(pattern.match(resource, context, None) for pattern in self.patterns)
        return hit != self.negated


Atom = ConditionAtom | ResourceAtom
Term = frozenset[Atom]
Terms = frozenset[Term]
_TRUE: Terms = frozenset({frozenset()})
_FALSE: Terms = frozenset()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A statement that may take part in the decision: ``outright`` when it applies whatever the unknowns are."""

    layer: str
    policy: str
    index: int
    sid: str | None
    effect: str
    outright: bool
    #: The statement as the policy document writes it.
    raw: Mapping[str, Any] = field(compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.layer, "policy": self.policy, "statement": self.index, "sid": self.sid,
                "effect": self.effect, "outright": self.outright, "json": dict(self.raw)}


@dataclass(frozen=True, slots=True)
class Residual:
    """The decision with the unknowns left open. ``allow``: every one of these disjunctions of terms must hold
    (empty: nothing more is needed); ``deny``: a term that holds is an explicit deny."""

    allow: tuple[Terms, ...]
    deny: Terms
    candidates: tuple[Candidate, ...]

    @property
    def static(self) -> DecisionKind | None:
        """The decision when it does not depend on the unknowns, else None."""
        if frozenset() in self.deny:
            return DecisionKind.EXPLICITLY_DENIED
        if any(not terms for terms in self.allow):
            return None if self.deny else DecisionKind.IMPLICITLY_DENIED
        if not self.allow and not self.deny:
            return DecisionKind.ALLOWED
        return None

    @property
    def outcome(self) -> str:
        """``Allowed``, ``Denied`` (whatever the unknowns are) or ``Conditional``."""
        if frozenset() in self.deny or any(not terms for terms in self.allow):
            return "Denied"
        return "Allowed" if not self.allow and not self.deny else "Conditional"

    def verdict(self, context: Mapping[str, Any], resource: str) -> DecisionKind:
        """The decision for concrete values: ``context`` is the whole lower-cased request context."""
        if any(_term_holds(term, context, resource) for term in self.deny):
            return DecisionKind.EXPLICITLY_DENIED
        if all(any(_term_holds(term, context, resource) for term in terms) for terms in self.allow):
            return DecisionKind.ALLOWED
        return DecisionKind.IMPLICITLY_DENIED

    def atoms(self) -> set[Atom]:
        return {atom for terms in (*self.allow, self.deny) for term in terms for atom in term}

    @property
    def keys(self) -> tuple[str, ...]:
        """The unknown context keys the answer depends on, as the policies spell them."""
        names: dict[str, str] = {}
        for atom in self.atoms():
            for key in atom.keys:
                names.setdefault(key.lower(), key)
        return tuple(sorted(names.values(), key=str.lower))

    @property
    def ids(self) -> tuple[str, ...]:
        """The unknown ids of the resource the answer depends on."""
        return tuple(sorted({name for atom in self.atoms() for name in atom.ids}))


def _term_holds(term: Term, context: Mapping[str, Any], resource: str) -> bool:
    return all(atom.holds(context, resource) for atom in term)


def describe_terms(terms: Terms) -> list[str]:
    """Each term as ``a and b``, its atoms in the policies' order, the terms in a stable order."""
    return sorted(" and ".join(atom.text for atom in sorted(term, key=lambda a: (a.rank, a.text))) for term in terms)


# Building a residual --------------------------------------------------------------------------------------------


def partial_decide(
    caller_kind: CallerKind,
    action: str,
    template: tuple[TemplatePart, ...],
    knowledge: Knowledge,
    *,
    identity: PolicySet | None = None,
    boundary: PolicySet | None = None,
    session: PolicySet | None = None,
    guardrails: PolicySet | None = None,
    caller_account: str = "",
) -> Residual:
    """The decision on ``action`` over the resource ``template`` (text and unknown ids), as far as ``knowledge``
    settles it. No resource-based policy takes part: a route's decision never has one (``gate``).

    The account root user is decided as the evaluator decides it: no identity policy, boundary or session policy
    applies to it, and a resource of another account (``caller_account`` names its own) needs a resource policy,
    so nothing allows it (a guardrail's deny still denies it explicitly, as in the evaluator). A template whose
    account field holds an id is taken to be the caller's account."""
    other_account = False
    if caller_kind is CallerKind.ROOT:
        identity = boundary = session = None
        account = _template_account(template)
        other_account = bool(account and caller_account and account != caller_account)
    action_lower = action.lower()
    allows: dict[str, set[Term]] = {}
    denies: set[Term] = set()
    candidates: list[Candidate] = []
    for layer, policy_set in (("guardrail", guardrails), ("identity", identity), ("boundary", boundary),
                              ("session", session)):
        found = allows[layer] = set()
        if policy_set is None:
            continue
        for order, policy, statement in policy_set.candidates(action_lower):
            term = _applies(policy, statement, template, knowledge, order * 1000)
            if term is None:
                continue
            (denies if statement.effect is Effect.DENY else found).add(term)
            candidates.append(Candidate(layer, policy.id, statement.index, statement.sid, statement.effect.value,
                                        not term, statement.raw))
    required: list[Terms] = [_FALSE] if other_account else []
    if guardrails:
        required.append(frozenset(allows["guardrail"]))
    if caller_kind is not CallerKind.ROOT:
        required.append(frozenset(allows["identity"]))
    if boundary:
        required.append(frozenset(allows["boundary"]))
    if caller_kind is CallerKind.FEDERATED_USER:
        required.append(frozenset(allows["session"]) if session else _FALSE)
    elif session:
        required.append(frozenset(allows["session"]))
    deny = _minimal(denies)
    return Residual(_simplified(required, deny), deny, tuple(candidates))


def _template_account(template: tuple[TemplatePart, ...]) -> str | None:
    """The account field of an ARN template (``policy/_evaluate._arn_account``); None when it has none or an id
    fills it."""
    text = ""
    for part in template:
        if isinstance(part, Hole):
            return None if text.count(":") < 5 else _account_of(text)
        text += part
    return _account_of(text)


def _account_of(text: str) -> str | None:
    parts = text.split(":", 5)
    return parts[4] or None if len(parts) == 6 and parts[0] == "arn" else None


def _minimal(terms: Iterable[Term]) -> Terms:
    """Drop every term that holds only when a smaller one does (``a or (a and b)`` is ``a``)."""
    unique = set(terms)
    if len(unique) < 2 or frozenset() in unique:
        return _TRUE if frozenset() in unique else frozenset(unique)
    ordered = sorted(unique, key=len)
    kept: list[Term] = []
    for term in ordered:
        if not any(smaller <= term for smaller in kept):
            kept.append(term)
    return frozenset(kept)


def _simplified(required: list[Terms], deny: Terms) -> tuple[Terms, ...]:
    """The required disjunctions without those that always hold, multiplied out into one when small, without the
    terms a Deny term always cancels (an allow that holds only when a deny holds never allows)."""
    layers = [_minimal(terms) for terms in required]
    layers = [terms for terms in layers if terms != _TRUE]
    if any(not terms for terms in layers):
        return (_FALSE,)
    size = 1
    for terms in layers:
        size *= len(terms)
    if size > _EXPANSION_LIMIT or not layers:
        return tuple(layers)
    product: set[Term] = {frozenset()}
    for terms in layers:
        product = {left | right for left in product for right in terms}
    expanded = _minimal(term for term in product if not any(cancel <= term for cancel in deny))
    return () if expanded == _TRUE else (expanded,)


# One statement --------------------------------------------------------------------------------------------------


def _applies(policy: Policy, statement: Statement, template: tuple[TemplatePart, ...],
             knowledge: Knowledge, rank: int) -> Term | None:
    """The atoms under which ``statement`` applies (empty: outright), or None when it cannot apply."""
    atoms: list[Atom] = []
    if statement.resources is not None:
        found = _resource(policy, statement, template, knowledge, rank)
        if found is False:
            return None
        if found is not True:
            atoms.append(found)
    for number, entry in enumerate(statement.conditions, start=1):
        condition = _condition(entry, knowledge, rank + number, policy.uses_variables)
        if condition is False:
            return None
        if condition is not True:
            atoms.append(condition)
    return frozenset(atoms)


def _condition(entry: ConditionEntry, knowledge: Knowledge, rank: int, variables: bool) -> bool | ConditionAtom:
    read = (entry.key, *sorted(entry.variable_keys))
    unknown = [key for key in read if not knowledge.is_known(key)]
    if not unknown:
        return entry.test(knowledge.values, None)
    names = [entry.key_name] if entry.key in unknown else []
    names += [_variable_name(entry.values, key) for key in unknown if key != entry.key]
    return ConditionAtom(entry, describe_condition(entry, knowledge), tuple(names), rank, variables)


def _variable_name(values: tuple[str, ...], key: str) -> str:
    """A variable's key as a value spells it (``${aws:SourceIp}``), for the report."""
    for value in values:
        for part in parse_template(value) if "${" in value else ():
            if isinstance(part, Variable) and part.key == key:
                return part.name
    return key  # pragma: no cover - variable_keys come from these very values


#: What ``_pattern_parts`` gives for an entry whose variable is known to have no value: it matches nothing.
_MATCHES_NOTHING: tuple[Part, ...] = ()


def _pattern_parts(policy: Policy, pattern: ResourcePattern, knowledge: Knowledge) -> tuple[Part, ...] | None:
    """The entry as the evaluator substitutes it, with known values; None if it depends on an unknown key."""
    if pattern.template is None:
        text = pattern.text
        return parse_template(text) if policy.uses_variables and "${" in text else (text,)
    if any(isinstance(part, Variable) and not knowledge.is_known(part.key) for part in pattern.template):
        return None
    parts = substitute(pattern.template, knowledge.values, None)
    return _MATCHES_NOTHING if parts is None else parts


def _resource(policy: Policy, statement: Statement, template: tuple[TemplatePart, ...],
              knowledge: Knowledge, rank: int) -> bool | ResourceAtom:
    open_patterns: list[ResourcePattern] = []
    open_parts: list[tuple[Part, ...] | None] = []
    described: list[tuple[str, bool]] | None = []
    hit = False
    for pattern in statement.resources or ():
        parts = _pattern_parts(policy, pattern, knowledge)
        if parts == _MATCHES_NOTHING:
            continue
        verdict = classify(parts, template) if parts is not None else None
        if verdict == ALWAYS:
            hit = True
            break
        if verdict == NEVER:
            continue
        open_patterns.append(pattern)
        open_parts.append(parts)
        shape = hole_pattern(parts, template) if parts is not None else None
        if shape is None or described is None:
            described = None
        else:
            described.append(shape)
    if hit or not open_patterns:
        return hit != statement.not_resource
    ids = tuple(sorted({part.name for part in template if isinstance(part, Hole)}))
    keys = tuple(sorted({part.name for pattern in open_patterns for part in pattern.template or ()
                         if isinstance(part, Variable) and not knowledge.is_known(part.key)}))
    negated = statement.not_resource
    if described is not None and ids:
        text = describe_ids(described, ids[0], negated)
    else:
        shown = " or ".join(filled(pattern.text, knowledge) for pattern in open_patterns)
        text = f"resource {'does not match' if negated else 'matches'} {shown}"
    used_ids = ids if any(isinstance(part, Hole) for part in template) else ()
    return ResourceAtom(tuple(open_patterns), negated, text, keys, used_ids, rank, tuple(open_parts))
