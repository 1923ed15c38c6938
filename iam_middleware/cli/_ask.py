"""``iam-middleware simulate --directory iam.toml --as alice ...``: may a principal of the directory do this?

By action and resource (``--action orders:DeleteOrder --resource arn:...``), or by method and path
(``--method DELETE --path /orders/42``) through the directory's ``[[routes]]`` or an app's own routes
(``--app module:app``: Starlette, FastAPI or Flask), rendered as the middleware renders them. Prints the decision,
the statements that decided it and the context keys it missed; exits 0 when allowed, 1 when denied, 2 on usage
errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._exceptions import ConfigurationError, IAMError
from .._iam import IAM
from .._principal import Principal
from .._request import RequestView
from ..gate import render_permission
from ..routing import PUBLIC, Permission, Requirement, canonical_path
from ..testing import principal_for
from ._check import _load_app

__all__ = ["ask"]


def _principal(iam: IAM, who: str, mfa: bool) -> Principal:
    if who.startswith("role/"):
        return principal_for(iam, role=who[len("role/"):], mfa=mfa)
    return principal_for(iam, who, mfa=mfa)


def _route(iam: IAM, method: str, path: str, app: Any) -> tuple[Requirement | None, dict[str, Any], str]:
    """(what the route requires, its path parameters, its template) for ``method path``."""
    if app is not None and hasattr(app, "url_map") and hasattr(app, "view_functions"):  # Flask
        from werkzeug.exceptions import HTTPException

        from iam_middleware_flask import IAMFlask

        try:
            rule, params = app.url_map.bind("localhost").match(path, method, return_rule=True)
        except HTTPException:
            return None, {}, ""
        state = app.extensions.get("iam_middleware")
        guard = getattr(state, "guard", None) or IAMFlask(iam=iam)
        return guard.requirement(app, rule, method), dict(params), rule.rule
    if app is not None:
        from ..asgi import IAMMiddleware
        from ..asgi_routing import resolve, routes_of

        inner = app.app if isinstance(app, IAMMiddleware) else app
        routes = routes_of(inner)
        if routes is not None:
            scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
                     "query_string": b"", "headers": []}
            resolved, _ = resolve(routes, scope)
            if resolved is None:
                return None, {}, ""
            requirement = resolved.requirement
            if requirement is None:
                rule = iam.rules.for_template(method, resolved.template)
                requirement = rule.requirement if rule is not None else None
            return requirement, dict(resolved.path_params), resolved.template
    found = iam.rules.lookup(method, path)
    if found is None:
        return None, {}, ""
    return found[0].requirement, found[1], found[0].path


def ask(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.principal or args.policy:
        parser.error("--directory decides for a principal of the directory (--as NAME or --as role/NAME); "
                     "--principal and --policy are for documents given by file")
    if not args.as_:
        parser.error("--directory needs --as NAME (a user) or --as role/NAME (a session of a role)")
    by_action = bool(args.action or args.resource)
    by_route = bool(args.method or args.path)
    if by_action == by_route or (by_action and not (args.action and args.resource)) or (
            by_route and not (args.method and args.path)):
        parser.error("give --action and --resource, or --method and --path")
    try:
        iam = IAM.from_file(args.directory)
        principal = _principal(iam, args.as_, args.mfa)
        app = _load_app(args.app) if args.app else None
    except (ConfigurationError, LookupError, ValueError, ImportError, AttributeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    context = {key: value for key, _, value in (item.partition("=") for item in args.context)}
    if by_route:
        method = args.method.upper()
        try:
            path = canonical_path(args.path.partition("?")[0].encode())
        except IAMError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        requirement, params, template = _route(iam, method, path, app)
        if requirement is PUBLIC:
            print(f"Decision: Allowed (public)\n{method} {template or path} is declared public: no credential needed")
            return 0
        if not isinstance(requirement, Permission):
            print(f"Decision: ImplicitlyDenied\nNo permission is declared for {method} {path} (undeclared or no "
                  "such route): every caller is refused")
            return 1
        view = RequestView(method, args.path.encode(), query_string=args.path.partition("?")[2].encode())
        try:
            resource, extra = render_permission(iam, view, requirement, params, principal)
        except IAMError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        action = requirement.action
        context = {**extra, **context}
        print(f"Route: {method} {template} -> {action} on {resource}")
    else:
        action, resource = args.action, args.resource
    decision = iam.decisions.decide(principal, action, resource, context)
    print(f"Principal: {principal.arn}")
    print(f"Decision: {decision.kind.value}")
    print(decision.message)
    for matched in decision.matched:
        label = matched.sid or f"Statement[{matched.index}]"
        print(f"  {matched.effect:5}  {matched.layer:9} {matched.policy_id}  {label}")
    if decision.missing_context_keys:
        print("Missing context keys (a condition read them; the answer may differ with them): "
              + ", ".join(decision.missing_context_keys))
    return 0 if decision.allowed else 1
