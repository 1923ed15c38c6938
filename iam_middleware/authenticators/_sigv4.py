"""AWS Signature Version 4 verification, server side: pure and synchronous (no I/O, no clock; ``now`` is passed in).

``SigV4Verifier.verify(request, now=...)`` accepts a request signed with an ``Authorization: AWS4-HMAC-SHA256 ...``
header or presigned with ``X-Amz-*`` query parameters, as botocore/boto3, the AWS SDKs and ``curl --aws-sigv4`` make
them, and returns a ``VerifiedSignature``; every failed check raises a precise ``SignatureError`` subclass.

Canonical request (what the signature binds), matched to what botocore really does:

- Path. Non-S3 (the default): dot segments and empty segments removed, then each segment URI-encoded again, so the
  already-encoded wire path is signed double-encoded (``%20`` is signed as ``%2520``). With ``s3_style_paths`` the
  raw path is signed exactly as received (botocore's S3 signers sign the encoded path unchanged).
- Query. Two forms are tried: the AWS form (each key and value decoded, re-encoded with the RFC 3986 unreserved set,
  sorted) and botocore's form for a query already in the URL (pairs sorted, *not* re-encoded: ``?list=x,y`` is
  signed as written). Both bind the pairs exactly as the server parses them; only their order is canonical.
- Headers. Values trimmed, inner whitespace runs collapsed, repeats joined with ``,``. ``SignedHeaders`` must be
  sorted, without duplicates, name only headers the request carries, include ``host`` and every ``x-amz-*`` header
  present. The timestamp is ``X-Amz-Date``, or the ``Date`` header (RFC 1123) botocore signs when one exists.

``verbatim_fallback`` (off by default): curl 7.88 ``--aws-sigv4`` signs the path and the query verbatim (unsorted,
not normalized, not encoded again). When enabled and the canonical forms do not match, the raw path and raw query
bytes exactly as received are tried too. This binds exactly the bytes the server parses, so it does not weaken
anything, with one guard: in non-S3 mode a raw path containing ``%25`` is never tried verbatim, because it could
equal the double-encoded canonical path of a *different* request (``/a%2520b`` verbatim is ``/a%20b`` canonical).

Decisions:

- Every credential failure is a ``SignatureError`` subclass (401, ``WWW-Authenticate: AWS4-HMAC-SHA256``) with an
  AWS-like ``code``, including a malformed ``Authorization`` header (``IncompleteSignature``): what is wrong is the
  credential, and one status for every credential failure keeps the shell's handling uniform. Only size limits are
  ``BadRequestError`` (413 body, 400 query), as they are about the request, not the credential. An unexpected
  exception inside ``verify`` ends as a ``SignatureError`` too, never a 500; errors raised by ``lookup`` that are
  already ``IAMError`` (e.g. ``ServiceUnavailableError`` when the directory is down) pass through.
- Unknown key id, inactive key and wrong signature raise the same ``SignatureDoesNotMatchError`` (same code, same
  message) after the same work: an HMAC against a per-process random dummy secret stands in for a missing one. The
  checks that follow (expired temporary credential, session token) run only once the signature matched, so they
  tell nothing to a caller who lacks the secret.
- ``UNSIGNED-PAYLOAD`` (header, or implied by an S3-style presigned URL) is accepted when ``allow_unsigned_payload``
  is set and the request came over HTTPS, or when the body is empty (nothing is left unbound). ``STREAMING-*``
  chunked signing is refused.
- Signing keys are cached per (key id, secret, date, region) for this verifier's service in a bounded LRU, so a warm
  verification costs one HMAC for the signature instead of five.
- Replay (docs/security.md S15): SigV4 has no nonce, and this verifier keeps no state. ``VerifiedSignature`` carries
  the signature and ``valid_until``, the last instant the same request verifies, for a shell-side replay cache.
- Path/route agreement (docs/security.md S16) is the gate's job: the non-S3 canonical path is normalized as AWS does,
  so a signature for ``/a/b`` also verifies ``/a/./b``; the gate rejects non-canonical raw paths before routing.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .._exceptions import BadRequestError, ConfigurationError, IAMError, SignatureError
from .._request import RequestView
from ._sigv4_canonical import (
    ALGORITHM,
    MAX_PRESIGN_EXPIRES,
    TERMINATOR,
    UNSIGNED_PAYLOAD,
    aws_query,
    canonical_headers,
    canonical_request,
    decode_query_component,
    derive_signing_key,
    normalized_path,
    parse_amz_date,
    raw_sorted_query,
    sign_string,
    split_query,
    string_to_sign,
)

__all__ = [
    "CredentialScopeError",
    "ExpiredTokenError",
    "HostNotAllowedError",
    "IncompleteSignatureError",
    "InvalidSecurityTokenError",
    "PayloadHashError",
    "PayloadHashMismatchError",
    "RequestTooLargeError",
    "SigV4Verifier",
    "SignatureDoesNotMatchError",
    "SignatureExpiredError",
    "SignatureNotYetCurrentError",
    "SigningCredential",
    "TooManyParametersError",
    "VerifiedSignature",
]

_MAX_AUTHORIZATION_LENGTH = 4096
_MAX_QUERY_PARAMETERS = 1000
_SIGNING_KEY_CACHE_SIZE = 1024
# Stands in for the secret of an unknown or inactive key; random per process so nobody can sign with it.
_DUMMY_SECRET = secrets.token_urlsafe(30)

_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_SIGNED_HEADERS = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+(?:;[a-z0-9!#$%&'*+.^_`|~-]+)*", re.ASCII)
_KEY_ID = re.compile(r"\w{1,128}", re.ASCII)
_SCOPE_DATE = re.compile(r"\d{8}", re.ASCII)
_EXPIRES = re.compile(r"\d{1,7}", re.ASCII)
_HTTP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d{2}):(\d{2}):(\d{2}) (?:GMT|[+-]0000)",
    re.ASCII,
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PORT = re.compile(r":\d+\Z", re.ASCII)

_SIGNATURE_PARAM = b"X-Amz-Signature"
_TOKEN_PARAM = "X-Amz-Security-Token"
_PRESIGN_MARKERS = frozenset({b"X-Amz-Algorithm", b"X-Amz-Credential", _SIGNATURE_PARAM})

#: True while a shell decides a request whose route accepts ``UNSIGNED-PAYLOAD`` although the body is not at hand
#: (the external authorizer's ``unsigned_payload`` rules, docs/gateways.md): as ``allow_unsigned_payload``, over
#: HTTPS only. A context variable, so it holds for that one request and follows it into a worker thread.
route_allows_unsigned_payload: ContextVar[bool] = ContextVar("route_allows_unsigned_payload", default=False)
_PRESIGN_PARAMS = frozenset(
    {b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Date", b"X-Amz-Expires", b"X-Amz-SignedHeaders"}
    | {_SIGNATURE_PARAM, _TOKEN_PARAM.encode()}
)
_REQUIRED_PRESIGN = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders")
_AUTH_COMPONENTS = ("Credential", "SignedHeaders", "Signature")
_AUTH_GRAMMAR = (
    f"'{ALGORITHM} Credential=<key id>/<date>/<region>/<service>/{TERMINATOR}, SignedHeaders=..., Signature=...'"
)


class IncompleteSignatureError(SignatureError):
    """The Authorization header or the presigned query parameters are missing a part or break the SigV4 grammar."""

    code = "IncompleteSignature"


class CredentialScopeError(SignatureError):
    """The credential scope names another date, region, service or terminator than this server accepts."""

    code = "InvalidCredentialScope"


class SignatureExpiredError(SignatureError):
    """The request was signed too long ago (header auth), or the presigned URL has expired."""

    code = "RequestExpired"


class SignatureNotYetCurrentError(SignatureError):
    """The request's timestamp is further in the future than the allowed clock skew."""

    code = "SignatureNotYetCurrent"


