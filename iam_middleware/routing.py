"""What a route requires: a Permission (action + resource template + extra context keys) or ``public``.

Declared next to the route (``@permission`` / ``@public``, a FastAPI dependency, a Flask view decorator) or in one
rules table (``Rule``) for apps whose code is not touched. Framework-free: every shell resolves the route with its
own router, then renders the permission here.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import quote, unquote_to_bytes

from ._exceptions import BadRequestError, ConfigurationError

__all__ = [
    "PUBLIC",
    "MissingValueError",
    "Permission",
    "Public",
    "Requirement",
    "Rule",
    "RuleTable",
    "canonical_path",
    "declared",
    "permission",
    "public",
    "render",
    "render_template",
    "request_values",
    "unknown_placeholders",
]

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__iam_permission__"
# Header names have hyphens (``{header.x-tenant}``); path parameter names never do, so allowing them costs nothing.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
_SOURCES = ("path", "query", "header")
# Everything outside RFC 3986's unreserved set is percent-encoded in substituted values, so a value can never add a
# wildcard (* ?), a policy variable ($), an ARN segment (:) or a path level (/) to the resource it is put into.
_SAFE = "-._~"
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")  # what quote(safe=_SAFE) leaves as it is
# Values every permission may name besides the route's own parameters.
_FIXED_VALUES = frozenset({"account", "partition", "region"})
#: What a ``[[routes]]`` entry may say; anything else is a typo that would silently change what the route requires.
_RULE_KEYS = ("method", "path", "action", "resource", "context", "public", "unsigned_payload")
# The request may add context keys of its own, but never the keys IAM itself computes from the credential and the
# connection (aws:SourceIp, aws:PrincipalArn, aws:MultiFactorAuthPresent, ...): a value taken from the request would
# let the caller choose them. AWS likewise lets a request carry only its tags in the aws: namespace.
_REQUEST_AWS_KEYS = re.compile(r"aws:(RequestTag/.+|TagKeys)", re.IGNORECASE)


class MissingValueError(ConfigurationError):
    """A template names a value the request does not have: ``name`` says which (a path parameter, ``query.X``...)."""

    def __init__(self, name: str, template: str) -> None:
        super().__init__(f"no value for {{{name}}} in {template!r}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Permission:
    """``action`` on ``resource``; ``{name}`` in the resource and context values comes from the request.

    Placeholders: path parameters by name; ``{account}``, ``{partition}``, ``{region}`` of the caller and service;
    in ``context`` values also ``query.NAME`` and ``header.NAME``. Substituted values are percent-encoded.
    """

    action: str
    resource: str = "*"
    context: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or self.action.count(":") != 1 or any(c in self.action for c in "*?"):
            raise ConfigurationError(f"permission action {self.action!r} must be one concrete 'service:Action'")
        if not isinstance(self.resource, str) or not self.resource:
            raise ConfigurationError(f"permission resource for {self.action} must be a non-empty string")
        for key, value in self.context.items():
            if not isinstance(key, str) or ":" not in key.strip(":") or not isinstance(value, str):
                raise ConfigurationError(f"permission context of {self.action}: keys are 'prefix:Name' strings and "
                                         f"values strings (got {key!r}: {value!r})")
            if key.lower().startswith("aws:") and not _REQUEST_AWS_KEYS.fullmatch(key):
                raise ConfigurationError(f"permission context of {self.action}: {key} is computed by IAM and cannot "
                                         "come from the request (only aws:RequestTag/... and aws:TagKeys can)")
        object.__setattr__(self, "context", MappingProxyType(dict(self.context)))

    def placeholders(self) -> set[str]:
        names = set(_PLACEHOLDER.findall(self.resource))
        for value in self.context.values():
            names.update(_PLACEHOLDER.findall(value))
        return names


class Public:
    """The marker of routes anyone may call, without a credential."""

    _instance: Public | None = None

    def __new__(cls) -> Public:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC = Public()
Requirement = Permission | Public


def _mark(fn: Any, requirement: Requirement) -> None:
    existing = getattr(fn, _ATTRIBUTE, None)
    if existing is not None and existing != requirement:
        name = getattr(fn, "__qualname__", repr(fn))
        raise ConfigurationError(f"{name} is declared twice ({existing!r} and {requirement!r}); declare it once")
    try:
        setattr(fn, _ATTRIBUTE, requirement)
    except (AttributeError, TypeError):
        raise ConfigurationError(f"cannot declare a permission on {fn!r}") from None


def permission(action: str, resource: str = "*", *, context: Mapping[str, str] | None = None) -> Callable[[F], F]:
    """Declare what an endpoint (function, method or class) requires. Sync and async endpoints alike."""
    requirement = Permission(action, resource, context or {})

    def decorate(fn: F) -> F:
        _mark(fn, requirement)
        return fn

    return decorate


def public(fn: F) -> F:
    """Declare an endpoint public: no credential needed, no policy consulted."""
    _mark(fn, PUBLIC)
    return fn


def declared(endpoint: Any, method: str | None = None) -> Requirement | None:
    """The requirement declared on an endpoint (or, for class-based endpoints, on its handler for ``method``)."""
    if method is not None and isinstance(endpoint, type):
        handler_name = "get" if method == "HEAD" and not hasattr(endpoint, "head") else method.lower()
        handler = getattr(endpoint, handler_name, None)
        found = getattr(handler, _ATTRIBUTE, None)
        if found is not None:
            return found  # type: ignore[no-any-return]
    return getattr(endpoint, _ATTRIBUTE, None)


def _encode(value: Any) -> str:
    text = str(value)
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe=_SAFE)


@functools.lru_cache(maxsize=1024)
def _pieces(template: str) -> tuple[tuple[str, str | None], ...]:
    """A template as (literal text, placeholder name or None) pairs, split once per distinct template."""
    pieces: list[tuple[str, str | None]] = []
    start = 0
    for match in _PLACEHOLDER.finditer(template):
        pieces.append((template[start:match.start()], match.group(1)))
        start = match.end()
    pieces.append((template[start:], None))
    return tuple(pieces)


def render_template(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` placeholders with percent-encoded values; a missing value raises MissingValueError."""
    out: list[str] = []
    for literal, name in _pieces(template):
        out.append(literal)
        if name is not None:
            value = values.get(name)
            if value is None:
                raise MissingValueError(name, template)
            out.append(_encode(value))
    return "".join(out)


