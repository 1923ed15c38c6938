"""Parse and validate a policy document into compiled ``Policy`` objects, naming every error and where it is.

A document is accepted whole or rejected whole: ``PolicyValidationError.issues`` lists every error found, each
with its location (``Statement[2].Condition.StringEquals."aws:SourceIp"``) and, where IAM has one, IAM's own
``MalformedPolicyDocument`` message.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from .._exceptions import PolicyValidationError
from .._json import JSONError, loads
from ._conditions import ConditionEntry, compile_conditions
from ._issues import PolicyIssue
from ._match import compile_action, compile_resource
from ._model import Effect, Policy, PolicyKind, PrincipalSpec, ResourcePattern, Statement
from ._variables import TemplateError, Variable, parse_template

__all__ = ["load_json", "parse_policy"]

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_KEYS = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {
    "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition",
}
_IAM_SID = re.compile(r"[0-9A-Za-z]*")
_IAM_SID_KINDS = frozenset({PolicyKind.IDENTITY, PolicyKind.BOUNDARY, PolicyKind.SESSION, PolicyKind.TRUST})
_VENDOR = re.compile(r"[A-Za-z0-9_.*?-]+")
_PARTITION = re.compile(r"[A-Za-z0-9*?-]+")
_AWS_PARTITIONS = {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}
_IAM_PATH_PREFIXES = (
    "user/", "federated-user/", "role/", "group/", "instance-profile/", "mfa/", "server-certificate/", "policy/",
    "sms-mfa/", "saml-provider/", "oidc-provider/", "report/", "access-report/",
)
MAX_DOCUMENT_BYTES = 1 << 20
MAX_DEPTH = 32


def load_json(text: str | bytes | bytearray) -> Any:
    """Decode JSON strictly (``iam_middleware._json``: no duplicate member names, which are a parser differential,
    no NaN or Infinity, no unpaired surrogates), refusing oversized input before parsing."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise PolicyValidationError([PolicyIssue("", f"Policy document is larger than {MAX_DOCUMENT_BYTES} bytes")])
    try:
        return loads(text)
    except JSONError as exc:
        problem = f"Duplicate member name {exc.member!r}" if exc.member is not None else f"Not valid JSON: {exc}"
        raise PolicyValidationError([PolicyIssue("", f"Syntax errors in policy. {problem}")]) from None


def _depth(value: Any, limit: int) -> bool:
    """True if nesting stays within ``limit`` levels."""
    if limit < 0:
        return False
    if isinstance(value, Mapping):
        return all(_depth(v, limit - 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth(v, limit - 1) for v in value)
    return True


class CompiledDocument(Mapping[str, Any]):
    """A policy document as written (read-only), with the statements compiled from it.

    Policies of the same text and kind share one: directories repeat documents (one template in every user's
    inline policy, ``${aws:username}`` being resolved per request and not at load; the same guardrail in many
    accounts), and sharing keeps one compiled copy in memory (docs/operations.md, "Memory and cache bounds"). Each
    ``Policy`` keeps its own ``id``, so a decision still names the policy that decided it. Statements are immutable,
    so a shared one decides exactly as a fresh parse of the same text would.
    """

    __slots__ = ("__weakref__", "_data", "statements")

    def __init__(self, data: Mapping[str, Any], statements: tuple[Statement, ...]) -> None:
        self._data = dict(data)
        self.statements = statements

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"CompiledDocument({self._data!r})"


#: Compiled documents by a digest of their text as written and their kind, for as long as some policy holds them.
_SHARED: weakref.WeakValueDictionary[bytes, CompiledDocument] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def _key(doc: Mapping[str, Any], kind: PolicyKind) -> bytes | None:
    """A digest of the document's JSON text (key order kept) and its kind; None for a mapping that is not JSON.

    Hashed member by member, and statement by statement: one text of a whole large document would be a large
    short-lived allocation per policy, which fragments the heap of a process loading thousands of them.
    """
    digest = hashlib.sha256(kind.value.encode())
    try:
        for name, value in doc.items():
            # Each piece is JSON text, which never holds a raw NUL: the separators keep the framing unambiguous.
            digest.update(b"\0" + _text(name))
            if name == "Statement" and isinstance(value, list):
                digest.update(b"\0[")
                for statement in value:
                    digest.update(b"\0" + _text(statement))
            else:
                digest.update(b"\0" + _text(value))
    except (TypeError, ValueError):
        return None
    return digest.digest()


def _text(value: Any) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "surrogatepass")


