"""``iam-middleware simulate``: decide requests offline with the very evaluator the middleware runs.

Batch mode reads JSON Lines (one case per line) and writes one JSON line per case, in order::

    {"id": "c1", "principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject",
     "resource": "arn:aws:s3:::bucket/key", "context": {...}, "identity_policies": [...],
     "permission_boundary": {...} | null, "session_policy": {...} | null, "resource_policy": {...} | null,
     "resource_account": "111122223333"}
    -> {"id": "c1", "decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied", "matched": [...],
        "missing_context_keys": [...], "message": "..."}

A case that cannot be evaluated answers ``{"id": ..., "decision": "Error", "error": "..."}`` and the batch goes on;
the batch then exits 1 (0 when every case was decided). The context is taken exactly as given: nothing is derived
from the principal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from cachetools import LRUCache

from .._exceptions import PolicyValidationError
from .._json import JSONError, loads
from ..policy import Caller, CallerKind, Policy, PolicyKind, PolicySet, evaluate, parse_policy

__all__ = ["add_parser", "simulate_case", "simulate_lines"]


_HELP = """Decide requests offline with the very evaluator the middleware runs.

One request: --principal ARN --action ACTION --resource ARN [--policy FILE ...] [--context KEY=VALUE ...]; exits 0
when allowed, 1 when denied. For a principal of a directory file: --directory iam.toml --as alice (or
--as role/NAME) with --action and --resource, or with --method and --path through the app's routes (--app
module:app) or the directory's [[routes]]. A batch: JSON Lines of cases on standard input or --input, one JSON
line out per case:

  {"id": "c1", "principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject",
   "resource": "arn:aws:s3:::bucket/key", "context": {}, "identity_policies": [...],
   "permission_boundary": null, "session_policy": null, "resource_policy": null, "resource_account": null}

