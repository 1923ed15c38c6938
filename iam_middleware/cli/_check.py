"""``iam-middleware check iam.toml [--app module:app]``: the whole directory validated, for CI.

Every problem of the file is reported at once, with where it is (the directory loader collects them); every policy
goes through the linter; a root user with access keys or without MFA is warned about; with ``--app`` the app's
routes are audited as its shell audits them at start-up (routes declared twice, placeholders that are not route
parameters, undeclared routes). Exit 0 when valid (warnings alone
pass unless ``--strict``), 1 when not, 2 on usage errors (a file or app that cannot be read).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._iam import IAM
from ..access._catalog import catalog_of, declares_any, unknown_names
from ..access._routes import RouteSpec, routes_of_table
from ..directory import Snapshot
from ..directory._audit import directory_warnings
from ..policy import Policy, Severity
from ..policy._lint import lint_policy
from ..routing import Requirement

if TYPE_CHECKING:
    from ..asgi import IAMMiddleware

__all__ = ["add_parser", "app_routes", "audit_app"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("check", help="validate a directory file (and audit an app's routes against it)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", metavar="FILE", help="the directory file (iam.toml or .json)")
    parser.add_argument("--app", metavar="MODULE:NAME",
                        help="an app to audit: a Starlette or FastAPI app (or IAMMiddleware), or a Flask app")
    parser.add_argument("--strict", action="store_true", help="warnings and undeclared routes fail the check too")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(run=run)


def _policies(snapshot: Snapshot) -> dict[str, Policy]:
    found: dict[str, Policy] = {}
    for account in snapshot.accounts.values():
        found.update((p.id, p) for p in account.guardrails)
    for group in snapshot.groups.values():
        found.update((p.id, p) for p in group.policies)
    for user in snapshot.users.values():
        found.update((p.id, p) for p in (*user.policies, *((user.boundary,) if user.boundary else ())))
    for role in snapshot.roles.values():
        found.update((p.id, p) for p in (role.trust_policy, *role.policies, *((role.boundary,) if role.boundary
                                                                              else ())))
    return found


def _load_app(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--app takes MODULE:NAME, not {spec!r}")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    app = module
    for part in attribute.split("."):
        app = getattr(app, part)
    return app


def _is_flask(app: Any) -> bool:
    return hasattr(app, "url_map") and hasattr(app, "view_functions")


def _flask_guard(app: Any, iam: IAM) -> Any:
    """The app's own IAMFlask, or one over ``iam`` as ``IAMFlask(app, iam)`` would be."""
    from iam_middleware_flask import IAMFlask

    state = getattr(app, "extensions", {}).get("iam_middleware")
    return getattr(state, "guard", None) or IAMFlask(iam=iam, undeclared="warn")


def _asgi_shell(app: Any, iam: IAM) -> IAMMiddleware:
    """The middleware over the app's router (an IAMMiddleware given is unwrapped), as its start-up audit runs."""
    from ..asgi import IAMMiddleware

    inner = app.app if isinstance(app, IAMMiddleware) else app
    return IAMMiddleware(inner, iam=iam, routes_from=inner)


def audit_app(app: Any, iam: IAM) -> list[str]:
    """The undeclared routes of ``app`` (Starlette, FastAPI, IAMMiddleware or Flask) against ``iam``; raises
    ConfigurationError for a route declared twice or naming a parameter it does not have."""
    if _is_flask(app):
        return list(_flask_guard(app, iam).audit(app))
    return list(_asgi_shell(app, iam).audit())


def app_routes(app: Any, iam: IAM) -> list[tuple[str, str, Requirement | None]] | None:
    """Every route of ``app`` as (method, path template, what it requires; None: undeclared), read by the same
    shells as ``audit_app``; None for an ASGI app without a router to read (its rules table then governs)."""
    if _is_flask(app):
        return list(_flask_guard(app, iam).routes(app))
    from ..asgi_routing import routes_of

    shell = _asgi_shell(app, iam)
    if routes_of(shell.app) is None:
        return None
    return list(shell.routes())


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    path = Path(args.directory)
    if not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"file": str(path), "valid": True, "errors": [], "warnings": [], "undeclared": []}
    try:
        iam = IAM.from_file(path)
    except ConfigurationError as exc:
        report["valid"] = False
        report["errors"] = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return _print(report, args)
    snapshot = iam.snapshot
    policies = _policies(snapshot)
    for policy_id, policy in sorted(policies.items()):
        for issue in lint_policy(policy):
            if issue.severity is not Severity.SUGGESTION:
                report["warnings"].append(f"{policy_id}: {issue.location}: {issue.message}")
    report["warnings"].extend(directory_warnings(snapshot))
    report["summary"] = {"accounts": len(snapshot.accounts), "users": len(snapshot.users),
                         "groups": len(snapshot.groups), "roles": len(snapshot.roles), "policies": len(policies),
                         "routes": len(iam.rules.rules)}
    if args.app:
        try:
            app = _load_app(args.app)
        except (ImportError, AttributeError, ValueError) as exc:
            print(f"error: cannot load the app {args.app!r}: {exc}", file=sys.stderr)
            return 2
        quiet = logging.getLogger("iam_middleware")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the audit's findings are reported here, not logged as well
        try:
            report["undeclared"] = audit_app(app, iam)
            report["unknown_names"] = _catalog_warnings(policies, app_routes(app, iam), iam)
        except ConfigurationError as exc:
            report["valid"] = False
            report["errors"].append(f"routes: {exc}")
        finally:
            quiet.setLevel(level)
    else:
        report["unknown_names"] = _catalog_warnings(policies, None, iam)
    # Unknown names never fail the check: a catalog knows only the routes it was shown (docs/access.md).
    if args.strict and (report["warnings"] or report["undeclared"]):
        report["valid"] = False
    return _print(report, args)


def _catalog_warnings(policies: dict[str, Policy], found: list[tuple[str, str, Requirement | None]] | None,
                      iam: IAM) -> list[str]:
    """Policy entries no route of the app (or of the directory's ``[[routes]]``) can match."""
    routes = [RouteSpec(*route) for route in found] if found is not None else routes_of_table(iam.rules)
    if not declares_any(routes):
        return []
    catalog = catalog_of(routes)
    return [f"{policy_id}: {issue.location}: {issue.message}" for policy_id, policy in sorted(policies.items())
            for issue in unknown_names(policy, catalog)]


def _print(report: dict[str, Any], args: argparse.Namespace) -> int:
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        for line in report["errors"]:
            print(f"error: {line}")
        for line in report["warnings"] + report.get("unknown_names", []):
            print(f"warning: {line}")
        if report["undeclared"]:
            print("undeclared routes (denied to everyone): " + ", ".join(report["undeclared"]))
        summary = report.get("summary")
        if report["valid"] and summary is not None:
            print(f"{report['file']}: valid ({', '.join(f'{v} {k}' for k, v in summary.items())})")
        elif not report["valid"]:
            print(f"{report['file']}: invalid")
    return 0 if report["valid"] else 1