def parse_policy(
    document: str | bytes | bytearray | Mapping[str, Any],
    *,
    kind: PolicyKind | str = PolicyKind.IDENTITY,
    policy_id: str | None = None,
) -> Policy:
    """Validate and compile one policy document. Raises ``PolicyValidationError`` listing every error.

    A mapping given here is kept, not copied (``Policy.document``, each statement's ``raw``; shared by policies of
    the same text): do not change it afterwards."""
    kind = PolicyKind(kind)
    doc = load_json(document) if isinstance(document, (str, bytes, bytearray)) else document
    issues: list[PolicyIssue] = []
    if not isinstance(doc, Mapping):
        raise PolicyValidationError([PolicyIssue("", "Syntax errors in policy. The document must be a JSON object")])
    if not _depth(doc, MAX_DEPTH):
        raise PolicyValidationError(
            [PolicyIssue("", f"Syntax errors in policy. Nested deeper than {MAX_DEPTH} levels")]
        )
    digest = _key(doc, kind)
    shared = _SHARED.get(digest) if digest is not None else None
    if shared is not None:  # the same text of the same kind: valid, and compiled to the same statements
        version, doc_id = doc.get("Version"), doc.get("Id")
        label = policy_id or (doc_id if isinstance(doc_id, str) and doc_id else f"{kind.value}-policy")
        return Policy(id=label, kind=kind, version=version if isinstance(version, str) else None,
                      statements=shared.statements, document=shared)
    for key in doc:
        if key not in _TOP_KEYS:
            issues.append(PolicyIssue(str(key), f"Syntax errors in policy. Unknown element {key!r}"))
    version = doc.get("Version")
    if version is not None and version not in VERSIONS:
        issues.append(PolicyIssue("Version", f"Syntax errors in policy. Version must be one of {', '.join(VERSIONS)}"))
    doc_id = doc.get("Id")
    if doc_id is not None and not isinstance(doc_id, str):
        issues.append(PolicyIssue("Id", "Syntax errors in policy. Id must be a string"))

    raw_statements = doc.get("Statement")
    statements: list[Statement] = []
    if raw_statements is None or raw_statements == []:
        issues.append(PolicyIssue("Statement", "Syntax errors in policy. Statement is missing or empty"))
    else:
        listed = isinstance(raw_statements, list)
        items = raw_statements if listed else [raw_statements]
        variables = version == "2012-10-17"
        sids: dict[str, int] = {}
        for index, raw in enumerate(items):
            where = f"Statement[{index}]" if listed else "Statement"
            statement = _parse_statement(raw, index, where, kind, variables, issues)
            if statement is None:
                continue
            if statement.sid is not None:
                if statement.sid in sids:
                    issues.append(
                        PolicyIssue(f"{where}.Sid", "Statement IDs (SID) in a single policy must be unique.")
                    )
                sids[statement.sid] = index
            statements.append(statement)
    if issues:
        raise PolicyValidationError(issues, source=policy_id)
    label = policy_id or (doc_id if isinstance(doc_id, str) and doc_id else f"{kind.value}-policy")
    compiled = CompiledDocument(doc, tuple(statements))
    if digest is not None:
        with _SHARED_LOCK:
            compiled = _SHARED.setdefault(digest, compiled)
    return Policy(id=label, kind=kind, version=version if isinstance(version, str) else None,
                  statements=compiled.statements, document=compiled)


def _strings(value: Any, where: str, element: str, issues: list[PolicyIssue]) -> tuple[str, ...] | None:
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        issues.append(PolicyIssue(where, f"Syntax errors in policy. {element} must be a string or a list of strings"))
        return None
    return tuple(values)