def unknown_placeholders(requirement: Permission, path_params: Collection[str]) -> list[str]:
    """The placeholders of ``requirement`` that a route with these path parameters can never fill (neither a
    parameter, nor ``{account}``/``{partition}``/``{region}``, nor a ``query.``/``header.`` value)."""
    names = requirement.placeholders() - set(path_params) - _FIXED_VALUES
    return sorted(name for name in names if not name.startswith(("query.", "header.")))


def request_values(
    path_params: Mapping[str, Any], query: Mapping[str, str], headers: Mapping[str, str], fixed: Mapping[str, str]
) -> dict[str, Any]:
    """All values a template may name: path params, fixed ones, and ``query.NAME`` / ``header.NAME``."""
    values: dict[str, Any] = dict(fixed)
    values.update(path_params)
    for key, value in query.items():
        values[f"query.{key}"] = value
    for key, value in headers.items():
        values[f"header.{key.lower()}"] = value
    return values


def render(requirement: Permission, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(resource, extra context) of a permission for one request. Context values that name an absent query
    parameter or header are left out (the key is absent, as IAM treats a missing context key)."""
    resource = render_template(requirement.resource, values)
    context: dict[str, Any] = {}
    for key, template in requirement.context.items():
        names = _PLACEHOLDER.findall(template)
        if any(name not in values for name in names):
            continue
        context[key.lower()] = _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return resource, context


# Rules table -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of a rules table: ``method`` (or ``*``) and a path template (``/orders/{order_id}``) to a
    requirement. ``{name:path}`` matches several segments; other parameters one segment. A trailing ``/`` is not
    significant on either side (``/admin/`` is ``/admin``): apps and proxies commonly treat them alike, so a rule for
    one must also govern the other.

    ``unsigned_payload``: behind a gateway, a SigV4 request to this route may sign ``UNSIGNED-PAYLOAD`` (over HTTPS)
    although the gateway does not forward its body; the body is then not covered by the signature. Only the
    external authorizer reads it: shells that read the body verify every signed payload (docs/gateways.md)."""

    method: str
    path: str
    requirement: Requirement
    unsigned_payload: bool = False
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ConfigurationError(f"rule path {self.path!r} must start with '/'")
        if not isinstance(self.requirement, Requirement):
            raise ConfigurationError(f"rule {self.method} {self.path}: the requirement must be a Permission or PUBLIC")
        if not isinstance(self.unsigned_payload, bool):
            raise ConfigurationError(f"rule {self.method} {self.path}: unsigned_payload must be true or false")
        object.__setattr__(self, "method", self.method.upper())
        pattern = ""
        pos = 0
        names: set[str] = set()
        for match in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}", self.path):
            name = match.group(1)
            if name in names:
                raise ConfigurationError(f"rule path {self.path!r} names {{{name}}} twice")
            names.add(name)
            pattern += re.escape(self.path[pos:match.start()])
            pattern += f"(?P<{name}>.+)" if match.group(2) else f"(?P<{name}>[^/]+)"
            pos = match.end()
        pattern += re.escape(self.path[pos:])
        object.__setattr__(self, "_regex", re.compile(_without_trailing_slash(pattern)))
        unknown = unknown_placeholders(self.requirement, names) if isinstance(self.requirement, Permission) else []
        if unknown:
            raise ConfigurationError(f"rule {self.method} {self.path}: the permission names {{{unknown[0]}}}, which "
                                     "is not a parameter of this path")

    def handles(self, method: str) -> bool:
        """Whether this rule governs ``method`` (``*`` governs every method, OPTIONS included; GET governs HEAD)."""
        return self.method in ("*", method) or (self.method == "GET" and method == "HEAD")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this rule governs ``method`` on the canonical ``path``, else None."""
        if not self.handles(method):
            return None
        found = self._regex.fullmatch(_without_trailing_slash(path))
        return found.groupdict() if found else None


def _without_trailing_slash(path: str) -> str:
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


class RuleTable:
    """Rules checked in order; the first whose method and path match decides. Built from ``[[routes]]`` tables.

    The same method and path twice is a configuration error: only the first would ever be used."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules = tuple(rules)
        seen: set[tuple[str, str]] = set()
        for rule in self.rules:
            if (rule.method, rule.path) in seen:
                raise ConfigurationError(f"{rule.method} {rule.path} is in the rules table twice; declare it once")
            seen.add((rule.method, rule.path))

    def __bool__(self) -> bool:
        return bool(self.rules)

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]]) -> RuleTable:
        rules = []
        for i, entry in enumerate(entries):
            where = f"routes[{i}]"
            if not isinstance(entry, Mapping):
                raise ConfigurationError(f"{where}: must be a table")
            unknown = sorted(str(key) for key in entry if key not in _RULE_KEYS)
            if unknown:
                hints = [f"{key!r}" + (f" (did you mean {near[0]!r}?)" if (near := difflib.get_close_matches(
                    key, _RULE_KEYS, n=1)) else "") for key in unknown]
                raise ConfigurationError(f"{where}: unknown key {', '.join(hints)}; a route takes "
                                         f"{', '.join(sorted(_RULE_KEYS))}")
            if entry.get("public") and "action" in entry:
                raise ConfigurationError(f"{where}: a route is either public or has an action, not both")
            try:
                method = str(entry.get("method", "*"))
                path = str(entry["path"])
                if entry.get("public"):
                    requirement: Requirement = PUBLIC
                else:
                    requirement = Permission(str(entry["action"]), str(entry.get("resource", "*")),
                                             dict(entry.get("context", {})))
                rules.append(Rule(method, path, requirement, entry.get("unsigned_payload", False)))
            except KeyError as exc:
                raise ConfigurationError(f"{where}: missing {exc.args[0]!r}") from None
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
        return cls(rules)

    def lookup(self, method: str, path: str) -> tuple[Rule, dict[str, str]] | None:
        """The first rule matching a request's method and canonical path, with its path parameters."""
        for rule in self.rules:
            params = rule.match(method, path)
            if params is not None:
                return rule, params
        return None

    def for_template(self, method: str, template: str) -> Rule | None:
        """The rule declared for a router's route template (``/orders/{order_id}``), compared as text."""
        for rule in self.rules:
            if rule.path == template and rule.handles(method):
                return rule
        return None