class PayloadHashError(SignatureError):
    """The payload hash mode is not accepted (streaming, unsigned where not allowed, malformed), or no body to hash."""

    code = "InvalidPayloadHash"


class PayloadHashMismatchError(PayloadHashError):
    """``x-amz-content-sha256`` does not match the SHA-256 of the body received."""

    code = "XAmzContentSHA256Mismatch"

    def __init__(self) -> None:
        super().__init__("The x-amz-content-sha256 header does not match the SHA-256 of the request body received.")


class HostNotAllowedError(SignatureError):
    """The signed Host is not one this server answers for."""

    code = "HostNotAllowed"


class SignatureDoesNotMatchError(SignatureError):
    """Unknown key id, inactive key or wrong signature: one error for all three, so none tells which it was."""

    code = "SignatureDoesNotMatch"

    def __init__(self, *, verbatim_hint: bool = False) -> None:
        # The hint depends on the request's shape only, never on the key: the answer still tells no key apart.
        hint = (" A client that signs the path and query as written (curl 7.88 --aws-sigv4 with several query "
                "parameters) needs the server setting sigv4_verbatim_fallback = true.") if verbatim_hint else ""
        super().__init__(
            "The request signature we calculated does not match the signature you provided. "
            "Check your access key id, secret access key and signing method." + hint
        )


