"""Session tokens issued after a password + TOTP login: JWTs (HS256, or EdDSA/ES256 with signing keys) backed by a
server-side record.

The JWT makes a session cheap to check and self-describing; the record in the ``StateStore`` makes it revocable
(logout, "log out everywhere"). A token is valid only while both agree, so a store that cannot answer refuses the
session (503), never lets it through. Tokens are read by the strict verifier outside tokens go through
(``_jwt.JWTVerifier``: duplicate JSON members, claim types, base64url and algorithm as strictly), with the injected
``now``; pyjwt only signs them.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import jwt

from .._exceptions import ConfigurationError, InvalidTokenError, ServiceUnavailableError
from .._json import JSONError, loads
from .._request import RequestView
from ..state import StateStore, StateUnavailableError
from ._jwks import JWTKey
from ._jwt import (
    AlgorithmNotAllowedError,
    JWTValidationError,
    JWTVerifier,
    MissingClaimError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenSignatureError,
    TrustedIssuer,
    UnknownSigningKeyError,
    UntrustedIssuerError,
)
from ._signing import SessionSigningKey

__all__ = [
    "SESSION_TYP",
    "IssuedSession",
    "MalformedSessionTokenError",
    "SessionClaims",
    "SessionExpiredError",
    "SessionRevokedError",
    "SessionSignatureError",
    "SessionTokens",
]

SESSION_TYP = "iam-session+jwt"
_ALGORITHM = "HS256"
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
_MAX_TOKEN_CHARS = 4096
_MAX_ARN_CHARS = 2048
# Tokens are issued by sibling processes whose clocks may differ a little; a token from further in the future than
# this was not made by us.
_IAT_SKEW = 60
_SID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 6265 cookie-name (an RFC 9110 token)
_REQUIRED_CLAIMS = ("iss", "sub", "sid", "iat", "exp", "auth_time", "amr")
_AMR = ["pwd", "otp"]
_MALFORMED = "the session token is malformed; log in again"
_NOT_OURS = "the session token was not issued by this service; log in again"
_EXPIRED = "the session has expired; log in again"


class MalformedSessionTokenError(InvalidTokenError):
    """The session token is not one this service issues (shape, header or claims are wrong)."""

    code = "MalformedSessionToken"


class SessionSignatureError(InvalidTokenError):
    """The session token is not signed by any current session secret, or names another issuer."""

    code = "InvalidSessionSignature"


class SessionExpiredError(InvalidTokenError):
    """The session reached its absolute lifetime or was idle too long."""

    code = "SessionExpired"


class SessionRevokedError(InvalidTokenError):
    """The session was logged out or revoked, or its server-side record is gone."""

    code = "SessionRevoked"


@dataclass(frozen=True, slots=True, repr=False)
class IssuedSession:
    """A new session: the token to hand to the client (cookie or bearer), its id and lifetime."""

    token: str
    session_id: str
    issued_at: float
    expires_at: int

    def __repr__(self) -> str:
        return (
            f"IssuedSession(token='********', session_id={self.session_id!r}, "
            f"issued_at={self.issued_at!r}, expires_at={self.expires_at!r})"
        )


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """A verified session: who, since when, until when, and how they authenticated."""

    session_id: str
    principal_arn: str
    issuer: str
    issued_at: int
    expires_at: int
    auth_time: int
    amr: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def mfa_present(self) -> bool:
        """True when a one-time code was part of the login (``aws:MultiFactorAuthPresent``)."""
        return "otp" in self.amr

    @property
    def mfa_time(self) -> int | None:
        """When the second factor was checked (drives ``aws:MultiFactorAuthAge``), or ``None`` without MFA."""
        return self.auth_time if self.mfa_present else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cookie_values(request: RequestView, name: str) -> list[str]:
    """Every value sent for cookie ``name``, across all ``Cookie`` headers, in order."""
    values = []
    for header in request.header_values("cookie"):
        for pair in header.split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name:
                values.append(value.strip().strip('"'))
    return values


class SessionTokens:
    """Issues, verifies and revokes session tokens.

    ``secret`` is one key of at least 32 random bytes, or a tuple of them for rotation: the first signs, all
    verify. ``ttl`` is the absolute lifetime in seconds; ``idle_timeout`` (optional) ends a session unused for
    that long (checked to within a tenth of it, so active sessions write to the store rarely). ``signing_keys``
    (optional) replace HS256: the first signs, all verify and are published by ``jwks``, so other services verify
    these tokens without the secret.
    """

    def __init__(
        self,
        secret: bytes | tuple[bytes, ...],
        *,
        store: StateStore,
        issuer: str = "iam-middleware",
        ttl: int = 3600,
        idle_timeout: float | None = None,
        cookie_name: str = "iam_session",
        key_prefix: str = "iam:session:",
        signing_keys: tuple[SessionSigningKey, ...] = (),
    ) -> None:
        keys = (secret,) if isinstance(secret, bytes) else secret
        if not isinstance(keys, tuple) or not keys:
            raise ConfigurationError("session secret must be bytes or a non-empty tuple of bytes")
        for key in keys:
            if not isinstance(key, bytes) or len(key) < _MIN_SECRET_BYTES:
                raise ConfigurationError(f"each session secret must be at least {_MIN_SECRET_BYTES} random bytes")
        if not isinstance(issuer, str) or not issuer:
            raise ConfigurationError("issuer must be a non-empty string")
        if not _is_int(ttl) or ttl < 1:
            raise ConfigurationError(f"ttl must be a positive int number of seconds, got {ttl!r}")
        if idle_timeout is not None and not 0 < idle_timeout <= ttl:
            raise ConfigurationError("idle_timeout must be positive and at most ttl")
        if not isinstance(cookie_name, str) or not _COOKIE_NAME.fullmatch(cookie_name):
            raise ConfigurationError(f"cookie_name must be an RFC 6265 cookie name, got {cookie_name!r}")
        if not isinstance(signing_keys, tuple) or not all(isinstance(k, SessionSigningKey) for k in signing_keys):
            raise ConfigurationError("signing_keys must be a tuple of SessionSigningKey")
        self._keys = keys
        self.signing_keys = signing_keys
        # Each key bound to its one algorithm: HS256 for the secrets, or, with signing keys, only their public halves
        # (an HS256 token "signed" with a published public key is refused). The leeway lets a sibling's clock run
        # _IAT_SKEW ahead of ours.
        verify_keys = (tuple(key.verify_key for key in signing_keys) if signing_keys
                       else tuple(JWTKey(None, (_ALGORITHM,), key) for key in keys))
        self._verifier = JWTVerifier(
            [TrustedIssuer(issuer, (), keys=verify_keys, leeway=_IAT_SKEW, required_claims=_REQUIRED_CLAIMS)],
            max_token_bytes=_MAX_TOKEN_CHARS,
        )
        self._store = store
        self.issuer = issuer
        self.ttl = ttl
        self.idle_timeout = idle_timeout
        self.cookie_name = cookie_name
        self._prefix = key_prefix

    def __repr__(self) -> str:
        return (
            f"SessionTokens(secrets=<{len(self._keys)} hidden>, signing_keys={[k.kid for k in self.signing_keys]!r}, "
            f"issuer={self.issuer!r}, ttl={self.ttl}, "
            f"idle_timeout={self.idle_timeout!r}, cookie_name={self.cookie_name!r})"
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys of ``signing_keys`` as a JWK Set (RFC 7517): empty with HS256, whose secret is never
        published."""
        return {"keys": [dict(key.public_jwk) for key in self.signing_keys]}

    def _record_key(self, session_id: str) -> str:
        return f"{self._prefix}sess:{session_id}"

    def _not_before_key(self, principal_arn: str) -> str:
        return f"{self._prefix}nbf:{principal_arn}"

    def issue(
        self, principal_arn: str, *, now: float, mfa_time: float, extra: Mapping[str, Any] | None = None
    ) -> IssuedSession:
        """Start a session for ``principal_arn`` after a login whose second factor was checked at ``mfa_time``.

        ``extra`` (JSON-serialisable) stays in the server-side record and comes back in ``SessionClaims.extra``;
        it is never put in the token, so clients cannot read it.
        """
        if not isinstance(principal_arn, str) or not 0 < len(principal_arn) <= _MAX_ARN_CHARS:
            raise ValueError(f"principal_arn must be a non-empty string of at most {_MAX_ARN_CHARS} characters")
        if not (math.isfinite(now) and math.isfinite(mfa_time) and 0 <= mfa_time <= now):
            raise ValueError("mfa_time must be a finite time no later than now")
        session_id = secrets.token_urlsafe(32)
        issued_at = int(now)
        expires_at = issued_at + self.ttl
        record: dict[str, Any] = {"sub": principal_arn, "iat": now, "seen": now, "extra": dict(extra or {})}
        claims = {
            "iss": self.issuer,
            "sub": principal_arn,
            "sid": session_id,
            "iat": issued_at,
            "exp": expires_at,
            "auth_time": int(mfa_time),
            "amr": _AMR,
        }
        if self.signing_keys:
            token = self.signing_keys[0].sign(claims, typ=SESSION_TYP)
        else:
            token = jwt.encode(claims, self._keys[0], algorithm=_ALGORITHM, headers={"typ": SESSION_TYP})
        self._write_record(session_id, record, now=now, expires_at=expires_at)
        return IssuedSession(token=token, session_id=session_id, issued_at=now, expires_at=expires_at)

    def _write_record(self, session_id: str, record: dict[str, Any], *, now: float, expires_at: int) -> None:
        # Kept for the whole lifetime even with an idle timeout: "seen" decides idleness, so the answer is
        # "idle too long", not "revoked", and the store's clock never has to agree with the injected one.
        try:
            self._store.set(
                self._record_key(session_id), json.dumps(record, separators=(",", ":")).encode(), expires_at - now
            )
        except StateUnavailableError:
            raise ServiceUnavailableError("sessions cannot be stored right now; try again shortly") from None

    def _decode(self, token: str, now: float) -> Mapping[str, Any]:
        """The claims of a token signed with one of our keys, read by the outside tokens' strict verifier (one JSON
        object per segment, no duplicate names, canonical base64url, typed claims, only HS256 with our keys), then
        shape-checked as sessions; raises on anything else."""
        if not isinstance(token, str):
            raise MalformedSessionTokenError(_MALFORMED)
        try:
            verified = self._verifier.verify(token, now=now)
        except (UntrustedIssuerError, AlgorithmNotAllowedError, UnknownSigningKeyError, TokenSignatureError):
            raise SessionSignatureError(_NOT_OURS) from None
        except TokenExpiredError:
            raise SessionExpiredError(_EXPIRED) from None
        except TokenNotYetValidError:
            raise MalformedSessionTokenError("the session token is not valid yet; check the server clocks") from None
        except MissingClaimError as exc:  # no issuer at all is as foreign as another one
            raise (SessionSignatureError(_NOT_OURS) if exc.claim == "iss" else MalformedSessionTokenError(_MALFORMED)
                   ) from None
        except JWTValidationError:
            raise MalformedSessionTokenError(_MALFORMED) from None
        # Exact match: RFC 7515 lets ``typ`` vary in case and prefix, a session token never does.
        if verified.header.get("typ") != SESSION_TYP:
            raise SessionSignatureError(_NOT_OURS)
        payload = verified.claims  # "sub" is a string: the verifier checks it
        sid = payload["sid"]
        if not (
            type(sid) is str
            and _SID.fullmatch(sid)
            and all(_is_int(payload[name]) for name in ("iat", "exp", "auth_time"))
            and type(payload["amr"]) is tuple
            and all(type(method) is str for method in payload["amr"])
            and payload["auth_time"] <= payload["iat"] < payload["exp"]
        ):
            raise MalformedSessionTokenError(_MALFORMED)
        return payload

    def verify(self, token: str, *, now: float) -> SessionClaims:
        """Check signature, type, lifetime and the server-side record; returns the claims or raises."""
        payload = self._decode(token, now)
        if now >= payload["exp"]:  # the verifier allows _IAT_SKEW past it, a session ends at its exp
            raise SessionExpiredError(_EXPIRED)
        session_id: str = payload["sid"]
        principal_arn: str = payload["sub"]
        try:
            raw = self._store.get(self._record_key(session_id))
            not_before = self._store.get(self._not_before_key(principal_arn)) if raw is not None else None
        except StateUnavailableError:
            raise ServiceUnavailableError("sessions cannot be checked right now; try again shortly") from None
        record = _parse_record(raw)
        if record is None or record["sub"] != principal_arn:
            raise SessionRevokedError("the session has ended (logged out or revoked); log in again")
        if not_before is not None and not _issued_after(record["iat"], not_before):
            raise SessionRevokedError("the session has ended (logged out or revoked); log in again")
        if self.idle_timeout is not None:
            idle = now - record["seen"]
            if idle >= self.idle_timeout:
                raise SessionExpiredError("the session was idle too long; log in again")
            if idle >= self.idle_timeout / 10:
                self._write_record(session_id, {**record, "seen": now}, now=now, expires_at=payload["exp"])
        return SessionClaims(
            session_id=session_id,
            principal_arn=principal_arn,
            issuer=payload["iss"],
            issued_at=payload["iat"],
            expires_at=payload["exp"],
            auth_time=payload["auth_time"],
            amr=tuple(payload["amr"]),
            extra=MappingProxyType(record["extra"]),
        )

    def revoke(self, session_id: str) -> None:
        """End one session (logout). Tokens of that session are refused from now on, in every process."""
        try:
            self._store.delete(self._record_key(session_id))
        except StateUnavailableError:
            raise ServiceUnavailableError("sessions cannot be revoked right now; try again shortly") from None

    def revoke_all(self, principal_arn: str, *, now: float) -> None:
        """End every session of ``principal_arn`` started at or before ``now`` ("log out everywhere")."""
        # Milliseconds, through an atomic maximum: a racing or clock-skewed call can never move the mark back.
        mark = math.ceil(now * 1000)
        try:
            # Kept as long as a session started before it can live; after that there is nothing left to refuse.
            self._store.advance(self._not_before_key(principal_arn), mark, float(self.ttl + _IAT_SKEW))
        except StateUnavailableError:
            raise ServiceUnavailableError("sessions cannot be revoked right now; try again shortly") from None

    def cookie_header(self, issued: IssuedSession) -> str:
        """The ``Set-Cookie`` header value that hands ``issued`` to a browser."""
        max_age = max(0, math.floor(issued.expires_at - issued.issued_at))
        return f"{self.cookie_name}={issued.token}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=Strict"

    def clear_cookie_header(self) -> str:
        """The ``Set-Cookie`` header value that removes the session cookie (logout)."""
        return f"{self.cookie_name}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict"

    def token_from_cookie(self, request: RequestView) -> str | None:
        """The session token carried by the request's cookie, or ``None`` (no cookie, or an emptied one).

        Two cookies of the same name (one planted by a sibling subdomain: "cookie tossing") are refused rather
        than picking one.
        """
        values = [value for value in _cookie_values(request, self.cookie_name) if value]
        if len(values) > 1:
            raise MalformedSessionTokenError("the session cookie was sent more than once; clear cookies and log in")
        return values[0] if values else None


def _parse_record(raw: bytes | None) -> dict[str, Any] | None:
    """The server-side record, or ``None`` if missing or unreadable (either way, the session is over)."""
    if raw is None:
        return None
    try:
        record = loads(raw)
    except JSONError:
        return None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("sub"), str)
        and all(isinstance(record.get(name), int | float) for name in ("iat", "seen"))
        and isinstance(record.get("extra"), dict)
    ):
        return None
    return record


def _issued_after(issued_at: float, not_before: bytes) -> bool:
    """True if a session started at ``issued_at`` (seconds) is after the revoke-all mark (milliseconds)."""
    try:
        mark = int(not_before)
    except ValueError:
        return False  # unreadable mark: treat every session as revoked
    return issued_at * 1000 > mark
