"""Bearer JWT verification (RFC 7519, RFC 8725): pure, synchronous, and with the clock passed in.

The token is parsed here first, strictly (duplicate JSON members, non-numeric dates and unknown critical
headers are refused), the issuer is chosen by the ``iss`` claim, the key by ``kid`` among that issuer's
configured keys only, and pyjwt's JWS layer then checks the signature over the bytes as received.
Claims are checked against the injected ``now``; pyjwt never sees the clock.

Errors (all ``InvalidTokenError``, 401, with ``WWW-Authenticate: Bearer error="invalid_token"``):

    InvalidTokenError
    └── JWTValidationError             token could not be verified (any unexpected failure)
        ├── MalformedTokenError        malformed token: <what>
        ├── AlgorithmNotAllowedError   algorithm not allowed
        ├── UntrustedIssuerError       issuer not trusted
        ├── TokenTypeNotAllowedError   token type not allowed
        ├── MissingClaimError          missing required claim '<name>'
        ├── UnknownSigningKeyError     signing key not found
        ├── TokenSignatureError        signature does not verify
        ├── TokenExpiredError          token expired
        ├── TokenNotYetValidError      token not yet valid / token issued in the future
        ├── TokenLifetimeError         token lifetime exceeds the allowed maximum
        └── AudienceNotAllowedError    audience not allowed

Messages are fixed strings or name configured claims; they never echo the token, a claim value or a key.
"""

from __future__ import annotations

import binascii
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from hashlib import sha256
from types import MappingProxyType
from typing import Any

from .._exceptions import ConfigurationError, InvalidTokenError
from .._json import JSONError, parser
from ._jwks import _MAX_KID_LENGTH, VERIFIERS, FetchDeferred, JWKSSource, JWTKey

__all__ = [
    "AlgorithmNotAllowedError",
    "AudienceNotAllowedError",
    "JWTValidationError",
    "JWTVerifier",
    "MalformedTokenError",
    "MissingClaimError",
    "TokenExpiredError",
    "TokenLifetimeError",
    "TokenNotYetValidError",
    "TokenSignatureError",
    "TokenTypeNotAllowedError",
    "TrustedIssuer",
    "UnknownSigningKeyError",
    "UntrustedIssuerError",
    "VerifiedToken",
]

_MAX_LEEWAY = 300.0  # RFC 7519 §4.1.4: "usually no more than a few minutes"


class JWTValidationError(InvalidTokenError):
    """A bearer JWT was rejected; the message is safe to return to the client (RFC 6750 §3)."""

    code = "InvalidToken"
    description = "token could not be verified"

    def __init__(self, description: str | None = None) -> None:
        if description is not None:
            self.description = description
        # error_description must stay within RFC 6750's charset: no '"' or '\' (our messages never have them).
        super().__init__(
            self.description,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{self.description}"'},
        )


class MalformedTokenError(JWTValidationError):
    """The token is not a well-formed signed JWT (size, segments, base64url, JSON, header or claim types)."""

    code = "MalformedToken"

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed token: {reason}")


class AlgorithmNotAllowedError(JWTValidationError):
    """The header's ``alg`` is ``none`` or not allowed for the key that would verify it."""

    code = "AlgorithmNotAllowed"
    description = "algorithm not allowed"


class UntrustedIssuerError(JWTValidationError):
    """The ``iss`` claim is not exactly one of the configured issuers."""

    code = "UntrustedIssuer"
    description = "issuer not trusted"


class TokenTypeNotAllowedError(JWTValidationError):
    """The header's ``typ`` is missing or not one the issuer accepts (RFC 8725 §3.11)."""

    code = "TokenTypeNotAllowed"
    description = "token type not allowed"


class MissingClaimError(JWTValidationError):
    """A claim the issuer requires is absent."""

    code = "MissingClaim"

    def __init__(self, claim: str) -> None:
        self.claim = claim
        super().__init__(f"missing required claim '{claim}'")


class UnknownSigningKeyError(JWTValidationError):
    """The header's ``kid`` names none of the issuer's keys (after a rate-limited JWKS refresh)."""

    code = "UnknownSigningKey"
    description = "signing key not found"


class TokenSignatureError(JWTValidationError):
    """The signature does not verify with any candidate key."""

    code = "InvalidTokenSignature"
    description = "signature does not verify"


class TokenExpiredError(JWTValidationError):
    """``now`` is at or past ``exp`` plus the leeway."""

    code = "ExpiredToken"
    description = "token expired"


class TokenNotYetValidError(JWTValidationError):
    """``nbf`` or ``iat`` lies further in the future than the leeway allows."""

    code = "TokenNotYetValid"
    description = "token not yet valid"


