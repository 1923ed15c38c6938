"""The decision point: may this principal perform this action on this resource, in this request's context?

``DecisionPoint.decide`` is the one entry to a decision about a principal: ``IAM.authorize``, the gate (through
``require``, which refuses what ``decide`` denies), the token service, the AuthZEN endpoint and the simulate
command all ask it. It fills in the IAM global condition keys (``aws:CurrentTime``, ``aws:SourceIp``,
``aws:PrincipalArn``, ...) from the clock, the request and the principal, then runs the compiled policies of the
principal in the snapshot the request is pinned to. It never raises: a failure is a deny that says so.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache

from ._exceptions import AccessDeniedError
from ._principal import Principal
from ._request import RequestView, resolve_source_ip
from ._settings import Settings
from ._snapshots import SnapshotHandle
from .policy import Decision, DecisionKind, Policy, PolicyKind, PolicySet, parse_policy
from .policy._authorizer import Authorizer

__all__ = ["UNSET", "DecisionPoint"]

logger = logging.getLogger("iam_middleware")

_TIME_KEYS = frozenset({"aws:currenttime", "aws:epochtime", "aws:multifactorauthage"})
# The global keys ``context_for`` takes from the clock and from the request; every other key it sets comes from
# the principal (whose credential may also set any key, so the principal's keys are built whenever one key is read).
_CLOCK_KEYS = frozenset({"aws:currenttime", "aws:epochtime"})
_REQUEST_KEYS = frozenset({"aws:sourceip", "aws:securetransport", "aws:useragent", "aws:referer"})


class _Unset:
    """Not given (None is a value: an address that could not be read)."""

    def __repr__(self) -> str:
        return "UNSET"


#: ``source_ip`` not given: resolve it from the request through the trusted proxies.
UNSET = _Unset()

_last_second: list[tuple[int, str]] = [(-1, "")]


def _iso(ts: float) -> str:
    """ISO 8601 UTC to the second; memoised for the current second (every request asks for it)."""
    second = int(ts)
    cached = _last_second[0]
    if cached[0] == second:
        return cached[1]
    text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_second[0] = (second, text)
    return text


class DecisionPoint:
    """Decides actions for principals against the directory's policies; thread-safe, never raises from ``decide``."""

    def __init__(self, snapshots: SnapshotHandle, settings: Settings, *, clock: Callable[[], float]) -> None:
        self._snapshots = snapshots
        self._settings = settings
        self._clock = clock
        self._session_policies: LRUCache[str, Policy] = LRUCache(maxsize=1024)
        # One PolicySet per resource policy object: the decision cache keys on the set's identity, so a fresh set
        # per call would never hit and would flush the useful entries.
        self._resource_sets: dict[int, tuple[Policy, PolicySet]] = {}

    def __repr__(self) -> str:
        return "DecisionPoint()"

    def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
        request: RequestView | None = None,
        source_ip: str | None | _Unset = UNSET,
        resource_policy: Policy | None = None,
        resource_account: str | None = None,
    ) -> Decision:
        """Decide ``action`` on ``resource`` for ``principal``: the global keys are filled in (from ``request``,
        its address resolved through the trusted proxies unless ``source_ip`` is given), ``context`` adds to them
        (keys case-insensitive; the computed keys win). Never raises: a failure is a deny that says so."""
        now = self._clock() if now is None else now
        try:
            authorizer = self.compiled(principal)
            resource_set = self.policy_set(resource_policy) if resource_policy is not None else None
            # Only the keys a statement that can apply reads are built: no other key can change the decision (the
            # decision cache keys on the same plan). Most routes' statements read none, so most requests build none.
            reads = authorizer.plan(action)
            if resource_set is not None:
                reads = (*reads, *resource_set.context_keys(action.lower()))
            full = _merged(context, self.context_for(principal, request, now=now, source_ip=source_ip,
                                                     reads=frozenset(reads))) if reads else {}
            return authorizer.authorize(action, resource, full, resource_policy=resource_set,
                                        resource_account=resource_account)
        except Exception as exc:  # noqa: BLE001 - fail closed
            logger.exception("authorization failed closed for %s", principal.arn)
            return Decision(DecisionKind.IMPLICITLY_DENIED, principal.arn, action, resource, denied_by="error",
                            error=type(exc).__name__)

    def require(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
        request: RequestView | None = None,
        source_ip: str | None | _Unset = UNSET,
    ) -> Decision:
        """``decide``, and raise the ``AccessDeniedError`` (403) to answer when it is not an allow; a denial that a
        fresh MFA login would turn into an allow says so (code ``MultiFactorAuthRequired``)."""
        now = self._clock() if now is None else now
        decision = self.decide(principal, action, resource, context, now=now, request=request, source_ip=source_ip)
        if decision.allowed:
            return decision
        if decision.kind is DecisionKind.IMPLICITLY_DENIED:
            full = _merged(context, self.context_for(principal, request, now=now, source_ip=source_ip))
            if self.would_allow_with_mfa(principal, action, resource, full):
                raise AccessDeniedError(decision.message + " (multi-factor authentication would allow it: log in "
                                        "with a one-time code)", decision=decision, code="MultiFactorAuthRequired")
        raise AccessDeniedError(decision.message, decision=decision)

    def context_for(self, principal: Principal | None, request: RequestView | None, *, now: float,
                    source_ip: str | None | _Unset = UNSET, reads: frozenset[str] | None = None) -> dict[str, Any]:
        """The IAM global condition keys of a request (lower-cased keys, as ``decide`` reads them). ``source_ip`` is
        the caller's address as the gate resolved it; when not given it is resolved here, through the trusted
        proxies (None: the forwarded chain could not be read, and the key is absent). ``reads``: the keys the
        caller will read (None: all); each of them has the value and presence it has in the whole context."""
        context: dict[str, Any] = {}
        if reads is None or not reads.isdisjoint(_CLOCK_KEYS):
            context["aws:currenttime"] = _iso(now)
            context["aws:epochtime"] = str(int(now))
        if request is not None and (reads is None or not reads.isdisjoint(_REQUEST_KEYS)):
            ip = (resolve_source_ip(request, self._settings.trusted_proxies) if isinstance(source_ip, _Unset)
                  else source_ip)
            if ip:
                context["aws:sourceip"] = ip
            context["aws:securetransport"] = "true" if request.scheme in ("https", "wss") else "false"
            agent = request.header("user-agent")
            if agent is not None:
                context["aws:useragent"] = agent
            referer = request.header("referer")
            if referer is not None:
                context["aws:referer"] = referer
        if principal is not None and (reads is None or reads):
            # Applied last, as a credential's own keys win; built whenever anything is read, since a credential's
            # extra keys may name any key.
            for key, value in principal.context_keys(now).items():
                context[key.lower()] = value
        return context

    def reads_time(self, principal: Principal, action: str) -> bool:
        """Whether a decision about ``action`` for ``principal`` can change with the clock alone (a statement that
        could apply reads ``aws:CurrentTime``, ``aws:EpochTime`` or ``aws:MultiFactorAuthAge``)."""
        return not _TIME_KEYS.isdisjoint(self.compiled(principal).plan(action))

    def would_allow_with_mfa(self, principal: Principal, action: str, resource: str,
                             context: Mapping[str, Any]) -> bool:
        """Whether a denied request would be allowed with a fresh MFA login (a step-up the client can offer).
        ``context`` is the complete context of the denied decision; the answer is never cached."""
        if principal.mfa_present:
            return False
        stepped = dict(context)
        stepped["aws:multifactorauthpresent"] = "true"
        stepped["aws:multifactorauthage"] = "0"
        return self.compiled(principal).decide(action, resource, stepped).allowed

    def policy_set(self, policy: Policy) -> PolicySet:
        """The one ``PolicySet`` of a resource policy object (decision caches key on its identity)."""
        found = self._resource_sets.get(id(policy))
        if found is not None and found[0] is policy:  # the policy is held, so its id cannot have been reused
            return found[1]
        if len(self._resource_sets) >= 1024:
            self._resource_sets.clear()
        policy_set = PolicySet([policy])
        self._resource_sets[id(policy)] = (policy, policy_set)
        return policy_set

    def compiled(self, principal: Principal) -> Authorizer:
        """The compiled policies of ``principal`` (session policy included) in the snapshot this request is decided
        on: for tools that analyse the policies rather than decide one request (the access tools' filters)."""
        session_policy = self._session_policy(principal.session_policy) if principal.session_policy else None
        return self._snapshots.current.authorizer(principal, session_policy)

    def _session_policy(self, text: str) -> Policy:
        policy = self._session_policies.get(text)
        if policy is None:
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            policy = parse_policy(text, kind=PolicyKind.SESSION, policy_id=f"session-policy-{digest}")
            self._session_policies[text] = policy
        return policy


def _merged(extra: Mapping[str, Any] | None, computed: dict[str, Any]) -> dict[str, Any]:
    """The request context: the caller's extra keys (lower-cased), then the keys IAM computes, which always win:
    a route or a library caller can add ``orders:Priority`` but never set ``aws:SourceIp`` or the principal's keys."""
    if not extra:
        return computed
    full = {key.lower(): value for key, value in extra.items()}
    full.update(computed)
    return full
