"""IAM: one object holding the directory, the authenticators and the settings; the core every shell calls.

Synchronous and framework-free: the ASGI middleware, the Flask extension and library users call the same methods.
``authenticate`` turns a request into a Principal (or None when it carries no credential), ``authorize`` decides an
action on a resource for a principal. Any failure is an ``IAMError`` that renders itself (401/403/400/503).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from ._authn import Authenticator, BearerAuthenticator, CookieAuthenticator, SigV4Authenticator
from ._exceptions import (
    AccessDeniedError,
    AuthenticationError,
    ConfigurationError,
    InvalidTokenError,
    MissingCredentialError,
    SignatureError,
)
from ._principal import CredentialKind, Principal
from ._request import RequestView, resolve_source_ip
from ._settings import Settings, WebIdentityProvider
from ._temporary import TemporaryCredential, TemporaryCredentials
from .authenticators._csrf import CSRFGuard
from .authenticators._jwt import JWTVerifier, VerifiedToken, _decode_segment, decode_header
from .authenticators._login import USER_ID, LoginRecord, LoginService
from .authenticators._passwords import PasswordCost, PasswordHash
from .authenticators._sessions import SESSION_TYP, IssuedSession, SessionTokens
from .authenticators._sigv4 import SigningCredential, SigV4Verifier, VerifiedSignature
from .authenticators._throttle import LoginThrottle
from .authenticators._totp import TOTPVerifier
from .directory import Role, Snapshot, directory_from_dict, load_directory
from .directory._load import _read_mapping
from .policy import Caller, Decision, DecisionKind, Policy, PolicyKind, PolicySet, parse_policy
from .policy._authorizer import Authorizer
from .routing import RuleTable
from .state import MemoryStore, StateStore

__all__ = ["IAM"]

#: The snapshot pinned for the request being served (per task or thread), with the IAM it belongs to.
_PINNED: ContextVar[tuple[IAM, Snapshot] | None] = ContextVar("iam_pinned_snapshot", default=None)

logger = logging.getLogger("iam_middleware")

_MAX_AUTHORIZATION = 16 * 1024
_TIME_KEYS = frozenset({"aws:currenttime", "aws:epochtime", "aws:multifactorauthage"})
#: Global keys that come from the request rather than the credential: a trust decision reading one is per request.
_REQUEST_KEYS = frozenset({"aws:currenttime", "aws:epochtime", "aws:sourceip", "aws:securetransport",
                           "aws:useragent", "aws:referer"})


class _Unset:
    """Not given (None is a value: an address that could not be read)."""

    def __repr__(self) -> str:
        return "UNSET"


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


class IAM:
    """The directory, the authenticators and the settings, validated whole; thread-safe, swappable on reload.

    ``on_password_rehash(user_arn, new_hash)``, if given, receives a new hash of a user's password after a login
    whose stored hash is in the earlier form or below the current cost (``iam_middleware.passwords.needs_rehash``),
    to store where the directory comes from; the directory file itself is never written. Without it, such a login
    logs a warning, once per user, that the hash should be made again.
    """

    def __init__(
        self,
        directory: Snapshot,
        *,
        settings: Settings | None = None,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        source: str | os.PathLike[str] | None = None,
        rules: RuleTable | None = None,
        authenticators: list[Authenticator] | None = None,
        on_password_rehash: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings or Settings(partition=directory.partition)
        #: The directory file's ``[[routes]]`` rules table: what routes of an app whose code is not touched require.
        self.rules = rules or RuleTable()
        self.store: StateStore = store if store is not None else _default_store(self.settings)
        self.clock = clock
        self.source = Path(source) if source is not None else None
        self._snapshot = directory
        self._reload_lock = threading.Lock()
        self.temporary = TemporaryCredentials(self.store)
        s = self.settings
        self.sigv4 = SigV4Verifier(
            service=s.service, regions=s.regions, lookup=self._signing_credential, max_skew=s.max_skew,
            allow_unsigned_payload=s.allow_unsigned_payload, verbatim_fallback=s.sigv4_verbatim_fallback,
            s3_style_paths=s.s3_style_paths, allowed_hosts=s.allowed_hosts,
        )
        self.sessions = SessionTokens(s.session_secret, store=self.store, ttl=s.session_ttl, cookie_name=s.cookie_name,
                                      issuer=s.session_issuer, signing_keys=s.session_signing_keys)
        self.totp = TOTPVerifier(self.store)
        self.throttle = LoginThrottle(self.store, max_failures=s.login_max_failures, lockout=s.login_lockout)
        self._dummy_cost: tuple[Snapshot | None, PasswordCost] = (None, PasswordCost())
        self.login_service = LoginService(self._login_record, sessions=self.sessions, totp=self.totp,
                                          throttle=self.throttle, dummy_cost=self._usual_password_cost,
                                          on_password_rehash=on_password_rehash)
        self.csrf = CSRFGuard(allowed_origins=s.allowed_origins, cookie_name=s.cookie_name)
        self._providers = {p.issuer.issuer: p for p in s.web_identity}
        self.web_identity = JWTVerifier([p.issuer for p in s.web_identity]) if s.web_identity else None
        self._session_policies: LRUCache[str, Policy] = LRUCache(maxsize=1024)
        # Verified bearer tokens: sha256(token) -> (principal, valid until, snapshot). Never beyond the token's
        # expiry; sessions are re-checked against the store after settings.session_cache_seconds (the documented
        # bound on how long a revoked session may still pass); a reload (new snapshot) invalidates every entry.
        self._bearer_cache: dict[bytes, tuple[Principal, float, Snapshot]] = {}
        #: Called with ``now`` before each authentication (the directory reloader's cheap change check).
        self.refresh_hooks: list[Callable[[float], None]] = []
        # One PolicySet per resource policy object: the decision cache keys on the set's identity, so a fresh set
        # per call would never hit and would flush the useful entries.
        self._resource_sets: dict[int, tuple[Policy, PolicySet]] = {}
        self._web_authorizers: dict[str, Authorizer] = {}
        # Trust verdicts for outside tokens, by (trust policy, provider, role, the claims the context carries): a
        # client refreshing its token is not evaluated again. Only for trust policies that read no request key.
        self._trust_verdicts: dict[tuple[Any, ...], Decision] = {}
        #: Bumped when a credential this process may have cached stops being valid without a reload (a key gone from
        #: a provider's JWKS): the shells' recent decisions compare it, the bearer cache is dropped.
        self.credential_epoch = 0
        self._first_seen: dict[bytes, float] = {}
        for provider in self.settings.web_identity:
            if provider.issuer.jwks is not None:
                provider.issuer.jwks.subscribe(self.forget_cached_credentials)
        #: The ordered authenticator chain (see ``Authenticator``): custom ones go first.
        self.authenticators: list[Authenticator] = (
            list(authenticators) if authenticators is not None
            else [SigV4Authenticator(self), BearerAuthenticator(self), CookieAuthenticator(self)])

    def __repr__(self) -> str:
        return f"IAM(snapshot={self._snapshot!r}, settings={self.settings!r})"

    # Construction ----------------------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, store: StateStore | None = None,
                  clock: Callable[[], float] = time.time,
                  on_password_rehash: Callable[[str, str], None] | None = None) -> IAM:
        """Load ``iam.toml`` (or ``.json``): the directory plus its ``[settings]``. Raises ConfigurationError."""
        file = Path(path)
        problems: list[str] = []
        try:
            snapshot = load_directory(file)
        except ConfigurationError as exc:
            problems.append(str(exc))
        try:
            data = _read_mapping(file)
            settings = Settings.from_mapping(data.get("settings") or {}, base_dir=file.parent)
        except (OSError, ValueError) as exc:  # a settings problem is reported with the directory's, not instead
            problems.append(f"{file}: {exc}")
        if problems:
            raise ConfigurationError("\n".join(dict.fromkeys(problems)))
        return cls(snapshot, settings=settings, store=store, clock=clock, source=file, rules=_rules(data, str(file)),
                   on_password_rehash=on_password_rehash)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, store: StateStore | None = None,
                  clock: Callable[[], float] = time.time, base_dir: str | os.PathLike[str] = ".",
                  on_password_rehash: Callable[[str, str], None] | None = None) -> IAM:
        """Build from the parsed form of the directory file (tests, applications that keep config in code)."""
        problems: list[str] = []
        try:
            snapshot = directory_from_dict(data, base_dir=base_dir)
        except ConfigurationError as exc:
            problems.append(str(exc))
        try:
            settings = Settings.from_mapping(data.get("settings") or {}, base_dir=Path(base_dir))
        except ConfigurationError as exc:
            problems.append(f"<dict>: {exc}")
        if problems:
            raise ConfigurationError("\n".join(problems))
        return cls(snapshot, settings=settings, store=store, clock=clock, rules=_rules(data, "<dict>"),
                   on_password_rehash=on_password_rehash)

    @property
    def snapshot(self) -> Snapshot:
        """The directory snapshot this request is decided on: the one pinned for it (``pin``), else the one in
        force. A reload swaps the snapshot in force atomically; a pinned request finishes on the one it began with."""
        pinned = _PINNED.get()
        if pinned is not None and pinned[0] is self:
            return pinned[1]
        return self._snapshot

    @contextmanager
    def pin(self) -> Iterator[Snapshot]:
        """Decide everything inside the block (the authorization and the app it lets run) on today's snapshot,
        even if a reload swaps it meanwhile. The shells pin each request."""
        token = self.pin_request()
        try:
            yield self.snapshot
        finally:
            _PINNED.reset(token)

    def pin_request(self) -> Token[tuple[IAM, Snapshot] | None]:
        """``pin`` for shells whose request spans separate hooks (Flask): give the token to ``unpin`` at the end."""
        return _PINNED.set((self, self.snapshot))

    @staticmethod
    def unpin(token: Token[tuple[IAM, Snapshot] | None]) -> None:
        _PINNED.reset(token)

    def refresh(self, now: float | None = None) -> None:
        """Run the refresh hooks (the reloader's cheap change check). Raises what they raise (no directory: 503)."""
        now = self.clock() if now is None else now
        for hook in self.refresh_hooks:
            hook(now)

    def swap(self, snapshot: Snapshot) -> None:
        """Put a validated snapshot in force (requests in flight finish on the one they read)."""
        self._snapshot = snapshot

    # Authentication --------------------------------------------------------------------------------------------
    def authenticate(self, request: RequestView, *, now: float | None = None,
                     authenticators: Sequence[Authenticator] | None = None) -> Principal | None:
        """The principal a request proves, or None if it carries no credential. Raises AuthenticationError (401)
        for a credential that is present but bad: a bad credential never falls through to another kind.
        ``authenticators`` replaces ``self.authenticators`` for this request (an endpoint that takes fewer kinds)."""
        now = self.clock() if now is None else now
        self.refresh(now)
        authorization = request.header_values("authorization")
        if len(authorization) > 1:
            raise AuthenticationError("The request has more than one Authorization header.", code="InvalidHeader")
        if authorization and len(authorization[0]) > _MAX_AUTHORIZATION:
            raise AuthenticationError("The Authorization header is too long.", code="InvalidHeader")
        for authenticator in self.authenticators if authenticators is None else authenticators:
            principal = authenticator.authenticate(request, now=now)
            if principal is not None:
                return principal
        return None

    def from_token(self, token: str, *, now: float | None = None, request: RequestView | None = None) -> Principal:
        """The principal a bearer token proves: a session token of this service, or an outside provider's JWT
        (mapped to a role by its trust policy, evaluated with ``request``'s global condition keys)."""
        now = self.clock() if now is None else now
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self._bearer_cache.get(key)
        snapshot = self.snapshot
        if cached is not None and now < cached[1] and cached[2] is snapshot:
            return cached[0]
        principal, per_request = self._from_token_uncached(token, now, request)
        if per_request:
            return principal  # the role mapping read the request itself: decided afresh for every request
        valid_until = principal.expires_at if principal.expires_at is not None else now
        if principal.credential_kind is CredentialKind.SESSION:
            valid_until = min(valid_until, now + self.settings.session_cache_seconds)
        if valid_until > now:
            cache = self._bearer_cache
            if len(cache) >= 10_000:
                try:  # the oldest goes (dicts keep insertion order); clearing all would re-verify every caller at once
                    del cache[next(iter(cache))]
                except (KeyError, RuntimeError, StopIteration):
                    pass  # another thread changed the cache meanwhile: the bound is approximate
            cache[key] = (principal, valid_until, snapshot)
        return principal

    def forget_cached_credentials(self) -> None:
        """Drop every principal this process derived from a credential and bump ``credential_epoch`` (a provider's
        key was removed: tokens it signed must be checked again, and fail)."""
        self._bearer_cache.clear()
        self.credential_epoch += 1

    def forget_token(self, token: str) -> None:
        """Drop a token from this process's cache of verified tokens (logout takes effect here at once; other
        processes see a revocation within ``settings.session_cache_seconds``)."""
        self._bearer_cache.pop(hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest(), None)

    def forget_principal(self, arn: str) -> None:
        """Drop every cached token of one principal (logout everywhere, a disabled user)."""
        for key in [k for k, (p, _, _) in self._bearer_cache.items() if p.arn == arn]:
            self._bearer_cache.pop(key, None)

    def _from_token_uncached(self, token: str, now: float, request: RequestView | None) -> tuple[Principal, bool]:
        """(principal, whether its mapping depends on the request beyond the token)."""
        # Another token service's session (its issuer configured as a provider here) maps to a role, as any outside
        # token does: its server-side record is not ours to read.
        if _token_type(token) == SESSION_TYP and (self.web_identity is None or _token_issuer(token) not in
                                                  self._providers):
            return self._from_session(token, now), False
        if self.web_identity is None:
            raise InvalidTokenError("The bearer token is not a session token of this service, and no outside "
                                    "identity provider is configured.", code="InvalidToken",
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        verified = self.web_identity.verify(token, now=now)
        provider = self._providers[verified.issuer]
        honoured_until = self.honoured_until(token, verified, provider, now)
        principal, decision = self.assume_role_with_web_identity(provider, verified, now=now, request=request,
                                                                 duration=honoured_until - now)
        if principal is None:
            raise InvalidTokenError(
                f"The token of {provider.name} may not assume role {provider.role}: {decision.message}",
                code="AccessDenied", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return principal, self._trust_reads_request(provider.role)

    def honoured_until(self, token: str, verified: VerifiedToken, provider: WebIdentityProvider, now: float) -> float:
        """The end of an outside token's use here: its ``exp``, but never more than ``max_token_lifetime`` after its
        ``iat`` (or after this process first saw it). Past that: refused, whatever ``exp`` says."""
        start = verified.issued_at
        if start is None:
            key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
            if len(self._first_seen) >= 100_000:
                self._first_seen.clear()
            start = self._first_seen.setdefault(key, now)
        until = min(verified.expires_at, start + provider.max_token_lifetime)
        if now >= until:
            raise InvalidTokenError(f"The token of {provider.name} is older than this service honours "
                                    f"({provider.max_token_lifetime:g} s); get a fresh one.", code="TokenTooOld",
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return until

    def _trust_reads_request(self, role: str | Role) -> bool:
        target = self.snapshot.role(role) if isinstance(role, str) else role
        if target is None:  # pragma: no cover - the mapping just found it
            return True
        keys = self._resource_set(target.trust_policy).context_keys("sts:assumerolewithwebidentity")
        return not keys.isdisjoint(_REQUEST_KEYS)

    def _from_session(self, token: str, now: float) -> Principal:
        claims = self.sessions.verify(token, now=now)
        user = self.snapshot.user_by_arn(claims.principal_arn)
        # Bound to the user's id, not its name: a user deleted and re-created under the same name (a new id) is
        # a new identity that the old user's sessions do not reach. (A session issued without an id, by a direct
        # ``sessions.issue`` call, is bound by name only.)
        if user is None or not user.active or claims.extra.get(USER_ID, user.id) != user.id:
            raise InvalidTokenError("The session's user no longer exists or is disabled.", code="SessionRevoked")
        return self.snapshot.user_principal(
            user, CredentialKind.SESSION, auth_time=float(claims.issued_at), mfa_time=claims.mfa_time,
            expires_at=float(claims.expires_at), issuer=claims.issuer,
        )

    def _refuse_replay(self, verified: VerifiedSignature, now: float) -> None:
        """SigV4 has no nonce: with ``sigv4_replay_protection``, a signed request that changes state is accepted
        once; a second copy within its validity window is refused (docs/security.md S15). Fails closed without the
        store."""
        ttl = max(1.0, verified.valid_until - now)
        key = f"iam:sigv4:seen:{verified.access_key_id}:{verified.signature}"
        if not self.store.claim(key, ttl):
            raise SignatureError("This signed request was already used; sign a new one.", code="RequestReplayed")

    def _signing_credential(self, key_id: str) -> SigningCredential | None:
        if key_id.startswith("ASIA"):
            temporary = self.temporary.lookup(key_id)
            if temporary is None:
                return None
            return SigningCredential(key_id, temporary.secret_access_key, True, temporary.session_token,
                                     temporary.expires_at, record=temporary)
        found = self.snapshot.access_key(key_id)
        if found is None:
            return None
        key, user = found
        return SigningCredential(key.id, key.secret, key.active and user.active)

    def _from_signature(self, verified: VerifiedSignature, now: float) -> Principal:
        key_id = verified.access_key_id
        snapshot = self.snapshot
        if not key_id.startswith("ASIA"):
            found = snapshot.access_key(key_id)
            if found is None:  # pragma: no cover - the verifier looked it up a moment ago
                raise AuthenticationError("The access key no longer exists.", code="InvalidClientTokenId")
            return snapshot.user_principal(found[1], CredentialKind.ACCESS_KEY, access_key_id=key_id)
        # The record the verifier's lookup read, when it came from here: one store round trip per request.
        record = verified.credential.record
        temporary = record if isinstance(record, TemporaryCredential) else self.temporary.lookup(key_id)
        if temporary is None:
            raise AuthenticationError("The security token included in the request is expired or revoked.",
                                      code="ExpiredToken", scheme="AWS4-HMAC-SHA256")
        return self.principal_for_temporary(temporary)

    def principal_for_temporary(self, temporary: TemporaryCredential) -> Principal:
        """The principal behind temporary credentials (a role session, or a user's MFA session)."""
        snapshot = self.snapshot
        if temporary.kind == "role":
            role = snapshot.role(temporary.arn)
            if role is None or temporary.principal_id not in (None, role.id):
                raise AuthenticationError("The role of these temporary credentials no longer exists.",
                                          code="InvalidClientTokenId", scheme="AWS4-HMAC-SHA256")
            principal = snapshot.role_principal(
                role, temporary.session_name, CredentialKind.TEMPORARY_ACCESS_KEY, auth_time=temporary.issued_at,
                expires_at=temporary.expires_at, mfa_time=temporary.mfa_time, session_tags=temporary.tags,
                access_key_id=temporary.access_key_id, extra_context=temporary.context,
            )
        else:
            user = snapshot.user_by_arn(temporary.arn)
            if user is None or not user.active or (
                    temporary.principal_id not in (None, user.id)):
                raise AuthenticationError("The user of these temporary credentials no longer exists or is disabled.",
                                          code="InvalidClientTokenId", scheme="AWS4-HMAC-SHA256")
            principal = snapshot.user_principal(
                user, CredentialKind.TEMPORARY_ACCESS_KEY, auth_time=temporary.issued_at,
                mfa_time=temporary.mfa_time, expires_at=temporary.expires_at, access_key_id=temporary.access_key_id,
            )
        if temporary.session_policy is not None:
            principal = _with_session_policy(principal, temporary.session_policy)
        return principal

    def assume_role_with_web_identity(
        self, provider: WebIdentityProvider, verified: VerifiedToken, *, now: float, role: str | None = None,
        duration: float | None = None, request: RequestView | None = None, source_ip: str | None | _Unset = UNSET,
    ) -> tuple[Principal | None, Decision]:
        """Evaluate the role's trust policy for an outside token, as AssumeRoleWithWebIdentity does: with the
        token's claims and the request's global condition keys (``aws:SourceIp``, ``aws:CurrentTime``, ...)."""
        snapshot = self.snapshot
        target = snapshot.role(role or provider.role)
        if target is None:
            raise InvalidTokenError(f"Role {role or provider.role!r} does not exist.", code="InvalidToken")
        claims = verified.claims
        context: dict[str, Any] = {"aws:FederatedProvider": provider.name}
        for claim in ("sub", "aud", "amr", "email", "azp", "oaud"):
            if claim in claims:
                value = claims[claim]
                context[f"{provider.name}:{claim}"] = list(value) if isinstance(value, (list, tuple)) else value
        trust = self._resource_set(target.trust_policy)
        verdict_key = _verdict_key(trust, provider.name, target.arn, context)
        decision = self._trust_verdicts.get(verdict_key) if verdict_key is not None else None
        if decision is None:
            full = self.context_for(None, request, now=now, source_ip=source_ip)
            full.update((k.lower(), v) for k, v in context.items())
            decision = self._web_identity_authorizer(provider.name).authorize(
                "sts:AssumeRoleWithWebIdentity", target.arn, full, resource_policy=trust)
            if verdict_key is not None and not self._trust_reads_request(target):
                if len(self._trust_verdicts) >= 10_000:  # a plain dict: safe to share with worker threads
                    self._trust_verdicts.clear()
                self._trust_verdicts[verdict_key] = decision
        if not decision.allowed:
            return None, decision
        session_name = str(claims.get(provider.session_name_claim, verified.subject or "web"))
        tags = provider.session_tags(claims)
        expires = verified.expires_at if duration is None else min(verified.expires_at, now + duration)
        principal = snapshot.role_principal(
            target, _safe_session_name(session_name), CredentialKind.WEB_IDENTITY, auth_time=verified.issued_at or now,
            expires_at=expires, session_tags=tags, issuer=verified.issuer,
            extra_context={k.lower(): v for k, v in context.items() if k != "aws:FederatedProvider"},
        )
        return principal, decision

    # Authorization ---------------------------------------------------------------------------------------------
    def context_for(self, principal: Principal | None, request: RequestView | None, *, now: float,
                    source_ip: str | None | _Unset = UNSET) -> dict[str, Any]:
        """The IAM global condition keys of a request (lower-cased keys, ready for ``authorize``). ``source_ip`` is
        the caller's address as the gate resolved it; when not given it is resolved here, through the trusted
        proxies (None: the forwarded chain could not be read, and the key is absent)."""
        context: dict[str, Any] = {
            "aws:currenttime": _iso(now),
            "aws:epochtime": str(int(now)),
        }
        if request is not None:
            ip = (resolve_source_ip(request, self.settings.trusted_proxies) if isinstance(source_ip, _Unset)
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
        if principal is not None:
            for key, value in principal.context_keys(now).items():
                context[key.lower()] = value
        return context

    def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
        request: RequestView | None = None,
        resource_policy: Policy | None = None,
        resource_account: str | None = None,
        source_ip: str | None | _Unset = UNSET,
    ) -> Decision:
        """Decide ``action`` on ``resource`` for ``principal``: the global keys are filled in (from ``request``,
        its address resolved through the trusted proxies unless ``source_ip`` is given), ``context`` adds to them
        (keys case-insensitive). Never raises: a failure is a deny that says so."""
        now = self.clock() if now is None else now
        full = _merged(context, self.context_for(principal, request, now=now, source_ip=source_ip))
        return self._decide(principal, action, resource, full, resource_policy, resource_account)

    def _decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        full: Mapping[str, Any],
        resource_policy: Policy | None = None,
        resource_account: str | None = None,
    ) -> Decision:
        """Decide with a complete, lower-cased context. Never raises: a failure is a deny that says so."""
        try:
            authorizer = self._authorizer(principal)
            resource_set = self._resource_set(resource_policy) if resource_policy is not None else None
            return authorizer.authorize(action, resource, full, resource_policy=resource_set,
                                        resource_account=resource_account)
        except Exception as exc:  # noqa: BLE001 - fail closed
            logger.exception("authorization failed closed for %s", principal.arn)
            return Decision(DecisionKind.IMPLICITLY_DENIED, principal.arn, action, resource, denied_by="error",
                            error=type(exc).__name__)

    def reads_time(self, principal: Principal, action: str) -> bool:
        """Whether a decision about ``action`` for ``principal`` can change with the clock alone (a statement that
        could apply reads ``aws:CurrentTime``, ``aws:EpochTime`` or ``aws:MultiFactorAuthAge``)."""
        authorizer = self._authorizer(principal)
        action_lower = action.lower()
        for layer in (authorizer.identity, authorizer.boundary, authorizer.session, authorizer.guardrails):
            if layer is not None and layer.context_keys(action_lower) & _TIME_KEYS:
                return True
        return False

    def would_allow_with_mfa(self, principal: Principal, action: str, resource: str,
                             context: Mapping[str, Any]) -> bool:
        """Whether a denied request would be allowed with a fresh MFA login (a step-up the client can offer)."""
        if principal.mfa_present:
            return False
        stepped = dict(context)
        stepped["aws:multifactorauthpresent"] = "true"
        stepped["aws:multifactorauthage"] = "0"
        return self._authorizer(principal).decide(action, resource, stepped).allowed

    def _web_identity_authorizer(self, provider: str) -> Authorizer:
        """One cached evaluator per provider: the trust decision depends only on the claims it reads."""
        found = self._web_authorizers.get(provider)
        if found is None:
            caller = Caller.from_arn(f"federated:{provider}", extra={f"Federated:{provider}": "web"})
            found = self._web_authorizers[provider] = Authorizer(caller)
        return found

    def _resource_set(self, policy: Policy) -> PolicySet:
        found = self._resource_sets.get(id(policy))
        if found is not None and found[0] is policy:  # the policy is held, so its id cannot have been reused
            return found[1]
        if len(self._resource_sets) >= 1024:
            self._resource_sets.clear()
        policy_set = PolicySet([policy])
        self._resource_sets[id(policy)] = (policy, policy_set)
        return policy_set

    def _authorizer(self, principal: Principal) -> Authorizer:
        """The compiled layers of ``principal`` in the snapshot this request is decided on (session policy included)."""
        session_policy = self._session_policy(principal.session_policy) if principal.session_policy else None
        return self.snapshot.authorizer(principal, session_policy)

    def _session_policy(self, text: str) -> Policy:
        policy = self._session_policies.get(text)
        if policy is None:
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            policy = parse_policy(text, kind=PolicyKind.SESSION, policy_id=f"session-policy-{digest}")
            self._session_policies[text] = policy
        return policy

    def check(
        self,
        request: RequestView,
        action: str,
        resource: str,
        *,
        context: Mapping[str, Any] | None = None,
        principal: Principal | None = None,
        now: float | None = None,
        source_ip: str | None | _Unset = UNSET,
    ) -> tuple[Principal, Decision]:
        """Authenticate (unless ``principal`` is given) and authorize one request; raise the IAMError to render."""
        now = self.clock() if now is None else now
        if principal is None:
            principal = self.authenticate(request, now=now)
        if principal is None:
            raise MissingCredentialError("This resource requires authentication.", headers={
                "WWW-Authenticate": 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'})
        full = _merged(context, self.context_for(principal, request, now=now, source_ip=source_ip))
        decision = self._decide(principal, action, resource, full)
        if not decision.allowed:
            error = AccessDeniedError(decision.message, decision=decision)
            if decision.kind.value == "ImplicitlyDenied" and self.would_allow_with_mfa(principal, action, resource,
                                                                                      full):
                error = AccessDeniedError(decision.message + " (multi-factor authentication would allow it: log in "
                                          "with a one-time code)", decision=decision, code="MultiFactorAuthRequired")
            raise error
        return principal, decision

    # Sessions --------------------------------------------------------------------------------------------------
    def _login_record(self, username: str) -> LoginRecord | None:
        user = self.snapshot.user(username)
        if user is None or user.password_hash is None:
            return None
        return LoginRecord(user.id, user.arn, user.password_hash, user.totp, active=user.active)

    def _usual_password_cost(self) -> PasswordCost:
        """The cost most of the directory's password hashes have: a login for an unknown user spends that much, so
        it takes as long as one for a known user even while older hashes are still cheaper than new ones."""
        snapshot = self.snapshot
        if self._dummy_cost[0] is not snapshot:
            costs: Counter[PasswordCost] = Counter()
            for user in getattr(snapshot, "users", {}).values():  # an application's own Directory may list none
                if user.password_hash is not None:
                    with suppress(ConfigurationError):  # a broken hash fails its own logins (LoginService._find)
                        costs[PasswordHash.parse(user.password_hash).cost] += 1
            self._dummy_cost = (snapshot, costs.most_common(1)[0][0] if costs else PasswordCost())
        return self._dummy_cost[1]

    def login(self, username: str, password: str, code: str, *, now: float | None = None,
              source_ip: str | None = None) -> IssuedSession:
        """Password + TOTP login; returns a session usable as a bearer token or cookie. Raises OTPError/LockedOut."""
        now = self.clock() if now is None else now
        for hook in self.refresh_hooks:  # log in against the directory in force everywhere, as authenticate does
            hook(now)
        return self.login_service.login(username, password, code, now=now, source_ip=source_ip)


def _rules(data: Mapping[str, Any], source: str) -> RuleTable:
    """The ``[[routes]]`` rules table of a directory file (method, path template -> action, resource, context)."""
    entries = data.get("routes") or []
    if not isinstance(entries, list):
        raise ConfigurationError(f"{source}: routes must be an array of tables ([[routes]])")
    try:
        return RuleTable.from_config(entries)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def _default_store(settings: Settings) -> StateStore:
    """Redis when ``settings.redis_url`` names one (the one setting that turns shared state on), else memory."""
    if settings.redis_url is None:
        return MemoryStore()
    try:
        from .state._redis import RedisStore
    except ModuleNotFoundError:
        raise ConfigurationError("settings.redis_url needs the redis extra: pip install 'iam-middleware[redis]'"
                                 ) from None
    return RedisStore(settings.redis_url)


def _merged(extra: Mapping[str, Any] | None, computed: dict[str, Any]) -> dict[str, Any]:
    """The request context: the caller's extra keys (lower-cased), then the keys IAM computes, which always win:
    a route or a library caller can add ``orders:Priority`` but never set ``aws:SourceIp`` or the principal's keys."""
    if not extra:
        return computed
    full = {key.lower(): value for key, value in extra.items()}
    full.update(computed)
    return full


def _verdict_key(trust: PolicySet, provider: str, role: str, context: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What a trust verdict depends on besides the request, or None when a claim value cannot be a key."""
    items = tuple(sorted((name, tuple(value) if isinstance(value, list) else value) for name, value in context.items()))
    try:
        hash(items)
    except TypeError:  # a claim holding an object: evaluated every time
        return None
    return (trust, provider, role, items)


def _token_type(token: str) -> str | None:
    """The ``typ`` header of a JWT, unverified: it only picks which verifier runs, each verifying fully."""
    segment = token.split(".", 1)[0]
    if not 0 < len(segment) <= 1024 or not _BASE64URL.fullmatch(segment):
        return None
    try:
        header = decode_header(segment)
    except InvalidTokenError:
        return None
    typ = header.get("typ")
    return typ if isinstance(typ, str) else None


def _token_issuer(token: str) -> str | None:
    """The ``iss`` claim of a JWT, unverified: as ``_token_type``, it only picks the verifier."""
    parts = token.split(".")
    if len(parts) != 3 or not 0 < len(parts[1]) <= 4096 or not _BASE64URL.fullmatch(parts[1]):
        return None
    try:
        iss = _decode_segment(parts[1], "payload").get("iss")
    except InvalidTokenError:
        return None
    return iss if isinstance(iss, str) else None


_DIGESTED_NAME = re.compile(r"-[0-9a-f]{12}\Z")
_SESSION_NAME = re.compile(r"[A-Za-z0-9=,.@_-]{2,64}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _safe_session_name(name: str) -> str:
    """A role session name from an outside subject, within IAM's rules (2-64 of ``\\w+=,.@-``) and injective: when
    anything had to be replaced or cut, a digest of the whole subject is appended, so two identities never share
    a session ARN (and ``aws:userid``)."""
    # A name that already looks digested is digested again, so no subject can take another's mapped name.
    if _SESSION_NAME.fullmatch(name) and not _DIGESTED_NAME.search(name):
        return name
    cleaned = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "=,.@-_" else "-" for ch in name)
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{cleaned[:64 - 13]}-{digest}" if cleaned else f"web-{digest}"


def _with_session_policy(principal: Principal, text: str) -> Principal:
    return replace(principal, session_policy=text)
