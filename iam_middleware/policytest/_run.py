"""Deciding policy test cases with the evaluator the middleware runs.

The principal is the one the access report names (``access._subjects``): its own keys (``aws:username``, tags, ...)
come from the directory and cannot be overridden by a case; everything a request decides (``aws:SourceIp``, MFA,
``aws:CurrentTime``, which defaults to now) comes from the case's ``context``. A ``method`` + ``path`` case goes
through the app's routes, or the directory's ``[[routes]]``, and the route's permission is rendered as the gate
renders it (``simulate --method --path`` does the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError, IAMError
from .._iam import IAM
from .._request import RequestView
from ..access import Subject, subjects_of
from ..policy import Decision, DecisionKind, MatchedStatement
from ..routing import PUBLIC, Permission, canonical_path
from ._cases import Case, CaseFile, CaseFileError

__all__ = ["Result", "Runner"]


@dataclass(frozen=True, slots=True)
class Result:
    """How a case came out: ``passed`` or ``failed``, the decision, and (for a failure) why."""

    case: Case
    passed: bool
    decision: str
    detail: str
    seconds: float


@dataclass(slots=True)
class _Loaded:
    iam: IAM
    subjects: dict[str, Subject]
    app: Any


def _explain(decision: Decision) -> str:
    lines = [decision.message]
    lines.extend(f"  {m.effect:5}  {m.layer:9} {m.policy_id}  {m.sid or f'Statement[{m.index}]'}"
                 for m in decision.matched)
    if decision.missing_context_keys:
        lines.append("missing context keys (a condition read them): " + ", ".join(decision.missing_context_keys))
    return "\n".join(lines)


class Runner:
    """Runs case files, loading each directory (and app) once. ``directory`` serves files that name none."""

    def __init__(self, directory: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock
        self._loaded: dict[tuple[Path, str | None], _Loaded] = {}

    def _load(self, case_file: CaseFile) -> _Loaded:
        directory = case_file.directory or self.directory
        if directory is None:
            raise CaseFileError(f"{case_file.path}: no directory: set directory = \"...\" in the file, or give "
                                "--directory")
        key = (directory.resolve(), case_file.app)
        loaded = self._loaded.get(key)
        if loaded is None:
            try:
                iam = IAM.from_file(directory)
            except ConfigurationError as exc:
                raise CaseFileError(f"{case_file.path}: cannot load the directory {directory}:\n{exc}") from None
            app = None
            if case_file.app is not None:
                from ..cli._check import _load_app  # the loader every command's --app uses

                try:
                    app = _load_app(case_file.app)
                except (ImportError, AttributeError, ValueError) as exc:
                    raise CaseFileError(f"{case_file.path}: cannot load the app {case_file.app!r}: {exc}") from None
            subjects = {s.name: s for s in subjects_of(iam.snapshot, iam.settings.web_identity)}
            loaded = self._loaded[key] = _Loaded(iam, subjects, app)
        for case in case_file.cases:
            if case.principal not in loaded.subjects:
                raise CaseFileError(f"{case_file.path}: case {case.name!r}: no principal named {case.principal!r} "
                                    f"(the directory has: {', '.join(sorted(loaded.subjects))})")
        return loaded

    def run(self, case_file: CaseFile) -> list[Result]:
        """Every case of a file; raises CaseFileError when the file cannot run."""
        loaded = self._load(case_file)
        return [self._run(case, loaded) for case in case_file.cases]

    def _context(self, case: Case, subject: Subject, extra: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        context: dict[str, Any] = {"aws:currenttime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "aws:epochtime": str(int(now))}
        context.update(extra)
        context.update((key.lower(), value) for key, value in case.context.items())
        context.update(subject.knowledge.values)  # the principal's own keys: a case cannot change who it is
        return context

    def _request(self, case: Case, loaded: _Loaded, subject: Subject) -> tuple[str, str, dict[str, Any]] | str:
        """(action, resource, extra context) of the case, or the decision of a route that decides without policy."""
        if case.action is not None and case.resource is not None:
            return case.action, case.resource, {}
        # The route resolution and rendering `simulate --method --path` uses: the route an app would dispatch to.
        from ..cli._ask import _route
        from ..gate import render_permission

        method, raw = str(case.method).upper(), str(case.path)
        try:
            path = canonical_path(raw.partition("?")[0].encode())
            requirement, params, _ = _route(loaded.iam, method, path, loaded.app)
            if requirement is PUBLIC:
                return DecisionKind.ALLOWED.value
            if not isinstance(requirement, Permission):
                return DecisionKind.IMPLICITLY_DENIED.value
            view = RequestView(method, raw.encode(), query_string=raw.partition("?")[2].encode())
            resource, extra = render_permission(loaded.iam, view, requirement, params, subject.principal)
        except IAMError as exc:
            raise CaseFileError(f"{case.file}: case {case.name!r}: the request is refused before any policy: "
                                f"{exc.message}") from None
        return requirement.action, resource, extra

    def _run(self, case: Case, loaded: _Loaded) -> Result:
        start = time.perf_counter()
        subject = loaded.subjects[case.principal]
        request = self._request(case, loaded, subject)
        matched: tuple[MatchedStatement, ...] = ()
        if isinstance(request, str):
            kind, detail = request, f"{case.method} {case.path}: decided by the route, no policy"
        else:
            action, resource, extra = request
            decision = subject.authorizer.decide(action, resource, self._context(case, subject, extra))
            kind, detail, matched = decision.kind.value, _explain(decision), decision.matched
        passed = kind == case.expect or (case.expect == "Denied" and kind != DecisionKind.ALLOWED.value)
        if passed and case.sid is not None and not any(m.sid == case.sid for m in matched):
            passed = False
            detail = f"decided by other statements than Sid {case.sid!r}:\n{detail}"
        elif not passed:
            detail = f"expected {case.expect}, got {kind}:\n{detail}"
        return Result(case, passed, kind, detail, time.perf_counter() - start)