def _parse_statement(
    raw: Any, index: int, where: str, kind: PolicyKind, variables: bool, issues: list[PolicyIssue]
) -> Statement | None:
    if not isinstance(raw, Mapping):
        issues.append(PolicyIssue(where, "Syntax errors in policy. A statement must be an object"))
        return None
    before = len(issues)
    for key in raw:
        if key not in _STATEMENT_KEYS:
            issues.append(PolicyIssue(f"{where}.{key}", f"Syntax errors in policy. Unknown element {key!r}"))
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        issues.append(PolicyIssue(f"{where}.Sid", "Syntax errors in policy. Sid must be a string"))
    elif variables and isinstance(sid, str) and "${" in sid:
        issues.append(PolicyIssue(f"{where}.Sid", "Variable unsupported in element: policy variables cannot be used "
                                  "in Sid", code="variable"))
    elif isinstance(sid, str) and kind in _IAM_SID_KINDS and not _IAM_SID.fullmatch(sid):
        # IAM's own documents (not the resource policies of other services, which allow richer Sids).
        issues.append(PolicyIssue(f"{where}.Sid", "Statement IDs (SID) must be alpha-numeric. Check that your input "
                                  "satisfies the regular expression [0-9A-Za-z]*"))
    effect_raw = raw.get("Effect")
    effect: Effect | None = None
    if effect_raw in ("Allow", "Deny"):
        effect = Effect(effect_raw)
    elif isinstance(effect_raw, str) and effect_raw.lower() in ("allow", "deny"):
        issues.append(
            PolicyIssue(f"{where}.Effect", f'The policy failed legacy parsing: Effect must be "Allow" or "Deny" '
                        f"(case-sensitive), got {effect_raw!r}")
        )
    else:
        issues.append(PolicyIssue(f"{where}.Effect", 'Syntax errors in policy. Effect must be "Allow" or "Deny"'))

    actions, not_action = _actions(raw, where, issues)
    resources, not_resource = _resources(raw, where, kind, variables, issues)
    principal, not_principal = _principal(raw, where, kind, issues)
    conditions: tuple[ConditionEntry, ...] = ()
    if "Condition" in raw:
        conditions = compile_conditions(raw["Condition"], f"{where}.Condition", variables=variables, issues=issues)
    if len(issues) > before or effect is None:
        return None
    return Statement(
        index=index,
        sid=sid if isinstance(sid, str) and sid else None,
        effect=effect,
        actions=actions,
        not_action=not_action,
        action_matchers=tuple(compile_action(a) for a in actions),
        resources=resources,
        not_resource=not_resource,
        principal=principal,
        not_principal=not_principal,
        conditions=conditions,
        # A read-only view of the statement as the document holds it (no copy: at 100,000 statements a copy costs
        # about 20 MB, and ``Policy.document`` keeps the same objects anyway).
        raw=MappingProxyType(raw) if isinstance(raw, dict) else MappingProxyType(dict(raw)),
    )


def _actions(raw: Mapping[str, Any], where: str, issues: list[PolicyIssue]) -> tuple[tuple[str, ...], bool]:
    if "Action" in raw and "NotAction" in raw:
        issues.append(PolicyIssue(where, "Syntax errors in policy. A statement cannot have both Action and NotAction"))
        return (), False
    element = "NotAction" if "NotAction" in raw else "Action"
    value = raw.get(element)
    if value is None or value == []:
        issues.append(PolicyIssue(f"{where}.{element}", "Policy statement must contain actions."))
        return (), False
    actions = _strings(value, f"{where}.{element}", element, issues)
    if actions is None:
        return (), False
    for i, action in enumerate(actions):
        at = f"{where}.{element}[{i}]" if isinstance(value, list) else f"{where}.{element}"
        if action == "*":
            continue
        if "${" in action:
            issues.append(PolicyIssue(at, "Variable unsupported in element: policy variables cannot be used in Action"))
            continue
        if ":" not in action:
            issues.append(PolicyIssue(at, "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."))
            continue
        vendor, _, rest = action.partition(":")
        if ":" in rest:
            issues.append(PolicyIssue(at, "Actions/Condition can contain only one colon."))
        elif not _VENDOR.fullmatch(vendor):
            issues.append(PolicyIssue(at, f"Vendor {vendor} is not valid"))
    return actions, element == "NotAction"