class InvalidSecurityTokenError(SignatureError):
    """The session token is missing for a temporary key, does not match it, or comes with a long-term key."""

    code = "InvalidClientTokenId"


class ExpiredTokenError(SignatureError):
    """The temporary credential that signed the request has expired."""

    code = "ExpiredToken"

    def __init__(self) -> None:
        super().__init__("The security token included in the request is expired; request new temporary credentials.")


class RequestTooLargeError(BadRequestError):
    """The body is larger than the verifier will hash (``max_body_bytes``)."""

    status_code = 413
    code = "RequestEntityTooLarge"


class TooManyParametersError(BadRequestError):
    """The query has more parameters than the verifier will canonicalize."""

    code = "TooManyParameters"


@dataclass(frozen=True, slots=True, eq=False)
class SigningCredential:
    """An access key as the directory knows it. Temporary (``ASIA``) keys carry their session token.

    ``eq=False``: credentials are compared by identity, so nothing compares secrets with a short-circuiting ``==``.
    ``record`` is whatever the lookup read to build it (a temporary credential's stored record), handed back in
    ``VerifiedSignature.credential`` so the caller never reads shared state twice for one request.
    """

    access_key_id: str
    secret_access_key: str
    active: bool = True
    session_token: str | None = None
    expires_at: float | None = None
    record: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.access_key_id):
            raise ConfigurationError("access_key_id must be 1 to 128 letters, digits or underscores")
        if not self.secret_access_key:
            raise ConfigurationError(f"access key {self.access_key_id}: secret_access_key must not be empty")
        if self.access_key_id.startswith("ASIA") and not self.session_token:
            raise ConfigurationError(f"access key {self.access_key_id}: a temporary (ASIA) key needs its session_token")

    def __repr__(self) -> str:
        token = None if self.session_token is None else "********"
        return (
            f"SigningCredential(access_key_id={self.access_key_id!r}, secret_access_key='********', "
            f"active={self.active!r}, session_token={token!r}, expires_at={self.expires_at!r})"
        )


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a successful verification established: who signed, when, for which region, and which headers.

    SigV4 has no nonce: the same signed request verifies again until ``valid_until`` (``signed_at + max_skew``, or
    the presigned URL's expiry). A shell that refuses replays keeps ``(access_key_id, signature)`` until then.
    """

    access_key_id: str
    credential: SigningCredential
    signed_at: float
    region: str
    presigned: bool
    signed_headers: tuple[str, ...]
    signature: str
    valid_until: float

    def __repr__(self) -> str:
        # With its URL, a presigned request's signature is a bearer credential until it expires: never shown.
        return (
            f"VerifiedSignature(access_key_id={self.access_key_id!r}, credential={self.credential!r}, "
            f"signed_at={self.signed_at!r}, region={self.region!r}, presigned={self.presigned!r}, "
            f"signed_headers={self.signed_headers!r}, signature='********', valid_until={self.valid_until!r})"
        )


class _Claim(NamedTuple):
    """The parsed, grammar-checked parts of an Authorization header or of presigned query parameters."""

    key_id: str
    date: str
    region: str
    signed_headers: tuple[str, ...]
    signed_headers_text: str
    signature: str


class SigV4Verifier:
    """Verifies SigV4 header-signed and presigned requests for one service and a set of regions.

    ``lookup`` resolves an access key id to its ``SigningCredential`` (or ``None``); it is called once per request.
    """

    def __init__(
        self,
        *,
        service: str,
        regions: Collection[str],
        lookup: Callable[[str], SigningCredential | None],
        max_skew: float = 300,
        allow_unsigned_payload: bool = False,
        verbatim_fallback: bool = False,
        max_body_bytes: int = 10 * 1024 * 1024,
        allowed_hosts: Collection[str] | None = None,
        s3_style_paths: bool = False,
    ) -> None:
        if not service or "/" in service:
            raise ConfigurationError(f"service must be a non-empty name without '/' (got {service!r})")
        if isinstance(regions, str) or not regions or any(not region or "/" in region for region in regions):
            raise ConfigurationError(f"regions must be a non-empty collection of region names (got {regions!r})")
        if not math.isfinite(max_skew) or max_skew <= 0:
            raise ConfigurationError(f"max_skew must be a positive number of seconds (got {max_skew!r})")
        if max_body_bytes < 0:
            raise ConfigurationError(f"max_body_bytes must not be negative (got {max_body_bytes!r})")
        if isinstance(allowed_hosts, str) or (allowed_hosts is not None and not allowed_hosts):
            raise ConfigurationError(f"allowed_hosts must be None or a non-empty collection (got {allowed_hosts!r})")
        self.service = service
        self.regions = frozenset(regions)
        self.max_skew = float(max_skew)
        #: The shell stops buffering a body past this size; ``verify`` refuses to hash more.
        self.max_body_bytes = max_body_bytes
        self.allow_unsigned_payload = allow_unsigned_payload
        self.verbatim_fallback = verbatim_fallback
        self.allowed_hosts = None if allowed_hosts is None else frozenset(host.lower() for host in allowed_hosts)
        self.s3_style_paths = s3_style_paths
        self._lookup = lookup
        self._signing_key = functools.lru_cache(maxsize=_SIGNING_KEY_CACHE_SIZE)(self._derive_signing_key)

    def __repr__(self) -> str:
        return f"SigV4Verifier(service={self.service!r}, regions={sorted(self.regions)!r})"

    def for_service(self, service: str) -> SigV4Verifier:
        """The same verifier (keys, regions, limits, hosts) for another signing name: a signature scoped to one
        service never verifies for another."""
        return SigV4Verifier(
            service=service, regions=self.regions, lookup=self._lookup, max_skew=self.max_skew,
            allow_unsigned_payload=self.allow_unsigned_payload, verbatim_fallback=self.verbatim_fallback,
            max_body_bytes=self.max_body_bytes, allowed_hosts=self.allowed_hosts, s3_style_paths=self.s3_style_paths,
        )

    def recognizes(self, request: RequestView) -> bool:
        """Whether the request claims SigV4: an ``AWS4-*`` Authorization scheme, or presigned query parameters.

        Any ``AWS4-`` scheme counts (SigV4a included), so an unsupported variant is refused here, not passed on.
        """
        for value in request.header_values("authorization"):
            if value[:5].upper() == "AWS4-":
                return True
        query = request.query_string
        if b"X-" not in query and b"%" not in query:
            return False
        return any(key in _PRESIGN_MARKERS for key in _query(request)[1])

    def needs_body(self, request: RequestView) -> bool:
        """Whether ``verify`` will read ``request.body``; the shell buffers it (up to ``max_body_bytes``) only then."""
        if not self.recognizes(request):
            return False
        declared = request.header("x-amz-content-sha256")
        if declared is None:
            presigned = not request.header_values("authorization")
            if not (presigned and self.s3_style_paths):
                return True
            declared = UNSIGNED_PAYLOAD
        if declared == UNSIGNED_PAYLOAD:
            # An empty body is the other way UNSIGNED-PAYLOAD passes, and only the body can show it is empty.
            return not self._unsigned_payload_allowed(request)
        return not declared.startswith("STREAMING-")

    def verify(self, request: RequestView, *, now: float) -> VerifiedSignature:
        """Verify the request's SigV4 signature at time ``now`` (epoch seconds); raise a ``SignatureError`` if not."""
        try:
            return self._verify(request, now)
        except IAMError:
            raise
        except Exception:
            # Fail closed: the cause may quote request bytes (a session token), so it is not chained.
            raise SignatureError(
                "The request signature could not be verified.", code="SignatureVerificationFailed"
            ) from None

    def _verify(self, request: RequestView, now: float) -> VerifiedSignature:
        pairs, keys = _query(request)
        if len(pairs) > _MAX_QUERY_PARAMETERS:
            raise TooManyParametersError(f"The query has more than {_MAX_QUERY_PARAMETERS} parameters.")
        presigned = any(key in _PRESIGN_MARKERS for key in keys)
        authorizations = request.header_values("authorization")
        if authorizations and presigned:
            raise IncompleteSignatureError(
                "Sign with an Authorization header or with X-Amz-* query parameters, not both."
            )
        headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers.setdefault(name, []).append(value)

        if presigned:
            params = _presign_params(pairs, keys)
            claim = self._claim(params["X-Amz-Credential"], params["X-Amz-SignedHeaders"], params["X-Amz-Signature"])
            timestamp = params["X-Amz-Date"]
            parsed_at = parse_amz_date(timestamp)
            if parsed_at is None:
                raise IncompleteSignatureError("X-Amz-Date must be an ISO 8601 basic UTC time: YYYYMMDDTHHMMSSZ.")
            signed_at = parsed_at
            expires = _presign_expires(params["X-Amz-Expires"])
            token = params.get(_TOKEN_PARAM)
            if "x-amz-security-token" in headers:
                raise IncompleteSignatureError("A presigned request carries its security token in the query only.")
        elif authorizations:
            if len(authorizations) > 1:
                raise IncompleteSignatureError("The request carries more than one Authorization header.")
            claim = self._parse_authorization(authorizations[0])
            timestamp, signed_at, date_header = _header_timestamp(headers)
            if date_header not in claim.signed_headers:
                raise IncompleteSignatureError(f"The {date_header} header must be listed in SignedHeaders.")
            expires = None
            token = _single(headers, "x-amz-security-token")
            if _TOKEN_PARAM.encode() in keys:
                raise IncompleteSignatureError(
                    "A request signed with an Authorization header carries its security token in the "
                    "X-Amz-Security-Token header, not in the query."
                )
        else:
            raise IncompleteSignatureError(
                f"The request carries no AWS Signature Version 4 authentication ({ALGORITHM} Authorization header "
                "or X-Amz-* query parameters)."
            )

        if claim.date != timestamp[:8]:
            raise CredentialScopeError(
                "The date in the Credential scope does not match the YYYYMMDD date of the request timestamp."
            )
        _check_signed_headers(claim.signed_headers, headers)
        self._check_time(signed_at, expires, now)
        self._check_host(headers["host"][0])
        payload_hash = self._payload_hash(request, headers, presigned)

        found = self._lookup(claim.key_id)
        usable = found if found is not None and found.active and found.access_key_id == claim.key_id else None
        secret = _DUMMY_SECRET if usable is None else usable.secret_access_key
        signing_key = self._signing_key(claim.key_id, secret, claim.date, claim.region)
        scope = f"{claim.date}/{claim.region}/{self.service}/{TERMINATOR}"
        header_block = canonical_headers(claim.signed_headers, headers)
        credential: SigningCredential | None = None
        candidates = self._candidates(request, pairs, keys, presigned)
        for uri, query in candidates:
            creq = canonical_request(request.method, uri, query, header_block, claim.signed_headers_text, payload_hash)
            computed = sign_string(signing_key, string_to_sign(timestamp, scope, creq))
            if hmac.compare_digest(computed, claim.signature) and usable is not None:
                credential = usable
                break
        if credential is None:
            as_written = (request.raw_path, request.query_string)
            raise SignatureDoesNotMatchError(verbatim_hint=not self.verbatim_fallback and b"&" in request.query_string
                                             and as_written not in candidates)

        # Only a holder of the secret gets this far, so these precise answers reveal nothing to others.
        if credential.expires_at is not None and now >= credential.expires_at:
            raise ExpiredTokenError()
        _check_session_token(credential, token)
        return VerifiedSignature(
            access_key_id=claim.key_id,
            credential=credential,
            signed_at=signed_at,
            region=claim.region,
            presigned=presigned,
            signed_headers=claim.signed_headers,
            signature=claim.signature,
            valid_until=signed_at + (self.max_skew if expires is None else expires),
        )

    def _parse_authorization(self, value: str) -> _Claim:
        if len(value) > _MAX_AUTHORIZATION_LENGTH:
            raise IncompleteSignatureError(
                f"The Authorization header is longer than {_MAX_AUTHORIZATION_LENGTH} characters."
            )
        scheme, _, rest = value.partition(" ")
        _check_algorithm(scheme)
        fields: dict[str, str] = {}
        for component in rest.split(","):
            name, equals, field_value = component.strip().partition("=")
            if not equals or name not in _AUTH_COMPONENTS:
                raise IncompleteSignatureError(f"The Authorization header must read {_AUTH_GRAMMAR}.")
            if name in fields:
                raise IncompleteSignatureError(f"The Authorization header repeats its {name} component.")
            fields[name] = field_value
        missing = [name for name in _AUTH_COMPONENTS if name not in fields]
        if missing:
            raise IncompleteSignatureError(
                f"The Authorization header lacks its {', '.join(missing)} component; it must read {_AUTH_GRAMMAR}."
            )
        return self._claim(fields["Credential"], fields["SignedHeaders"], fields["Signature"])

    def _claim(self, credential: str, signed_headers: str, signature: str) -> _Claim:
        parts = credential.split("/")
        if len(parts) != 5:
            raise CredentialScopeError(
                f"The Credential must read <access key id>/<YYYYMMDD>/<region>/<service>/{TERMINATOR}."
            )
        key_id, date, region, service, terminator = parts
        if not _KEY_ID.fullmatch(key_id):
            raise IncompleteSignatureError("The access key id in the Credential is malformed.")
        if not _SCOPE_DATE.fullmatch(date):
            raise CredentialScopeError("The date in the Credential scope must read YYYYMMDD.")
        if region not in self.regions:
            raise CredentialScopeError(
                f"Credential should be scoped to a valid region: one of {', '.join(sorted(self.regions))}."
            )
        if service != self.service:
            raise CredentialScopeError(f"Credential should be scoped to the correct service: {self.service!r}.")
        if terminator != TERMINATOR:
            raise CredentialScopeError(f"Credential should be scoped with a valid terminator: {TERMINATOR!r}.")
        if not _HEX64.fullmatch(signature):
            raise IncompleteSignatureError("The Signature must be 64 lower-case hexadecimal characters.")
        if not _SIGNED_HEADERS.fullmatch(signed_headers):
            raise IncompleteSignatureError("SignedHeaders must be lower-case header names separated by ';'.")
        names = tuple(signed_headers.split(";"))
        if names != tuple(sorted(set(names))):
            raise IncompleteSignatureError("SignedHeaders must be sorted and must not repeat a name.")
        if "authorization" in names:
            raise IncompleteSignatureError("SignedHeaders must not name the Authorization header.")
        return _Claim(key_id, date, region, names, signed_headers, signature)

    def _check_time(self, signed_at: float, expires: int | None, now: float) -> None:
        if signed_at - now > self.max_skew:
            raise SignatureNotYetCurrentError(
                f"Signature not yet current: the request is dated {_iso(signed_at)}, more than "
                f"{self.max_skew:g} s after the server time {_iso(now)}. Check the client's clock."
            )
        if expires is not None:
            if now > signed_at + expires:
                raise SignatureExpiredError(
                    f"Request has expired: the presigned URL was valid until {_iso(signed_at + expires)}; "
                    f"the server time is {_iso(now)}."
                )
        elif now - signed_at > self.max_skew:
            raise SignatureExpiredError(
                f"Signature expired: the request is dated {_iso(signed_at)}, more than {self.max_skew:g} s "
                f"before the server time {_iso(now)}. Check the client's clock and sign each request when sent."
            )

    def _check_host(self, host: str) -> None:
        if self.allowed_hosts is None:
            return
        host = host.strip().lower()
        if host not in self.allowed_hosts and _PORT.sub("", host) not in self.allowed_hosts:
            raise HostNotAllowedError("The signed Host header names a host this server does not answer for.")

    def _payload_hash(self, request: RequestView, headers: dict[str, list[str]], presigned: bool) -> str:
        declared = _single(headers, "x-amz-content-sha256")
        if declared is None:
            if presigned and self.s3_style_paths:
                # S3 presigned URLs sign UNSIGNED-PAYLOAD (botocore's S3SigV4QueryAuth.payload).
                self._check_unsigned_payload(request)
                return UNSIGNED_PAYLOAD
            return hashlib.sha256(self._body(request)).hexdigest()
        if declared == UNSIGNED_PAYLOAD:
            self._check_unsigned_payload(request)
            return declared
        if declared.startswith("STREAMING-"):
            raise PayloadHashError(
                "Streaming (chunked) payload signing is not supported; sign the SHA-256 of the whole body."
            )
        if not _HEX64.fullmatch(declared):
            raise PayloadHashError(
                "x-amz-content-sha256 must be the lower-case hex SHA-256 of the body, or UNSIGNED-PAYLOAD."
            )
        if not hmac.compare_digest(hashlib.sha256(self._body(request)).hexdigest(), declared):
            raise PayloadHashMismatchError()
        return declared

    def _unsigned_payload_allowed(self, request: RequestView) -> bool:
        allowed = self.allow_unsigned_payload or route_allows_unsigned_payload.get()
        return allowed and request.scheme == "https"

    def _check_unsigned_payload(self, request: RequestView) -> None:
        if self._unsigned_payload_allowed(request) or self._body(request) == b"":
            return
        raise PayloadHashError(
            "UNSIGNED-PAYLOAD leaves the body unsigned and is not accepted for this request; "
            "sign the SHA-256 of the body."
        )

    def _body(self, request: RequestView) -> bytes:
        if request.body is None:
            raise PayloadHashError("The request body was not made available to verify the payload hash.")
        if len(request.body) > self.max_body_bytes:
            raise RequestTooLargeError(f"The request body is larger than {self.max_body_bytes} bytes.")
        return request.body

    def _candidates(
        self, request: RequestView, pairs: list[tuple[bytes, bytes]], keys: list[bytes], presigned: bool
    ) -> list[tuple[bytes, bytes]]:
        """The (canonical URI, canonical query) forms to try, most common first, without repeats."""
        raw_query = request.query_string
        if presigned:
            # The signature cannot sign itself: X-Amz-Signature is left out of every form.
            pieces = raw_query.split(b"&")
            raw_query = b"&".join(piece for piece, key in zip(pieces, keys, strict=True) if key != _SIGNATURE_PARAM)
            pairs = [pair for pair, key in zip(pairs, keys, strict=True) if key != _SIGNATURE_PARAM]
        uri = request.raw_path if self.s3_style_paths else normalized_path(request.raw_path)
        candidates = [(uri, aws_query(pairs))]
        botocore_form = (uri, raw_sorted_query(pairs))
        if botocore_form not in candidates:
            candidates.append(botocore_form)
        if self.verbatim_fallback and (self.s3_style_paths or b"%25" not in request.raw_path.lower()):
            verbatim = (request.raw_path, raw_query)
            if verbatim not in candidates:
                candidates.append(verbatim)
        return candidates

    def _derive_signing_key(self, key_id: str, secret: str, date: str, region: str) -> bytes:
        # key_id only keys the cache: an unknown id then costs one cold derivation, exactly like a known one.
        return derive_signing_key(secret, date, region, self.service)


def _check_algorithm(algorithm: str) -> None:
    if algorithm != ALGORITHM:
        raise IncompleteSignatureError(
            f"Unsupported signing algorithm: only {ALGORITHM} is accepted (SigV4a and other schemes are not)."
        )


def _single(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise IncompleteSignatureError(f"The request carries more than one {name} header.")
    return values[0]


def _query(request: RequestView) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """The request's raw query pairs and their decoded keys, split once per request (``recognizes``, ``needs_body``
    and ``verify`` all read them); kept with the view, and never changed by a reader."""
    memo = request.derived()
    found = memo.get("sigv4.query")
    if found is None:
        pairs = split_query(request.query_string)
        found = memo["sigv4.query"] = (pairs, [decode_query_component(key) for key, _ in pairs])
    return found  # type: ignore[return-value]


def _presign_params(pairs: list[tuple[bytes, bytes]], keys: list[bytes]) -> dict[str, str]:
    params: dict[str, str] = {}
    for (_, raw_value), key in zip(pairs, keys, strict=True):
        if key in _PRESIGN_PARAMS:
            name = key.decode("ascii")
            if name in params:
                raise IncompleteSignatureError(f"The query repeats the {name} parameter.")
            params[name] = decode_query_component(raw_value).decode("utf-8", "replace")
    missing = [name for name in (*_REQUIRED_PRESIGN, "X-Amz-Signature") if name not in params]
    if missing:
        raise IncompleteSignatureError(f"Query-string authentication lacks the {', '.join(missing)} parameter(s).")
    _check_algorithm(params["X-Amz-Algorithm"])
    return params


def _presign_expires(value: str) -> int:
    expires = int(value) if _EXPIRES.fullmatch(value) else 0
    if not 1 <= expires <= MAX_PRESIGN_EXPIRES:
        raise IncompleteSignatureError(
            f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_PRESIGN_EXPIRES} (seven days)."
        )
    return expires


def _header_timestamp(headers: dict[str, list[str]]) -> tuple[str, float, str]:
    """The timestamp to sign, its epoch seconds, and the header it came from (X-Amz-Date, else Date)."""
    amz_date = _single(headers, "x-amz-date")
    if amz_date is not None:
        signed_at = parse_amz_date(amz_date)
        if signed_at is None:
            raise IncompleteSignatureError("X-Amz-Date must be an ISO 8601 basic UTC time: YYYYMMDDTHHMMSSZ.")
        return amz_date, signed_at, "x-amz-date"
    http_date = _single(headers, "date")
    if http_date is None:
        raise IncompleteSignatureError("A header-signed request needs an X-Amz-Date or a Date header.")
    match = _HTTP_DATE.fullmatch(http_date)
    if match is None:
        raise IncompleteSignatureError(
            "The Date header must be an RFC 1123 date in GMT, e.g. 'Sun, 30 Aug 2015 12:36:00 GMT'."
        )
    day, month, year, hour, minute, second = match.groups()
    timestamp = f"{year}{_MONTHS.index(month) + 1:02d}{day}T{hour}{minute}{second}Z"
    signed_at = parse_amz_date(timestamp)
    if signed_at is None:
        raise IncompleteSignatureError("The Date header names a day or time that does not exist.")
    return timestamp, signed_at, "date"


def _check_signed_headers(names: tuple[str, ...], headers: dict[str, list[str]]) -> None:
    if "host" not in names:
        raise IncompleteSignatureError("SignedHeaders must include 'host'.")
    for name in names:
        if name not in headers:
            raise IncompleteSignatureError(f"SignedHeaders names {name!r}, which the request does not carry.")
    if len(headers["host"]) != 1:
        raise IncompleteSignatureError("The request must carry exactly one Host header.")
    signed = set(names)
    for name in headers:
        if name.startswith("x-amz-") and name not in signed:
            raise IncompleteSignatureError(f"The {name!r} header is present and must be listed in SignedHeaders.")


def _check_session_token(credential: SigningCredential, token: str | None) -> None:
    if credential.session_token is None:
        if token is not None:
            raise InvalidSecurityTokenError(
                "A security token was sent with a long-term access key; send X-Amz-Security-Token only with "
                "temporary credentials."
            )
        return
    if token is None:
        raise InvalidSecurityTokenError(
            "This temporary access key needs its session token in X-Amz-Security-Token (signed header, or query "
            "parameter of a presigned URL)."
        )
    if not hmac.compare_digest(token.encode("utf-8"), credential.session_token.encode("utf-8")):
        raise InvalidSecurityTokenError("The security token included in the request is invalid.")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