A case that cannot be evaluated answers "decision": "Error" and the batch goes on, then exits 1."""


class CaseError(ValueError):
    """A case that cannot be evaluated; the message says why."""


class _PolicyCache:
    """Parsed policies by their canonical JSON: batches repeat the same documents across cases."""

    def __init__(self, size: int = 4096) -> None:
        self._items: LRUCache[tuple[str, str, str], Policy] = LRUCache(maxsize=size)

    def get(self, document: Any, kind: PolicyKind, label: str) -> Policy:
        if isinstance(document, str):
            key_text = document
        else:
            try:
                key_text = json.dumps(document, sort_keys=True, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                raise CaseError(f"{label}: not a JSON policy document ({exc})") from None
        key = (kind.value, label, key_text)  # the label names the policy in "matched": part of the key
        policy = self._items.get(key)
        if policy is not None:
            return policy
        try:
            policy = parse_policy(document, kind=kind, policy_id=label)
        except PolicyValidationError as exc:
            raise CaseError(f"invalid policy {label}: " + "; ".join(str(i) for i in exc.issues)) from None
        self._items[key] = policy
        return policy


def _string(case: Mapping[str, Any], name: str) -> str:
    value = case.get(name)
    if not isinstance(value, str) or not value:
        raise CaseError(f'"{name}" must be a non-empty string')
    return value


def _optional(case: Mapping[str, Any], name: str, kind: PolicyKind, cache: _PolicyCache) -> PolicySet | None:
    document = case.get(name)
    if document is None:
        return None
    return PolicySet([cache.get(document, kind, name)])


def simulate_case(case: Any, cache: _PolicyCache | None = None) -> dict[str, Any]:
    """Evaluate one case; raises CaseError when it cannot be evaluated."""
    cache = cache or _PolicyCache()
    if not isinstance(case, Mapping):
        raise CaseError("a case must be a JSON object")
    principal = _string(case, "principal")
    action = _string(case, "action")
    resource = _string(case, "resource")
    context = case.get("context") or {}
    if not isinstance(context, Mapping):
        raise CaseError('"context" must be an object')
    for key, value in context.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and any(v is None or isinstance(v, (dict, list)) for v in value)
        ):
            raise CaseError(f'context key "{key}" must be a string, number, boolean, null or a list of scalars')
    documents = case.get("identity_policies") or []
    if not isinstance(documents, list):
        raise CaseError('"identity_policies" must be a list of policy documents')
    identity = PolicySet(
        [cache.get(doc, PolicyKind.IDENTITY, f"identity_policies[{i}]") for i, doc in enumerate(documents)]
    )
    boundary = _optional(case, "permission_boundary", PolicyKind.BOUNDARY, cache)
    session = _optional(case, "session_policy", PolicyKind.SESSION, cache)
    resource_policy = _optional(case, "resource_policy", PolicyKind.RESOURCE, cache)
    resource_account = case.get("resource_account")
    if resource_account is not None and (not isinstance(resource_account, str) or not resource_account):
        raise CaseError('"resource_account" must be a non-empty string (the account that owns the resource)')
    caller = Caller.from_arn(principal)
    if caller.kind not in (CallerKind.ROLE_SESSION, CallerKind.FEDERATED_USER):
        session = None  # session policies exist only for role and federated-user sessions
    decision = evaluate(
        caller, action, resource, context,
        identity=identity, boundary=boundary, session=session,
        resource_policy=resource_policy, resource_account=resource_account,
    )
    if decision.error is not None:
        raise CaseError(f"evaluation failed: {decision.error}")
    return {
        "id": case.get("id"),
        "decision": decision.kind.value,
        "matched": [m.as_dict() for m in decision.matched],
        "missing_context_keys": list(decision.missing_context_keys),
        "message": decision.message,
    }


def simulate_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """One result per non-blank input line, in order; bad lines give a ``"decision": "Error"`` result."""
    cache = _PolicyCache()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        case_id: Any = None
        try:
            case = loads(line)
            if isinstance(case, Mapping):
                case_id = case.get("id")
            yield simulate_case(case, cache)
        except JSONError as exc:
            yield {"id": case_id, "decision": "Error", "error": f"line {number}: not valid JSON ({exc})"}
        except (CaseError, RecursionError) as exc:
            yield {"id": case_id, "decision": "Error", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one bad case must not end the batch; it is reported, never allowed
            yield {"id": case_id, "decision": "Error", "error": f"case could not be evaluated ({type(exc).__name__})"}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate", help="decide requests offline", description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", metavar="FILE", help="JSON Lines of cases (default: standard input)")
    parser.add_argument("--policy", action="append", default=[], metavar="FILE", help="identity policy (repeatable)")
    parser.add_argument("--boundary", metavar="FILE", help="permissions boundary")
    parser.add_argument("--session-policy", metavar="FILE", help="session policy")
    parser.add_argument("--resource-policy", metavar="FILE", help="resource-based policy")
    parser.add_argument("--resource-account", metavar="ACCOUNT", help="the resource's account (cross-account)")
    parser.add_argument("--principal", metavar="ARN")
    parser.add_argument("--action")
    parser.add_argument("--resource")
    parser.add_argument("--context", action="append", default=[], metavar="KEY=VALUE",
                        help="context key (repeat a key for a multivalued key)")
    asking = parser.add_argument_group("a principal of a directory file")
    asking.add_argument("--directory", metavar="FILE", help="decide for a principal of this directory (iam.toml)")
    asking.add_argument("--as", dest="as_", metavar="NAME", help="a user, or role/NAME for a session of the role")
    asking.add_argument("--mfa", action="store_true", help="as a session whose login had a one-time code")
    asking.add_argument("--method", help="with --path: the route's permission decides the action and resource")
    asking.add_argument("--path", help="a request path (query allowed), resolved through --app or [[routes]]")
    asking.add_argument("--app", metavar="MODULE:NAME", help="the app whose routes --path is resolved through")
    parser.set_defaults(run=run)


def _load(path: str, parser: argparse.ArgumentParser) -> Any:
    try:
        with open(path, "rb") as handle:
            return loads(handle.read())
    except OSError as exc:
        parser.error(f"cannot read {path}: {exc.strerror or exc}")
    except JSONError as exc:
        parser.error(f"{path} is not JSON: {exc}")


def _one_shot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    missing = [flag for flag, value in (("--principal", args.principal), ("--action", args.action),
                                        ("--resource", args.resource)) if not value]
    if missing:
        parser.error("one-shot simulation needs " + ", ".join(missing) + " (or use --input / standard input)")
    context: dict[str, Any] = {}
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--context takes KEY=VALUE, got {item!r}")
        if key in context:
            previous = context[key]
            context[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            context[key] = value
    case: dict[str, Any] = {
        "id": "cli", "principal": args.principal, "action": args.action, "resource": args.resource,
        "context": context, "identity_policies": [_load(p, parser) for p in args.policy],
        "permission_boundary": _load(args.boundary, parser) if args.boundary else None,
        "session_policy": _load(args.session_policy, parser) if args.session_policy else None,
        "resource_policy": _load(args.resource_policy, parser) if args.resource_policy else None,
        "resource_account": args.resource_account,
    }
    try:
        result = simulate_case(case)
    except CaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Decision: {result['decision']}")
    print(result["message"])
    for m in result["matched"]:
        label = m["sid"] or f"Statement[{m['statement']}]"
        print(f"  {m['effect']:5}  {m['type']:9} {m['policy']}  {label}")
    if result["missing_context_keys"]:
        print("Missing context keys (a condition read them; the answer may differ with them): "
              + ", ".join(result["missing_context_keys"]))
    return 0 if result["decision"] == "Allowed" else 1


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.directory:
        from ._ask import ask

        return ask(args, parser)
    if args.principal or args.action or args.resource or args.policy:
        return _one_shot(args, parser)
    stream: IO[str]
    if args.input:
        try:
            stream = open(args.input, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            parser.error(f"cannot read {args.input}: {exc.strerror or exc}")
    else:
        stream = sys.stdin
    out = sys.stdout
    failed = False
    try:
        for result in simulate_lines(stream):
            failed = failed or result["decision"] == "Error"
            out.write(json.dumps(result, separators=(", ", ": ")) + "\n")
    finally:
        if stream is not sys.stdin:
            stream.close()
    out.flush()
    return 1 if failed else 0