def _resources(
    raw: Mapping[str, Any], where: str, kind: PolicyKind, variables: bool, issues: list[PolicyIssue]
) -> tuple[tuple[ResourcePattern, ...] | None, bool]:
    if "Resource" in raw and "NotResource" in raw:
        issues.append(
            PolicyIssue(where, "Syntax errors in policy. A statement cannot have both Resource and NotResource")
        )
        return None, False
    element = "NotResource" if "NotResource" in raw else "Resource"
    if kind is PolicyKind.TRUST:
        if element in raw:
            issues.append(PolicyIssue(f"{where}.{element}", f"Has prohibited field {element}."))
        return None, False
    value = raw.get(element)
    if value is None or value == []:
        if kind is PolicyKind.RESOURCE and element not in raw:
            return None, False  # a resource-based policy applies to the resource it is attached to
        issues.append(PolicyIssue(f"{where}.{element}", "Policy statement must contain resources."))
        return None, False
    texts = _strings(value, f"{where}.{element}", element, issues)
    if texts is None:
        return None, False
    patterns = []
    for i, text in enumerate(texts):
        at = f"{where}.{element}[{i}]" if isinstance(value, list) else f"{where}.{element}"
        pattern = _resource_pattern(text, at, variables, issues)
        if pattern is not None:
            patterns.append(pattern)
    return tuple(patterns), element == "NotResource"


def _resource_format_error(text: str, parts: list[str]) -> str | None:
    """IAM's MalformedPolicyDocument message for a Resource/NotResource entry, or None if the format is acceptable.

    The rules are IAM's (as probed by moto): an entry without a colon is not an ARN; ``arn:aws`` names no service; a
    short ARN is accepted (``arn:aws:fdsasf``) unless it has an empty component before the sixth (``arn:aws:s3::b``),
    which fails IAM's legacy parser. IAM accepts only AWS partitions; this library accepts any well-formed partition
    name, because applications name their own (``arn:app:orders::111122223333:order/42``).
    """
    if ":" not in text or not text.startswith("arn:"):
        return f'Resource {text} must be in ARN format or "*".'
    partition = parts[1]
    if not _PARTITION.fullmatch(partition):
        filled = (parts[2:] + ["*"] * 4)[:4]
        return f'Partition "{partition}" is not valid for resource "arn:{partition}:{":".join(filled)}".'
    if len(parts) < 3:
        return "Resource vendor must be fully qualified and cannot contain regexes."
    service = parts[2]
    if not service:
        return f"The policy failed legacy parsing: resource {text!r} names no service (arn:partition:service:...)"
    if len(parts) < 6 and "::" in text:
        return (
            f"The policy failed legacy parsing: resource {text!r} has {len(parts)} of the 6 ARN components "
            "(arn:partition:service:region:account:resource)"
        )
    if any(c in service for c in "*?$"):
        return "Resource vendor must be fully qualified and cannot contain regexes."
    return None


def _arn_parts(text: str, variables: bool) -> list[str]:
    """The (up to six) colon-separated ARN components; with variables on, a ``${aws:x}`` is never split."""
    if not variables or "${" not in text:
        return text.split(":", 5)
    parts: list[str] = []
    start = pos = 0
    while pos < len(text) and len(parts) < 5:
        if text.startswith("${", pos):
            end = text.find("}", pos)
            pos = len(text) if end < 0 else end + 1
        elif text[pos] == ":":
            parts.append(text[start:pos])
            start = pos = pos + 1
        else:
            pos += 1
    parts.append(text[start:])
    return parts


