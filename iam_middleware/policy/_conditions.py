"""The Condition element: every IAM operator, ``IfExists``, ``ForAllValues:``/``ForAnyValue:``, compiled once.

Combination (IAM User Guide, Condition element): operators AND, keys AND, a key's values OR; negated operators
(``StringNotEquals``, ``NotIpAddress``, ...) are NOR over the values. A missing key makes every operator false except
negated ones, ``...IfExists`` and ``Null``. ``ForAllValues`` is true for a missing or empty key, ``ForAnyValue`` false.
An unqualified operator over a multivalued request value is true when any request value matches (for a negated
operator: when none matches), the reading IAM's simulator gives.

Request values are typed by the operator that reads them: the JSON ``true`` and the string ``"true"`` are the same
value to ``Bool``, and ``3600`` and ``"3600"`` the same to ``Numeric*``. A request value that does not parse for the
operator matches nothing (so a negated operator holds for it).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from ._issues import PolicyIssue
from ._match import Matcher, compile_arn, compile_plain
from ._variables import Literal, Template, TemplateError, Variable, parse_template, scalar_text, substitute

__all__ = ["ConditionEntry", "OPERATORS", "compile_conditions", "split_operator"]

Elem = Callable[[str], bool]
# (family, negated): family decides how values parse and compare.
OPERATORS: dict[str, tuple[str, bool]] = {
    "StringEquals": ("string", False),
    "StringNotEquals": ("string", True),
    "StringEqualsIgnoreCase": ("string_ci", False),
    "StringNotEqualsIgnoreCase": ("string_ci", True),
    "StringLike": ("string_like", False),
    "StringNotLike": ("string_like", True),
    "NumericEquals": ("numeric_eq", False),
    "NumericNotEquals": ("numeric_eq", True),
    "NumericLessThan": ("numeric_lt", False),
    "NumericLessThanEquals": ("numeric_le", False),
    "NumericGreaterThan": ("numeric_gt", False),
    "NumericGreaterThanEquals": ("numeric_ge", False),
    "DateEquals": ("date_eq", False),
    "DateNotEquals": ("date_eq", True),
    "DateLessThan": ("date_lt", False),
    "DateLessThanEquals": ("date_le", False),
    "DateGreaterThan": ("date_gt", False),
    "DateGreaterThanEquals": ("date_ge", False),
    "Bool": ("bool", False),
    "BinaryEquals": ("binary", False),
    "IpAddress": ("ip", False),
    "NotIpAddress": ("ip", True),
    "ArnEquals": ("arn", False),
    "ArnLike": ("arn", False),
    "ArnNotEquals": ("arn", True),
    "ArnNotLike": ("arn", True),
    "Null": ("null", False),
}
# The docs conflict on Bool: the operators page allows policy variables with it, the variables page and Access
# Analyzer ("Policy variables can only be used with String and ARN operators") do not. The stricter reading wins.
_VARIABLE_FAMILIES = {"string", "string_ci", "string_like", "arn"}
_QUALIFIERS = {"ForAllValues": "all", "ForAnyValue": "any"}
#: Global keys that are multivalued (ArrayOf... in the reference); the linter uses these.
MULTIVALUED_KEYS = frozenset(
    {"aws:tagkeys", "aws:calledvia", "aws:principalorgpaths", "aws:principalservicenameslist", "aws:principaltagkeys"}
)


def split_operator(name: str) -> tuple[str | None, str, bool] | None:
    """``ForAnyValue:StringLikeIfExists`` -> ("any", "StringLike", True); None if not an operator."""
    qualifier = None
    base = name
    if ":" in name:
        prefix, _, base = name.partition(":")
        if prefix not in _QUALIFIERS:
            return None
        qualifier = _QUALIFIERS[prefix]
    if_exists = False
    if base.endswith("IfExists") and base != "IfExists":
        base, if_exists = base[: -len("IfExists")], True
    if base not in OPERATORS:
        return None
    return qualifier, base, if_exists


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(text: str) -> Decimal | None:
    """An integer or decimal (``3600``, ``-1.5``, ``2e3``); anything else (blanks, ``NaN``, ``1_000``) is None."""
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):  # pragma: no cover - the pattern admits only what Decimal reads
        return None


# IAM's date grammar, as its "legacy parsing" accepts it: epoch seconds, or an ISO 8601 date with optional time and
# offset (``2019-07-01``, ``2019-07-01T13:20:15Z``, ``2016-12-13t2:00:00.593194+23``, even a bare year ``01T``).
_EPOCH = re.compile(r"\d+(?:\.\d+)?")
_ISO = re.compile(
    r"(?P<year>-?\d{1,9})(?:-(?P<month>\d{1,2})(?:-(?P<day>\d{1,2}))?)?"
    r"(?:[Tt](?:(?P<hour>\d{1,2})(?::(?P<minute>\d{1,2})(?::(?P<second>\d{1,2})(?:\.(?P<fraction>\d{1,9}))?)?)?"
    r"(?P<zone>[Zz]|(?P<zsign>[+-])(?P<zhour>\d{2})(?::?(?P<zminute>\d{2}))?)?)?)?"
)
_YEARS = (-292275054, 292278993)  # the span IAM accepts (Java's millisecond clock)
_MAX_EPOCH = 2**63 - 1
_NANO = 10**9


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar, for any year (datetime stops at 1..9999)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_date(text: str) -> int | None:
    """Epoch seconds or a W3C/ISO 8601 date-time, as epoch nanoseconds (exact, so equality is meaningful)."""
    if _EPOCH.fullmatch(text):
        epoch = Decimal(text)
        return int(epoch * _NANO) if epoch <= _MAX_EPOCH else None
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    year = int(m["year"])
    month = int(m["month"] or 1)
    day = int(m["day"] or 1)
    hour, minute, second = int(m["hour"] or 0), int(m["minute"] or 0), int(m["second"] or 0)
    if not (_YEARS[0] <= year <= _YEARS[1] and 1 <= month <= 12 and 1 <= day <= _month_days(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if m["zsign"]:
        zone_hour, zone_minute = int(m["zhour"]), int(m["zminute"] or 0)
        if zone_hour > 23 or zone_minute > 59:
            return None
        offset = (zone_hour * 3600 + zone_minute * 60) * (1 if m["zsign"] == "+" else -1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    fraction = int((m["fraction"] or "").ljust(9, "0"))
    return seconds * _NANO + fraction


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A request address; an IPv4-mapped IPv6 address (``::ffff:203.0.113.7``) is its IPv4 address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)  # parsing a CIDR is slow, and the same ranges recur across policies
def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A policy CIDR (a bare address is ``/32`` or ``/128``); an IPv4-mapped IPv6 range becomes its IPv4 range."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    mapped = network.network_address.ipv4_mapped if isinstance(network, ipaddress.IPv6Network) else None
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def _parse_binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


_NUMERIC_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda r, p: bool(r == p),
    "lt": lambda r, p: bool(r < p),
    "le": lambda r, p: bool(r <= p),
    "gt": lambda r, p: bool(r > p),
    "ge": lambda r, p: bool(r >= p),
}


@dataclass(frozen=True, slots=True)
class ConditionEntry:
    """One ``operator -> key -> values`` test. ``test(context, missing)`` is the compiled check."""

    operator: str
    key: str  # lower-cased
    key_name: str
    values: tuple[str, ...]
    test: Callable[[Mapping[str, Any], set[str] | None], bool]
    variable_keys: frozenset[str]  # lower-cased keys of the policy variables in the values


def _elem_for(family: str, values: Sequence[str], templates: Sequence[Template] | None) -> Callable[..., bool] | None:
    """Build ``positive(request_value_text, context, missing) -> bool`` for one family, or None if a value is bad."""
    if templates is not None:
        return _templated_elem(family, templates)
    if family == "string":
        allowed = frozenset(values)
        return lambda r, ctx, missing: r in allowed
    if family == "string_ci":
        allowed_ci = frozenset(v.lower() for v in values)
        return lambda r, ctx, missing: r.lower() in allowed_ci
    if family == "string_like":
        like = [compile_plain([v]) for v in values]
        return lambda r, ctx, missing: any(m(r) for m in like)
    if family == "arn":
        arns = [compile_arn([v]) for v in values]
        return lambda r, ctx, missing: any(m(r) for m in arns)
    if family.startswith(("numeric_", "date_")):
        return _ordered(parse_number if family.startswith("numeric_") else parse_date, values,
                        _NUMERIC_CMP[family.split("_")[1]])
    if family == "bool":
        lowered = [v.lower() for v in values]
        if any(v not in ("true", "false") for v in lowered):
            return None
        truth = frozenset(lowered)
        return lambda r, ctx, missing: r.lower() in truth
    if family == "binary":
        blobs = [_parse_binary(v) for v in values]
        if any(b is None for b in blobs):
            return None
        return lambda r, ctx, missing: _parse_binary(r) in blobs
    if family == "ip":
        networks = [_parse_network(v) for v in values]
        if any(n is None for n in networks):
            return None

        def ip(r: str, ctx: Any, missing: Any) -> bool:
            address = parse_ip(r)
            return address is not None and any(address in n for n in networks if n is not None)

        return ip
    raise AssertionError(family)  # pragma: no cover - OPERATORS and this function are kept in step


def _ordered(parse: Callable[[str], Any], values: Sequence[str],
             cmp: Callable[[Any, Any], bool]) -> Callable[..., bool] | None:
    """Numeric and Date operators: both sides parsed by ``parse`` (None if a policy value does not parse)."""
    parsed = [parse(v) for v in values]
    if any(p is None for p in parsed):
        return None

    def ordered(r: str, ctx: Any, missing: Any) -> bool:
        value = parse(r)
        return value is not None and any(cmp(value, p) for p in parsed)

    return ordered


def _templated_elem(family: str, templates: Sequence[Template]) -> Callable[..., bool]:
    """String and ARN values with policy variables: substitute per request; a substituted value is literal."""

    def positive(r: str, ctx: Mapping[str, Any], missing: set[str] | None) -> bool:
        for template in templates:
            parts = substitute(template, ctx, missing)
            if parts is None:
                continue  # an unresolved variable: this policy value matches nothing
            if family == "string":
                if r == _join(parts):
                    return True
            elif family == "string_ci":
                if r.lower() == _join(parts).lower():
                    return True
            elif family == "string_like":
                if _cached_plain(parts)(r):
                    return True
            elif _cached_arn(parts)(r):
                return True
        return False

    return positive


def _join(parts: tuple[Any, ...]) -> str:
    return "".join(p.text if isinstance(p, Literal) else p for p in parts)


_MATCHER_CACHE: dict[tuple[str, tuple[Any, ...]], Matcher] = {}


def _cached_plain(parts: tuple[Any, ...]) -> Matcher:
    return _cached("plain", parts, compile_plain)


def _cached_arn(parts: tuple[Any, ...]) -> Matcher:
    return _cached("arn", parts, compile_arn)


def _cached(kind: str, parts: tuple[Any, ...], build: Callable[[Sequence[Any]], Matcher]) -> Matcher:
    key = (kind, parts)
    matcher = _MATCHER_CACHE.get(key)
    if matcher is None:
        if len(_MATCHER_CACHE) > 4096:
            _MATCHER_CACHE.clear()  # substituted values come from requests: keep the cache bounded
        matcher = _MATCHER_CACHE[key] = build(parts)
    return matcher


def _is_missing(value: Any) -> bool:
    """No value to test: the key is absent, null, or an empty list."""
    return value is None or (isinstance(value, (list, tuple)) and len(value) == 0)


def _is_empty_set(value: Any) -> bool:
    """An empty data set for set qualifiers and ``Null``: missing, or an empty string.

    IAM User Guide (multivalued context keys): when the request's values "resolve to an empty data set (for example,
    an empty string)", ForAllValues is true and ForAnyValue false; a ``Null: false`` check is what keeps a missing
    key or one "with empty values" from evaluating to true, so ``Null`` treats an empty string as null too.
    """
    return value == "" or _is_missing(value)


def _build_test(
    qualifier: str | None, family: str, negated: bool, if_exists: bool, key: str, key_name: str, positive: Any
) -> Callable[[Mapping[str, Any], set[str] | None], bool]:
    def test(ctx: Mapping[str, Any], missing: set[str] | None) -> bool:
        value = ctx.get(key)
        if _is_empty_set(value) if qualifier else _is_missing(value):
            if missing is not None and value is None and not if_exists:
                missing.add(key_name)
            if qualifier == "all":
                return True
            if qualifier == "any":
                return if_exists
            return if_exists or negated
        items = [scalar_text(v) for v in value] if isinstance(value, (list, tuple)) else [scalar_text(value)]
        if negated:
            results = (not positive(r, ctx, missing) for r in items)
        else:
            results = (positive(r, ctx, missing) for r in items)
        if qualifier == "all":
            return all(results)
        if qualifier == "any":
            return any(results)
        # Unqualified over a list: any request value matches; negated: none does (all fail the positive test).
        return all(results) if negated else any(results)

    return test


def _null_test(qualifier: str | None, key: str, expect_missing: frozenset[bool]) -> Callable[..., bool]:
    if qualifier == "all":
        return lambda ctx, missing: True
    if qualifier == "any":
        return lambda ctx, missing: False
    return lambda ctx, missing: _is_empty_set(ctx.get(key)) in expect_missing


def compile_conditions(
    block: Any, location: str, *, variables: bool, issues: list[PolicyIssue]
) -> tuple[ConditionEntry, ...]:
    """Validate and compile a Condition element; errors go to ``issues`` (the caller rejects the document)."""
    if not isinstance(block, Mapping):
        issues.append(PolicyIssue(location, "Syntax errors in policy. Condition must be an object"))
        return ()
    entries: list[ConditionEntry] = []
    for op_name, key_map in block.items():
        where = f"{location}.{op_name}"
        if not isinstance(key_map, Mapping):
            issues.append(
                PolicyIssue(where, f"Syntax errors in policy. The value of operator {op_name} must be an object")
            )
            continue
        parsed = split_operator(op_name) if isinstance(op_name, str) else None
        if parsed is None:
            if key_map:
                issues.append(PolicyIssue(where, f"Syntax errors in policy. Unknown condition operator {op_name!r}"))
            continue
        qualifier, base, if_exists = parsed
        family, negated = OPERATORS[base]
        if base == "Null" and if_exists:
            issues.append(PolicyIssue(where, "Null with IfExists: the Null operator cannot take the IfExists suffix"))
            continue
        seen: dict[str, str] = {}
        for key_name, raw in key_map.items():
            first = seen.setdefault(str(key_name).lower(), str(key_name))
            if first != key_name:
                # Keys are case-insensitive, so these are one key given twice; IAM rejects the document.
                issues.append(PolicyIssue(f'{where}."{key_name}"', f"Syntax errors in policy. Duplicate condition key "
                                          f"{key_name!r} (the same key as {first!r}: keys are case-insensitive)"))
                continue
            entry = _compile_entry(
                op_name, qualifier, base, family, negated, if_exists, key_name, raw, f'{where}."{key_name}"',
                variables, issues,
            )
            if entry is not None:
                entries.append(_interned(entry, variables))
    return tuple(entries)


#: Compiled entries by all that determines them. The same condition (TLS only, MFA, a source range, a region)
#: recurs across policies and principals; sharing one entry saves memory and the cache lines a decision touches.
_INTERNED: dict[tuple[str, str, tuple[str, ...], bool], ConditionEntry] = {}


def _interned(entry: ConditionEntry, variables: bool) -> ConditionEntry:
    key = (entry.operator, entry.key_name, entry.values, variables)
    found = _INTERNED.get(key)
    if found is None:
        if len(_INTERNED) >= 65536:
            _INTERNED.clear()
        found = _INTERNED[key] = entry
    return found


def _compile_entry(
    op_name: str,
    qualifier: str | None,
    base: str,
    family: str,
    negated: bool,
    if_exists: bool,
    key_name: Any,
    raw: Any,
    where: str,
    variables: bool,
    issues: list[PolicyIssue],
) -> ConditionEntry | None:
    if not isinstance(key_name, str) or not key_name:
        issues.append(PolicyIssue(where, "Syntax errors in policy. A condition key must be a non-empty string"))
        return None
    raw_values = raw if isinstance(raw, list) else [raw]
    if any(isinstance(v, (dict, list)) or v is None for v in raw_values):
        issues.append(
            PolicyIssue(where, "Syntax errors in policy. Condition values must be strings, numbers or booleans")
        )
        return None
    values = tuple(scalar_text(v) for v in raw_values)
    key = key_name.lower()
    if family == "null":
        truth = {v.lower() for v in values}
        if not truth <= {"true", "false"}:
            issues.append(PolicyIssue(where, f"Null takes \"true\" or \"false\", got {list(values)!r}", code="type"))
            return None
        expect = frozenset(t == "true" for t in truth)
        test = _null_test(qualifier, key, expect)
        return ConditionEntry(op_name, key, key_name, values, test, frozenset())
    templates: list[Template] | None = None
    if variables and any("${" in v for v in values):
        if family not in _VARIABLE_FAMILIES:
            issues.append(
                PolicyIssue(where, f"Invalid variable for operator: policy variables cannot be used with {base}")
            )
            return None
        try:
            templates = [parse_template(v) for v in values]
        except TemplateError as exc:
            issues.append(PolicyIssue(where, str(exc), code="variable"))
            return None
    positive = _elem_for(family, values, templates)
    if positive is None:
        problem = f"{base} cannot parse the value(s) {list(values)!r}"
        if family.startswith("date_"):
            # IAM rejects a malformed date with its legacy-parser message; other types it leaves to Access Analyzer.
            problem = f"The policy failed legacy parsing: {problem} as a date (ISO 8601 or epoch seconds)"
        issues.append(PolicyIssue(where, problem, code="type"))
        return None
    test = _build_test(qualifier, family, negated, if_exists, key, key_name, positive)
    variable_keys = frozenset(p.key for t in templates or () for p in t if isinstance(p, Variable))
    return ConditionEntry(op_name, key, key_name, values, test, variable_keys)