_AMBIGUOUS = re.compile(r"%(2[fF]|5[cC]|00|25|2[eE]|3[bB])")
# The common path, decided by one match: non-empty segments of printable ASCII without ``%``, ``;`` or ``\``, none
# of them ``.`` or ``..``, and an optional trailing ``/``. Such a path decodes to itself and passes every check of
# ``canonical_path`` (tests/test_routing.py proves the two agree); anything else takes the checks one by one.
_PLAIN_PATH = re.compile(rb"(?:/(?!\.\.?(?:/|\Z))[!-$&-.0-:<-\[\]-~]+)*/?")


def canonical_path(raw_path: bytes) -> str:
    """The decoded path of a request, or BadRequestError if the raw path is ambiguous: an encoded ``/``, ``\\``,
    NUL, ``%``, ``.`` or ``;``, dot segments, empty segments (``//``), segment parameters (``;``: servlet containers
    drop them, so ``/admin;x`` is ``/admin`` there), control characters or invalid UTF-8. What is accepted reads the
    same to any router, proxy or backend, so the path matched is the path dispatched."""
    if raw_path[:1] == b"/" and _PLAIN_PATH.fullmatch(raw_path):
        return raw_path.decode("ascii")
    return _checked_path(raw_path)


def _checked_path(raw_path: bytes) -> str:
    """``canonical_path`` one check at a time (every path the fast match does not take)."""
    if not raw_path.startswith(b"/"):
        raise BadRequestError("The request path must start with '/'.", code="InvalidPath")
    if _AMBIGUOUS.search(raw_path.decode("latin-1")):
        raise BadRequestError("The request path has an ambiguous encoding (%2F, %5C, %00, %25, %2E or %3B).",
                              code="InvalidPath")
    try:
        # Decoded from the bytes: a raw byte that is not UTF-8 must fail here, not be re-read as Latin-1.
        decoded = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("The request path is not valid UTF-8.", code="InvalidPath") from None
    segments = decoded.split("/")[1:]
    if any(seg in (".", "..") for seg in segments) or "//" in decoded:
        raise BadRequestError("The request path has dot segments or empty segments.", code="InvalidPath")
    if ";" in decoded:
        raise BadRequestError("The request path has segment parameters (';').", code="InvalidPath")
    if any(ord(ch) < 0x20 or ch in "\x7f\\" for ch in decoded):
        raise BadRequestError("The request path has control characters or a backslash.", code="InvalidPath")
    return decoded