def _resource_pattern(text: str, at: str, variables: bool, issues: list[PolicyIssue]) -> ResourcePattern | None:
    if text == "*":
        return ResourcePattern(text, compile_resource(["*"]), None)
    parts = _arn_parts(text, variables)
    problem = _resource_format_error(text, parts)
    if problem is not None:
        issues.append(PolicyIssue(at, problem))
        return None
    partition, service = parts[1], parts[2]
    # The docs say variables belong in the resource part only, but AWS itself ships a managed policy with
    # ${aws:PrincipalAccount} in the account segment (AmazonTimestreamInfluxDBServiceRolePolicy, v2): IAM accepts
    # them in the region and account too. Partition and service stay fixed.
    if variables and ("${" in parts[1] or "${" in parts[2]):
        issues.append(
            PolicyIssue(at, "Variable unsupported in element: variables may not name the partition or the service "
                        "of an ARN", code="variable")
        )
        return None
    if partition in _AWS_PARTITIONS:
        region = parts[3] if len(parts) > 3 else ""
        resource_part = parts[5] if len(parts) == 6 else ""
        if service == "iam" and region:
            issues.append(PolicyIssue(at, f"IAM resource {text} cannot contain region information."))
            return None
        account = parts[4] if len(parts) > 4 else ""
        # Buckets and objects (no account) carry no region; access points, jobs and Storage Lens ARNs have both.
        if service == "s3" and region and not account:
            issues.append(PolicyIssue(at, f"Resource {text} can not contain region information."))
            return None
        if service == "iam" and resource_part not in ("*", "root") and not resource_part.startswith(_IAM_PATH_PREFIXES):
            issues.append(
                PolicyIssue(
                    at, 'IAM resource path must either be "*" or start with ' + ", ".join(_IAM_PATH_PREFIXES) + "."
                )
            )
            return None
    if not variables or "${" not in text:
        return ResourcePattern(text, compile_resource([text]), None)
    try:
        template = parse_template(text)
    except TemplateError as exc:
        issues.append(PolicyIssue(at, str(exc), code="variable"))
        return None
    if not any(isinstance(part, Variable) for part in template):
        return ResourcePattern(text, compile_resource(template), None)
    return ResourcePattern(text, None, template)


def _principal(
    raw: Mapping[str, Any], where: str, kind: PolicyKind, issues: list[PolicyIssue]
) -> tuple[PrincipalSpec | None, bool]:
    if "Principal" in raw and "NotPrincipal" in raw:
        issues.append(
            PolicyIssue(where, "Syntax errors in policy. A statement cannot have both Principal and NotPrincipal")
        )
        return None, False
    element = "NotPrincipal" if "NotPrincipal" in raw else "Principal"
    if element not in raw:
        if kind.has_principal:
            issues.append(
                PolicyIssue(f"{where}.Principal", f"Missing required field Principal: a {kind.value} policy statement "
                            "must name who it applies to")
            )
        return None, False
    if element == "NotPrincipal" and kind is PolicyKind.TRUST:
        issues.append(PolicyIssue(f"{where}.NotPrincipal", "You cannot use the NotPrincipal element in an IAM role "
                                  "trust policy"))
        return None, False
    if element == "NotPrincipal" and kind.has_principal and raw.get("Effect") == "Allow":
        issues.append(PolicyIssue(f"{where}.NotPrincipal", "NotPrincipal must be used with Deny: with Allow it grants "
                                  "every principal not listed, anonymous users included"))
        return None, False
    if not kind.has_principal:
        # IAM's message for a Principal in an identity-based (or boundary, session) policy.
        issues.append(
            PolicyIssue(f"{where}.{element}", f"Policy document should not specify a principal. ({kind.value} "
                        "policies apply to the identity they are attached to)")
        )
        return None, False
    value = raw[element]
    at = f"{where}.{element}"
    if value == "*":
        return PrincipalSpec(everyone=True, values=MappingProxyType({})), element == "NotPrincipal"
    if not isinstance(value, Mapping) or not value:
        issues.append(
            PolicyIssue(at, 'Syntax errors in policy. Principal must be "*" or an object such as {"AWS": ...}')
        )
        return None, False
    values: dict[str, tuple[str, ...]] = {}
    for principal_type, names in value.items():
        if principal_type not in ("AWS", "Service", "Federated", "CanonicalUser"):
            issues.append(PolicyIssue(f"{at}.{principal_type}", f"Invalid principal type {principal_type!r}"))
            continue
        listed = _strings(names, f"{at}.{principal_type}", "Principal", issues)
        if listed is None:
            continue
        for name in listed:
            if "${" in name:
                issues.append(PolicyIssue(f"{at}.{principal_type}", "Variable unsupported in element: Principal"))
            elif name != "*" and ("*" in name or "?" in name):
                issues.append(
                    PolicyIssue(f"{at}.{principal_type}", f"Invalid principal {name!r}: wildcards are allowed only as "
                                'the whole value "*"')
                )
        values[principal_type] = listed
    return PrincipalSpec(everyone=False, values=MappingProxyType(values)), element == "NotPrincipal"