class TokenLifetimeError(JWTValidationError):
    """``exp - iat`` exceeds the issuer's ``max_lifetime``."""

    code = "TokenLifetimeTooLong"
    description = "token lifetime exceeds the allowed maximum"


class AudienceNotAllowedError(JWTValidationError):
    """``aud`` shares no value with the configured audiences, or is present when none are configured."""

    code = "InvalidAudience"
    description = "audience not allowed"


def _normalize_typ(typ: str) -> str:
    # RFC 7515 §4.1.9: media types compare case-insensitively and "application/" may be omitted.
    typ = typ.lower()
    return typ[len("application/") :] if typ.startswith("application/") else typ


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One issuer whose tokens are accepted, with its audiences, keys and claim rules.

    ``issuer`` is matched exactly against ``iss``. A token must carry an ``aud`` shared with ``audiences``;
    with no audiences configured it must carry no ``aud`` at all. ``exp`` is always required;
    ``required_claims`` adds more. ``max_lifetime`` (seconds) bounds ``exp - iat`` and makes ``iat``
    required. ``token_types`` lists accepted ``typ`` header values (e.g. ``("at+jwt",)``, RFC 9068);
    ``None`` accepts any. ``leeway`` (seconds, at most 300) absorbs clock skew.
    """

    issuer: str
    audiences: tuple[str, ...]
    _: KW_ONLY
    keys: tuple[JWTKey, ...] = ()
    jwks: JWKSSource | None = None
    leeway: float = 60.0
    required_claims: tuple[str, ...] = ("exp",)
    max_lifetime: float | None = None
    token_types: tuple[str, ...] | None = None
    _audience_set: frozenset[str] = field(init=False, repr=False, compare=False)
    _typ_set: frozenset[str] | None = field(init=False, repr=False, compare=False)
    _required: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _keys_by_kid: dict[str, tuple[JWTKey, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"TrustedIssuer({self.issuer!r})"
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ConfigurationError("TrustedIssuer: issuer must be a non-empty string")
        for name in ("audiences", "keys", "required_claims", "token_types"):
            if isinstance(getattr(self, name), str):
                raise ConfigurationError(f"{where}: {name} must be a tuple, not a string")
        audiences = tuple(self.audiences)
        if not all(isinstance(aud, str) and aud for aud in audiences):
            raise ConfigurationError(f"{where}: audiences must be non-empty strings")
        keys = tuple(self.keys)
        if not all(isinstance(key, JWTKey) for key in keys):
            raise ConfigurationError(f"{where}: keys must be JWTKey instances")
        if not keys and self.jwks is None:
            raise ConfigurationError(f"{where}: configure keys, a jwks source, or both")
        if not (0 <= self.leeway <= _MAX_LEEWAY):
            raise ConfigurationError(f"{where}: leeway must be between 0 and {_MAX_LEEWAY:g} seconds")
        if self.max_lifetime is not None and not self.max_lifetime > 0:
            raise ConfigurationError(f"{where}: max_lifetime must be positive seconds or None")
        required = tuple(dict.fromkeys(("exp", *self.required_claims)))
        if self.max_lifetime is not None and "iat" not in required:
            required += ("iat",)
        if not all(isinstance(claim, str) and claim for claim in required):
            raise ConfigurationError(f"{where}: required_claims must be claim names")
        typ_set = None
        if self.token_types is not None:
            if not self.token_types or not all(isinstance(typ, str) and typ for typ in self.token_types):
                raise ConfigurationError(f"{where}: token_types must be None or non-empty strings")
            typ_set = frozenset(_normalize_typ(typ) for typ in self.token_types)
            object.__setattr__(self, "token_types", tuple(self.token_types))
        object.__setattr__(self, "audiences", audiences)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "required_claims", tuple(self.required_claims))
        object.__setattr__(self, "_audience_set", frozenset(audiences))
        object.__setattr__(self, "_typ_set", typ_set)
        object.__setattr__(self, "_required", required)
        by_kid: dict[str, tuple[JWTKey, ...]] = {}
        for key in keys:
            if key.kid is not None:
                by_kid[key.kid] = (*by_kid.get(key.kid, ()), key)
        object.__setattr__(self, "_keys_by_kid", by_kid)


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature and claims verified. ``claims`` and ``header`` are read-only all the way
    down: JSON objects are mappings and arrays are tuples, so a cached token cannot be altered by a caller.
    """

    claims: Mapping[str, Any]
    header: Mapping[str, Any]
    issuer: str
    subject: str | None
    expires_at: float
    issued_at: float | None
    token_id: str | None


