"""The credential resolver: from a verified credential to the Principal it proves.

It owns the verifiers (SigV4 access keys, this service's session tokens, outside providers' JWTs, the CSRF guard
of cookie sessions), the temporary credentials the token service issues, and what this process remembers about
credentials: verified bearer tokens (never past a token's expiry; a session is re-checked against the store after
``settings.session_cache_seconds``), the trust verdicts of outside tokens, and when it first saw a token without an
``iat``. The authenticators (``iam_middleware._authn``) ask it; so does the token service.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ._decisions import UNSET, DecisionPoint, _Unset
from ._exceptions import AuthenticationError, InvalidTokenError, SignatureError
from ._principal import CredentialKind, Principal
from ._request import RequestView
from ._settings import Settings, WebIdentityProvider
from ._snapshots import SnapshotHandle
from ._temporary import TemporaryCredential, TemporaryCredentials
from .authenticators._csrf import CSRFGuard
from .authenticators._jwt import JWTVerifier, VerifiedToken, decode_header, decode_payload
from .authenticators._login import USER_ID
from .authenticators._sessions import SESSION_TYP, SessionTokens
from .authenticators._sigv4 import SigningCredential, SigV4Verifier, VerifiedSignature
from .directory import Role, Snapshot
from .policy import Caller, Decision, PolicySet
from .policy._authorizer import Authorizer
from .state import StateStore

__all__ = ["CredentialResolver"]

#: Global keys that come from the request rather than the credential: a trust decision reading one is per request.
#: The most principals of long-term access keys remembered for one snapshot (``CredentialResolver.from_signature``).
_KEY_PRINCIPALS = 10_000
_REQUEST_KEYS = frozenset({"aws:currenttime", "aws:epochtime", "aws:sourceip", "aws:securetransport",
                           "aws:useragent", "aws:referer"})


class CredentialResolver:
    """Verifies credentials and maps them to principals of the snapshot in force; thread-safe.

    ``credential_epoch`` is bumped when a credential this process may have remembered stops being valid without a
    reload (a key gone from a provider's JWKS): the shells' recent decisions compare it.
    """

    def __init__(self, snapshots: SnapshotHandle, settings: Settings, store: StateStore, decisions: DecisionPoint,
                 *, clock: Callable[[], float]) -> None:
        self._snapshots = snapshots
        self._settings = settings
        self._store = store
        self._decisions = decisions
        self._clock = clock
        s = settings
        #: The temporary credentials (``ASIA...``) the token service issues, in the state store.
        self.temporary = TemporaryCredentials(store)
        self.sigv4 = SigV4Verifier(
            service=s.service, regions=s.regions, lookup=self._signing_credential, max_skew=s.max_skew,
            allow_unsigned_payload=s.allow_unsigned_payload, verbatim_fallback=s.sigv4_verbatim_fallback,
            s3_style_paths=s.s3_style_paths, allowed_hosts=s.allowed_hosts,
        )
        self.sessions = SessionTokens(s.session_secret, store=store, ttl=s.session_ttl, cookie_name=s.cookie_name,
                                      issuer=s.session_issuer, signing_keys=s.session_signing_keys)
        self.csrf = CSRFGuard(allowed_origins=s.allowed_origins, cookie_name=s.cookie_name)
        #: ``settings.sigv4_replay_protection``: a signed request that changes state is accepted once.
        self.replay_protection = s.sigv4_replay_protection
        self._providers = {p.issuer.issuer: p for p in s.web_identity}
        #: The outside providers' JWT verifier (None: no ``[[settings.web_identity]]``).
        self.web_identity = JWTVerifier([p.issuer for p in s.web_identity]) if s.web_identity else None
        # Verified bearer tokens: sha256(token) -> (principal, valid until, snapshot). Never beyond the token's
        # expiry; sessions are re-checked against the store after settings.session_cache_seconds (the documented
        # bound on how long a revoked session may still pass); a reload (new snapshot) invalidates every entry.
        self._bearer_cache: dict[bytes, tuple[Principal, float, Snapshot]] = {}
        #: Lookups in that cache, hits and misses: tallies a metrics collector reads (one C call per lookup, no lock).
        self.bearer_cache_hits, self.bearer_cache_misses = itertools.count(), itertools.count()
        self._web_authorizers: dict[str, Authorizer] = {}
        # Trust verdicts for outside tokens, by (trust policy, provider, role, the claims the context carries): a
        # client refreshing its token is not evaluated again. Only for trust policies that read no request key.
        self._trust_verdicts: dict[tuple[Any, ...], Decision] = {}
        self._first_seen: dict[bytes, float] = {}
        # The principal of each long-term access key, for the snapshot it was built from: a signed request is never
        # remembered as a whole (each signature is one request's), but who holds a key changes only with the
        # directory. Emptied when the snapshot changes; at most _KEY_PRINCIPALS entries.
        self._key_principals: tuple[Snapshot | None, dict[str, Principal]] = (None, {})
        self.credential_epoch = 0
        for provider in s.web_identity:
            if provider.issuer.jwks is not None:
                provider.issuer.jwks.subscribe(self.forget_cached_credentials)

    def __repr__(self) -> str:
        return f"CredentialResolver(providers={sorted(p.name for p in self._providers.values())!r})"

    # Bearer tokens ---------------------------------------------------------------------------------------------
    def from_token(self, token: str, *, now: float | None = None, request: RequestView | None = None) -> Principal:
        """The principal a bearer token proves: a session token of this service, or an outside provider's JWT
        (mapped to a role by its trust policy, evaluated with ``request``'s global condition keys)."""
        now = self._clock() if now is None else now
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self._bearer_cache.get(key)
        snapshot = self._snapshots.current
        if cached is not None and now < cached[1] and cached[2] is snapshot:
            next(self.bearer_cache_hits)
            return cached[0]
        next(self.bearer_cache_misses)
        principal, per_request = self._from_token_uncached(token, now, request)
        if per_request:
            return principal  # the role mapping read the request itself: decided afresh for every request
        valid_until = principal.expires_at if principal.expires_at is not None else now
        if principal.credential_kind is CredentialKind.SESSION:
            valid_until = min(valid_until, now + self._settings.session_cache_seconds)
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
            return self.from_session(token, now), False
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

    def from_session(self, token: str, now: float) -> Principal:
        """The user a session token of this service (verified against the store) stands for."""
        claims = self.sessions.verify(token, now=now)
        snapshot = self._snapshots.current
        user = snapshot.user_by_arn(claims.principal_arn)
        # Bound to the user's id, not its name: a user deleted and re-created under the same name (a new id) is
        # a new identity that the old user's sessions do not reach. (A session issued without an id, by a direct
        # ``sessions.issue`` call, is bound by name only.)
        if user is None or not user.active or claims.extra.get(USER_ID, user.id) != user.id:
            raise InvalidTokenError("The session's user no longer exists or is disabled.", code="SessionRevoked")
        return snapshot.user_principal(
            user, CredentialKind.SESSION, auth_time=float(claims.issued_at), mfa_time=claims.mfa_time,
            expires_at=float(claims.expires_at), issuer=claims.issuer,
        )

    # Outside tokens --------------------------------------------------------------------------------------------
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

    def assume_role_with_web_identity(
        self, provider: WebIdentityProvider, verified: VerifiedToken, *, now: float, role: str | None = None,
        duration: float | None = None, request: RequestView | None = None, source_ip: str | None | _Unset = UNSET,
    ) -> tuple[Principal | None, Decision]:
        """Evaluate the role's trust policy for an outside token, as AssumeRoleWithWebIdentity does: with the
        token's claims and the request's global condition keys (``aws:SourceIp``, ``aws:CurrentTime``, ...)."""
        snapshot = self._snapshots.current
        target = snapshot.role(role or provider.role)
        if target is None:
            raise InvalidTokenError(f"Role {role or provider.role!r} does not exist.", code="InvalidToken")
        claims = verified.claims
        context: dict[str, Any] = {"aws:FederatedProvider": provider.name}
        for claim in ("sub", "aud", "amr", "email", "azp", "oaud"):
            if claim in claims:
                value = claims[claim]
                context[f"{provider.name}:{claim}"] = list(value) if isinstance(value, (list, tuple)) else value
        trust = self._decisions.policy_set(target.trust_policy)
        verdict_key = _verdict_key(trust, provider.name, target.arn, context)
        decision = self._trust_verdicts.get(verdict_key) if verdict_key is not None else None
        if decision is None:
            full = self._decisions.context_for(None, request, now=now, source_ip=source_ip)
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

    def _web_identity_authorizer(self, provider: str) -> Authorizer:
        """One cached evaluator per provider: the trust decision depends only on the claims it reads."""
        found = self._web_authorizers.get(provider)
        if found is None:
            caller = Caller.from_arn(f"federated:{provider}", extra={f"Federated:{provider}": "web"})
            found = self._web_authorizers[provider] = Authorizer(caller)
        return found

    def _trust_reads_request(self, role: str | Role) -> bool:
        target = self._snapshots.current.role(role) if isinstance(role, str) else role
        if target is None:  # pragma: no cover - the mapping just found it
            return True
        keys = self._decisions.policy_set(target.trust_policy).context_keys("sts:assumerolewithwebidentity")
        return not keys.isdisjoint(_REQUEST_KEYS)

    # Access keys -----------------------------------------------------------------------------------------------
    def refuse_replay(self, verified: VerifiedSignature, now: float) -> None:
        """SigV4 has no nonce: with ``sigv4_replay_protection``, a signed request that changes state is accepted
        once; a second copy within its validity window is refused (docs/security.md S15). Fails closed without the
        store."""
        ttl = max(1.0, verified.valid_until - now)
        key = f"iam:sigv4:seen:{verified.access_key_id}:{verified.signature}"
        if not self._store.claim(key, ttl):
            raise SignatureError("This signed request was already used; sign a new one.", code="RequestReplayed")

    def _signing_credential(self, key_id: str) -> SigningCredential | None:
        if key_id.startswith("ASIA"):
            temporary = self.temporary.lookup(key_id)
            if temporary is None:
                return None
            return SigningCredential(key_id, temporary.secret_access_key, True, temporary.session_token,
                                     temporary.expires_at, record=temporary)
        found = self._snapshots.current.access_key(key_id)
        if found is None:
            return None
        key, user = found
        return SigningCredential(key.id, key.secret, key.active and user.active)

    def from_signature(self, verified: VerifiedSignature, now: float) -> Principal:
        """The principal whose access key (long-term or temporary) signed a verified request."""
        key_id = verified.access_key_id
        snapshot = self._snapshots.current
        if not key_id.startswith("ASIA"):
            built_from, principals = self._key_principals
            if built_from is not snapshot:
                principals = {}
                self._key_principals = (snapshot, principals)
            principal = principals.get(key_id)
            if principal is None:
                found = snapshot.access_key(key_id)
                if found is None:  # pragma: no cover - the verifier looked it up a moment ago
                    raise AuthenticationError("The access key no longer exists.", code="InvalidClientTokenId")
                principal = snapshot.user_principal(found[1], CredentialKind.ACCESS_KEY, access_key_id=key_id)
                if len(principals) >= _KEY_PRINCIPALS:
                    principals.clear()
                principals[key_id] = principal
            return principal
        # The record the verifier's lookup read, when it came from here: one store round trip per request.
        record = verified.credential.record
        temporary = record if isinstance(record, TemporaryCredential) else self.temporary.lookup(key_id)
        if temporary is None:
            raise AuthenticationError("The security token included in the request is expired or revoked.",
                                      code="ExpiredToken", scheme="AWS4-HMAC-SHA256")
        return self.principal_for_temporary(temporary)

    def principal_for_temporary(self, temporary: TemporaryCredential) -> Principal:
        """The principal behind temporary credentials (a role session, or a user's MFA session)."""
        snapshot = self._snapshots.current
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
            principal = replace(principal, session_policy=temporary.session_policy)
        return principal


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
        iss = decode_payload(parts[1]).get("iss")
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