def _freeze_array(items: list[Any]) -> tuple[Any, ...]:
    return tuple(_freeze_array(item) if type(item) is list else item for item in items)


def _frozen_object(members: dict[str, Any]) -> MappingProxyType[str, Any]:
    for name, value in members.items():
        if type(value) is list:
            members[name] = _freeze_array(value)  # replacing a value, not adding a name: safe while iterating
    return MappingProxyType(members)


_parse = parser(_frozen_object)  # objects read-only, arrays tuples: what VerifiedToken promises
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Header parameters that would let the token choose or carry its own key, or need semantics we do not implement.
_REFUSED_HEADERS = ("crit", "jku", "x5u", "jwk", "x5c", "b64")
_MISSING = object()
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_B64_VALUE = {char: value for value, char in
              enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def _decode_base64url(segment: str) -> bytes | None:
    """base64url without padding, canonical only (RFC 7515 §2: the unused bits of the last character are zero, so
    one token has one spelling), or None. ``segment`` already matched ``_SHAPE`` (alphabet only)."""
    tail = len(segment) % 4
    if tail == 1 or (tail and _B64_VALUE[segment[-1]] & (0x0F if tail == 2 else 0x03)):
        return None
    # a2b_base64 ignores padding beyond what it needs, so "==" completes any valid length.
    return binascii.a2b_base64(segment.encode("ascii").translate(_URLSAFE_TO_STANDARD) + b"==")


# Headers decoded before, by segment: every token of one issuer and key carries the same header, so it is parsed once.
# Values are read-only mappings; only headers that decoded are kept, and the bound keeps junk from filling it.
_HEADERS: dict[str, MappingProxyType[str, Any]] = {}
_MAX_HEADERS = 1024
_MAX_HEADER_CHARS = 1024


def decode_header(segment: str) -> MappingProxyType[str, Any]:
    """A token's header segment as a read-only mapping (``_decode_segment``), remembered for the next token."""
    found = _HEADERS.get(segment)
    if found is None:
        found = _decode_segment(segment, "header")
        if len(segment) <= _MAX_HEADER_CHARS:
            if len(_HEADERS) >= _MAX_HEADERS:
                _HEADERS.clear()  # rare: only a flood of distinct, well-formed headers gets here
            _HEADERS[segment] = found
    return found


# The last payload decoded, by its exact segment: a session token's payload is read once to pick its verifier and
# once to verify it, within one request. A pure function of the segment's text, and the value is read-only: sharing
# it cannot change any answer. One (segment, value) pair, replaced whole (atomic under threads).
_LAST_PAYLOAD: list[tuple[str, MappingProxyType[str, Any]]] = [("", MappingProxyType({}))]


def decode_payload(segment: str) -> MappingProxyType[str, Any]:
    """A token's payload segment as a read-only mapping (``_decode_segment``); the last one is remembered."""
    last = _LAST_PAYLOAD[0]
    if last[0] == segment and segment:
        return last[1]
    found = _decode_segment(segment, "payload")
    _LAST_PAYLOAD[0] = (segment, found)
    return found


def _decode_segment(segment: str, name: str) -> MappingProxyType[str, Any]:
    """canonical base64url -> UTF-8 -> one strict JSON object."""
    raw = _decode_base64url(segment)
    if raw is None:
        raise MalformedTokenError("segments must be canonical base64url")
    try:
        # Strict (RFC 7515 §4, 7519 §4 allow rejecting duplicate names; rejecting avoids parser differentials).
        value = _parse(raw)
    except JSONError as exc:
        # Named by kind only: the message goes back to the client and never echoes the token's content.
        reason = f"duplicate member name in {name}" if exc.member is not None else f"{name} is not UTF-8 JSON"
        raise MalformedTokenError(reason) from None
    if type(value) is not MappingProxyType:
        raise MalformedTokenError(f"{name} is not a JSON object")
    return value


def _numeric_date(value: Any, name: str) -> float:
    # RFC 7519 §2 NumericDate is a JSON number; pyjwt would coerce "123" with int() and treat true as 1.
    kind = type(value)
    if kind is not int and kind is not float:
        raise MalformedTokenError(f"'{name}' must be a JSON number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise MalformedTokenError(f"'{name}' is out of range")
    return number


def _claim_string(value: Any, name: str) -> str:
    if type(value) is not str:
        raise MalformedTokenError(f"'{name}' must be a string")
    return value  # Unicode text: the parser refused unpaired surrogates


def _check_validity_window(
    issuer: TrustedIssuer, now: float, exp: float, nbf: float | None, iat: float | None
) -> float:
    """The one place token times meet the clock. Returns the earliest ``now`` at which the token is valid."""
    leeway = issuer.leeway
    # Each test is written as "not (condition to accept)" so that a NaN anywhere rejects.
    if not now < exp + leeway:
        raise TokenExpiredError
    if nbf is not None and not nbf <= now + leeway:
        raise TokenNotYetValidError
    if iat is not None and not iat <= now + leeway:
        raise TokenNotYetValidError("token issued in the future")
    if issuer.max_lifetime is not None and iat is not None and not exp - iat <= issuer.max_lifetime:
        raise TokenLifetimeError
    return max(-math.inf if nbf is None else nbf, -math.inf if iat is None else iat) - leeway


def _check_audience(issuer: TrustedIssuer, claims: Mapping[str, Any]) -> None:
    aud = claims.get("aud", _MISSING)
    if aud is _MISSING:
        if issuer.audiences:
            raise MissingClaimError("aud")
        return
    if type(aud) is str:
        values: tuple[Any, ...] = (aud,)
    elif type(aud) is tuple and all(type(value) is str for value in aud):
        values = aud
    else:
        raise MalformedTokenError("'aud' must be a string or an array of strings")
    if not any(value in issuer._audience_set for value in values):
        raise AudienceNotAllowedError


class JWTVerifier:
    """Verifies bearer JWTs from a fixed set of trusted issuers; successful results are cached per token.

    ``verify`` raises a ``JWTValidationError`` subclass for every rejection, including unexpected internal
    failures (fail closed). The cache (``cache_size`` entries, 0 disables it) is keyed by the token's SHA-256,
    serves an entry only while ``now`` is inside the token's validity window and never at or after ``exp``,
    and is dropped by :meth:`invalidate` (and when a JWKS refresh removes a key). With a file or URL
    ``JWKSSource``, an uncached verify may block on a (rate-limited, size-capped, timed-out) reload.
    """

    def __init__(
        self, issuers: Sequence[TrustedIssuer], *, max_token_bytes: int = 8192, cache_size: int = 10_000
    ) -> None:
        if not issuers:
            raise ConfigurationError("JWTVerifier: configure at least one TrustedIssuer")
        by_name: dict[str, TrustedIssuer] = {}
        for issuer in issuers:
            if not isinstance(issuer, TrustedIssuer):
                raise ConfigurationError("JWTVerifier: issuers must be TrustedIssuer instances")
            if issuer.issuer in by_name:
                raise ConfigurationError(f"JWTVerifier: issuer {issuer.issuer!r} is configured twice")
            by_name[issuer.issuer] = issuer
        if not 256 <= max_token_bytes <= 1024 * 1024:
            raise ConfigurationError("JWTVerifier: max_token_bytes must be between 256 and 1048576")
        if cache_size < 0:
            raise ConfigurationError("JWTVerifier: cache_size must be >= 0")
        self._issuers = by_name
        self._max_token_bytes = max_token_bytes
        self._cache_size = cache_size
        self._cache: dict[bytes, tuple[float, float, VerifiedToken]] = {}
        self._evict_lock = threading.Lock()
        for issuer in by_name.values():
            if issuer.jwks is not None:
                issuer.jwks.subscribe(self.invalidate)

    def __repr__(self) -> str:
        return f"JWTVerifier(issuers={list(self._issuers)!r}, cached={len(self._cache)})"

    def invalidate(self) -> None:
        """Forget every cached verification (after a key rotation or a revocation bump)."""
        self._cache.clear()

    def verify(self, token: str, *, now: float) -> VerifiedToken:
        """Verify ``token`` at time ``now`` (epoch seconds) and return its claims, or raise JWTValidationError."""
        try:
            if len(token) > self._max_token_bytes:
                raise MalformedTokenError("token too large")
            # Keyed by a digest so that the cache never holds usable bearer tokens (docs/security.md section 6).
            digest = sha256(token.encode()).digest()
            hit = self._cache.get(digest)
            if hit is not None and hit[0] <= now < hit[1]:
                return hit[2]
            verified, valid_from = self._verify_uncached(token, now)
        except (InvalidTokenError, FetchDeferred):
            raise
        except Exception:
            raise JWTValidationError from None
        if self._cache_size and now < verified.expires_at:
            self._remember(digest, (valid_from, verified.expires_at, verified))
        return verified

    def _remember(self, digest: bytes, entry: tuple[float, float, VerifiedToken]) -> None:
        cache = self._cache
        if len(cache) >= self._cache_size:
            with self._evict_lock:
                try:
                    del cache[next(iter(cache))]  # oldest first: dicts keep insertion order
                except (KeyError, RuntimeError, StopIteration):
                    pass  # another thread changed the cache meanwhile; the size bound is approximate
        cache[digest] = entry

    def _verify_uncached(self, token: str, now: float) -> tuple[VerifiedToken, float]:
        if not _SHAPE.fullmatch(token):
            segments = token.count(".") + 1
            if segments != 3:
                raise MalformedTokenError(f"expected 3 dot-separated segments, got {segments}")
            raise MalformedTokenError("segments must be unpadded base64url")
        header_segment, payload_segment, _ = token.split(".")
        header = decode_header(header_segment)
        claims = decode_payload(payload_segment)

        alg = header.get("alg")
        if type(alg) is not str:
            raise MalformedTokenError("header 'alg' must be a string")
        if alg.lower() == "none":
            raise AlgorithmNotAllowedError
        if not header.keys().isdisjoint(_REFUSED_HEADERS):
            name = next(name for name in _REFUSED_HEADERS if name in header)
            raise MalformedTokenError(f"header parameter '{name}' is not accepted")
        kid = header.get("kid", _MISSING)
        if kid is _MISSING:
            kid = None
        elif type(kid) is not str or len(kid) > _MAX_KID_LENGTH:
            raise MalformedTokenError(f"header 'kid' must be a string of at most {_MAX_KID_LENGTH} characters")

        iss = claims.get("iss", _MISSING)
        if iss is _MISSING:
            raise MissingClaimError("iss")
        if type(iss) is not str:
            raise MalformedTokenError("'iss' must be a string")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise UntrustedIssuerError
        if issuer._typ_set is not None:
            typ = header.get("typ")
            if type(typ) is not str or _normalize_typ(typ) not in issuer._typ_set:
                raise TokenTypeNotAllowedError
        for claim in issuer._required:
            if claim not in claims:
                raise MissingClaimError(claim)
        get = claims.get
        exp = _numeric_date(get("exp"), "exp")  # present: "exp" is always in issuer._required
        nbf = None if (raw := get("nbf", _MISSING)) is _MISSING else _numeric_date(raw, "nbf")
        iat = None if (raw := get("iat", _MISSING)) is _MISSING else _numeric_date(raw, "iat")
        subject = None if (raw := get("sub", _MISSING)) is _MISSING else _claim_string(raw, "sub")
        token_id = None if (raw := get("jti", _MISSING)) is _MISSING else _claim_string(raw, "jti")

        _check_signature(token, alg, self._candidate_keys(issuer, kid, alg, now))
        valid_from = _check_validity_window(issuer, now, exp, nbf, iat)
        _check_audience(issuer, claims)
        verified = VerifiedToken(
            claims=claims,
            header=header,
            issuer=iss,
            subject=subject,
            expires_at=exp,
            issued_at=iat,
            token_id=token_id,
        )
        return verified, valid_from

    @staticmethod
    def _candidate_keys(issuer: TrustedIssuer, kid: str | None, alg: str, now: float) -> list[JWTKey]:
        """The keys that may verify this token: ``kid`` only selects among configured keys, and each key
        verifies only the algorithms it was bound to, whatever the header claims.
        """
        jwks = issuer.jwks
        if jwks is None:
            keys = issuer.keys if kid is None else issuer._keys_by_kid.get(kid, ())
        elif kid is None:
            keys = issuer.keys + jwks.keys(now=now)
        else:
            keys = issuer._keys_by_kid.get(kid, ()) + tuple(key for key in jwks.keys(now=now) if key.kid == kid)
            if not keys and jwks.refresh(now=now):
                keys = tuple(key for key in jwks.keys(now=now) if key.kid == kid)
        if kid is not None and not keys:
            raise UnknownSigningKeyError
        usable = [key for key in keys if alg in key._allowed]
        if not usable:
            raise AlgorithmNotAllowedError
        return usable


def _check_signature(token: str, alg: str, keys: list[JWTKey]) -> None:
    """The signature over the first two segments exactly as received, by one of ``keys`` (each bound to ``alg``
    already: ``_candidate_keys``). pyjwt's algorithm objects verify; its JWS layer is not used, since it would parse
    and check every segment again (a third of a whole verification)."""
    signing_input, _, encoded = token.rpartition(".")
    signature = _decode_base64url(encoded)
    if signature is None:
        raise MalformedTokenError("segments must be canonical base64url")
    message = signing_input.encode("ascii")  # the token matched _SHAPE: ASCII only
    verify = VERIFIERS[alg].verify
    for key in keys:
        if verify(message, key._verify_key, signature):
            return
    raise TokenSignatureError
