"""Helpers for the test suites of applications protected by iam-middleware.

Credentials for a given caller, built with the project's own code (no password or one-time code needed):
``sign_request`` (SigV4 with a user's access key or temporary credentials), ``session_token`` (a bearer or cookie
session), ``web_identity_token`` (a JWT of a configured outside provider). Policy assertions without HTTP:
``assert_allowed`` / ``assert_denied``. Route assertions over HTTP, in process: ``AsyncRouteClient`` for ASGI apps
(Starlette, FastAPI; through ``httpx.ASGITransport``) and ``RouteClient`` for WSGI apps (Flask; through
``httpx.WSGITransport``)::

    async with AsyncRouteClient(app, iam) as client:
        await client.assert_allowed("GET", "/orders/1", user="alice", via="sigv4")
        await client.assert_denied("DELETE", "/orders/1", user="alice")

Times default to ``iam.clock()``, so an IAM built with a fixed clock gives reproducible credentials.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt as pyjwt

from ._iam import IAM
from ._principal import CredentialKind, Principal
from ._temporary import TemporaryCredential
from .authenticators._login import USER_ID
from .authenticators._sigv4 import SigningCredential
from .authenticators._sigv4_signer import SignedRequest
from .authenticators._sigv4_signer import sign_request as _sign
from .directory._model import User
from .policy import Decision

__all__ = [
    "AsyncRouteClient",
    "RouteClient",
    "assert_allowed",
    "assert_denied",
    "principal_for",
    "session_token",
    "sign_request",
    "web_identity_token",
]

Via = Literal["session", "cookie", "sigv4"]


def _now(iam: IAM, now: float | None) -> float:
    return iam.clock() if now is None else now


def _user(iam: IAM, name: str) -> User:
    user = iam.snapshot.user(name)
    if user is None:
        raise LookupError(f"no single user named {name!r} in the directory (use 'account/name' among accounts)")
    return user


def _signing_credential(iam: IAM, user: str) -> SigningCredential:
    """The first active access key of ``user`` (``name`` or ``account/name``), as the signer takes it."""
    found = _user(iam, user)
    for key in found.access_keys:
        if key.active:
            return SigningCredential(key.id, key.secret)
    raise LookupError(f"user {user!r} has no active access key")


def sign_request(
    iam: IAM,
    method: str,
    url: str,
    *,
    user: str | None = None,
    credential: SigningCredential | TemporaryCredential | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    now: float | None = None,
    presign_expires: int | None = None,
) -> SignedRequest:
    """Sign a request as ``iam``'s SigV4 verifier expects it (its service, its first region): with ``user``'s
    first active access key, or with ``credential`` (an access key, or temporary credentials from the token
    service). ``url`` is absolute (``http://testserver/orders/1``); ``presign_expires`` gives a presigned URL."""
    if (user is None) == (credential is None):
        raise ValueError("give exactly one of user= or credential=")
    if isinstance(credential, TemporaryCredential):
        signing = SigningCredential(credential.access_key_id, credential.secret_access_key,
                                    session_token=credential.session_token)
    elif credential is not None:
        signing = credential
    else:
        signing = _signing_credential(iam, str(user))
    settings = iam.settings
    return _sign(method, url, headers or {}, body, credential=signing, region=settings.regions[0],
                 service=settings.service, now=_now(iam, now), presign_expires=presign_expires,
                 s3_style_paths=settings.s3_style_paths)


def session_token(iam: IAM, user: str, *, now: float | None = None, mfa_age: float = 0.0) -> str:
    """A session token for ``user`` as a password + one-time-code login issues it, its second factor checked
    ``mfa_age`` seconds before ``now`` (for ``aws:MultiFactorAuthAge`` conditions). Send it as
    ``Authorization: Bearer <token>`` or in the session cookie."""
    found = _user(iam, user)
    at = _now(iam, now)
    if not 0 <= mfa_age <= at:
        raise ValueError("mfa_age must be between 0 and now")
    return iam.credentials.sessions.issue(found.arn, now=at, mfa_time=at - mfa_age, extra={USER_ID: found.id}).token


def web_identity_token(
    iam: IAM,
    *,
    provider: str | None = None,
    subject: str = "tester",
    claims: Mapping[str, Any] | None = None,
    key: Any = None,
    algorithm: str | None = None,
    now: float | None = None,
    ttl: int = 3600,
    kid: str | None = None,
) -> str:
    """A JWT of an outside identity provider configured in ``iam`` (by ``name``; the only one by default), which
    maps to the provider's role when its trust policy allows the claims. Signed with the provider's HMAC key, or
    with ``key`` (a private key) for a provider that only holds public keys. ``claims`` add to or replace
    ``iss``, ``sub``, ``aud`` (the first audience), ``iat`` and ``exp``."""
    providers = [p for p in iam.settings.web_identity if provider is None or p.name == provider]
    if len(providers) != 1:
        names = [p.name for p in iam.settings.web_identity]
        raise LookupError(f"name one provider among {names}" if names else "no web identity provider is configured")
    trusted = providers[0].issuer
    configured = trusted.keys[0] if trusted.keys else None
    signing_key: Any = key
    if key is None:
        # Only a shared HMAC secret can sign; a provider configured with public keys needs the private key given.
        if configured is None or not configured.algorithms[0].startswith("HS"):
            raise ValueError(f"provider {providers[0].name!r} has no HMAC key to sign with: pass key=")
        signing_key = configured.key
    alg = algorithm or (configured.algorithms[0] if configured is not None else "RS256")
    at = int(_now(iam, now))
    payload: dict[str, Any] = {"iss": trusted.issuer, "sub": subject, "iat": at, "exp": at + ttl}
    if trusted.audiences:
        payload["aud"] = trusted.audiences[0]
    payload.update(claims or {})
    header: dict[str, Any] = {}
    if configured is not None and configured.kid is not None and key is None:
        header["kid"] = configured.kid
    if kid is not None:  # the key id of ``key`` in the provider's key set
        header["kid"] = kid
    if trusted.token_types:
        header["typ"] = trusted.token_types[0]
    return pyjwt.encode(payload, signing_key, algorithm=alg, headers=header or None)


def principal_for(
    iam: IAM,
    user: str | None = None,
    *,
    role: str | None = None,
    session_name: str = "test-session",
    mfa: bool = False,
    now: float | None = None,
) -> Principal:
    """The principal of a user (signing with a long-term access key, so no MFA keys; with ``mfa``, a session
    whose second factor was checked at ``now``) or of a session of ``role``."""
    if (user is None) == (role is None):
        raise ValueError("give exactly one of user= or role=")
    at = _now(iam, now)
    snapshot = iam.snapshot
    if role is not None:
        found_role = snapshot.role(role)
        if found_role is None:
            raise LookupError(f"no single role named {role!r} in the directory")
        return snapshot.role_principal(found_role, session_name, CredentialKind.TEMPORARY_ACCESS_KEY, auth_time=at,
                                       expires_at=at + 3600, mfa_time=at if mfa else None)
    found = _user(iam, str(user))
    if mfa:
        return snapshot.user_principal(found, CredentialKind.SESSION, auth_time=at, mfa_time=at, expires_at=at + 3600)
    return snapshot.user_principal(found, CredentialKind.ACCESS_KEY)


def _decide(iam: IAM, who: Principal | str, action: str, resource: str, context: Mapping[str, Any] | None,
            now: float | None) -> Decision:
    at = _now(iam, now)
    principal = who if isinstance(who, Principal) else principal_for(iam, who, now=at)
    return iam.decisions.decide(principal, action, resource, context, now=at)


def assert_allowed(iam: IAM, who: Principal | str, action: str, resource: str = "*", *,
                   context: Mapping[str, Any] | None = None, now: float | None = None) -> Decision:
    """Assert the policies allow ``who`` (a Principal, or a user name) ``action`` on ``resource``; return the
    decision. The failure message is the denial's explanation, in AWS's words."""
    decision = _decide(iam, who, action, resource, context, now)
    if not decision.allowed:
        raise AssertionError(decision.message)
    return decision


def assert_denied(iam: IAM, who: Principal | str, action: str, resource: str = "*", *,
                  context: Mapping[str, Any] | None = None, now: float | None = None) -> Decision:
    """Assert the policies deny ``who`` ``action`` on ``resource``; return the decision (its ``kind`` says
    whether the deny was explicit). The failure message names the statements that allowed it."""
    decision = _decide(iam, who, action, resource, context, now)
    if decision.allowed:
        raise AssertionError(decision.message)
    return decision


class _Calls:
    """What both route clients share: turning "as this caller" into the URL, headers and body to send."""

    def __init__(self, iam: IAM, base_url: str) -> None:
        self.iam = iam
        self.base_url = base_url.rstrip("/")

    def build(
        self,
        method: str,
        path: str,
        *,
        user: str | None,
        via: Via,
        token: str | None,
        credential: SigningCredential | TemporaryCredential | None,
        headers: Mapping[str, str] | None,
        content: bytes | str,
        json: Any,
    ) -> tuple[str, dict[str, str], bytes]:
        url = self.base_url + path
        sent = dict(headers or {})
        body = content.encode() if isinstance(content, str) else content
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        if credential is not None or (user is not None and via == "sigv4"):
            signed = sign_request(self.iam, method, url, user=user if credential is None else None,
                                  credential=credential, headers=sent, body=body)
            return signed.url, signed.headers, body
        if user is not None:
            token = session_token(self.iam, user)
        if token is not None:
            if via == "cookie":
                sent["Cookie"] = f"{self.iam.credentials.sessions.cookie_name}={token}"
                parts = urlsplit(self.base_url)
                sent.setdefault("Origin", f"{parts.scheme}://{parts.netloc}")
            else:
                sent["Authorization"] = f"Bearer {token}"
        return url, sent, body

    @staticmethod
    def check(response: httpx.Response, expected: int | tuple[int, ...], method: str, path: str) -> httpx.Response:
        wanted = (expected,) if isinstance(expected, int) else expected
        if response.status_code not in wanted:
            raise AssertionError(f"{method} {path}: expected status {' or '.join(map(str, wanted))}, got "
                                 f"{response.status_code}: {response.text[:500]}")
        return response

    @staticmethod
    def check_allowed(response: httpx.Response, method: str, path: str) -> httpx.Response:
        if response.status_code in (400, 401, 403):
            raise AssertionError(f"{method} {path}: expected the route to run, got {response.status_code}: "
                                 f"{response.text[:500]}")
        return response



class AsyncRouteClient:
    """Call an ASGI app's routes as a given caller, in process (``httpx.ASGITransport``), and assert the outcome.

    Each call takes the caller as ``user=`` (with ``via="session"``: a bearer session token, the default;
    ``"cookie"``: the session cookie, from the app's own origin; ``"sigv4"``: signed with the user's access key),
    ``token=`` (any bearer token) or ``credential=`` (signed with that access key or temporary credentials);
    none of them calls anonymously.
    """

    def __init__(self, app: Any, iam: IAM, *, base_url: str = "http://testserver") -> None:
        self._calls = _Calls(iam, base_url)
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    async def __aenter__(self) -> AsyncRouteClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, *, user: str | None = None, via: Via = "session",
                      token: str | None = None, credential: SigningCredential | TemporaryCredential | None = None,
                      headers: Mapping[str, str] | None = None, content: bytes | str = b"",
                      json: Any = None) -> httpx.Response:
        """Send one request as the given caller and return the response."""
        url, sent, body = self._calls.build(method, path, user=user, via=via, token=token, credential=credential,
                                            headers=headers, content=content, json=json)
        return await self._client.request(method, url, headers=sent, content=body)

    async def expect(self, status: int | tuple[int, ...], method: str, path: str, **caller: Any) -> httpx.Response:
        """Send the request and assert its status (one, or any of several)."""
        return _Calls.check(await self.request(method, path, **caller), status, method, path)

    async def assert_allowed(self, method: str, path: str, **caller: Any) -> httpx.Response:
        """Assert the route ran for this caller: the answer is neither 400, 401 nor 403."""
        return _Calls.check_allowed(await self.request(method, path, **caller), method, path)

    async def assert_denied(self, method: str, path: str, **caller: Any) -> httpx.Response:
        """Assert the caller was refused: 403 for a caller, 401 for an anonymous call."""
        anonymous = not any(caller.get(name) for name in ("user", "token", "credential"))
        return _Calls.check(await self.request(method, path, **caller), 401 if anonymous else 403, method, path)


class RouteClient:
    """``AsyncRouteClient`` for WSGI apps (Flask), synchronous, through ``httpx.WSGITransport``."""

    def __init__(self, app: Any, iam: IAM, *, base_url: str = "http://testserver") -> None:
        self._calls = _Calls(iam, base_url)
        self._client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url=base_url)

    def __enter__(self) -> RouteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, user: str | None = None, via: Via = "session",
                token: str | None = None, credential: SigningCredential | TemporaryCredential | None = None,
                headers: Mapping[str, str] | None = None, content: bytes | str = b"",
                json: Any = None) -> httpx.Response:
        """Send one request as the given caller and return the response."""
        url, sent, body = self._calls.build(method, path, user=user, via=via, token=token, credential=credential,
                                            headers=headers, content=content, json=json)
        return self._client.request(method, url, headers=sent, content=body)

    def expect(self, status: int | tuple[int, ...], method: str, path: str, **caller: Any) -> httpx.Response:
        """Send the request and assert its status (one, or any of several)."""
        return _Calls.check(self.request(method, path, **caller), status, method, path)

    def assert_allowed(self, method: str, path: str, **caller: Any) -> httpx.Response:
        """Assert the route ran for this caller: the answer is neither 400, 401 nor 403."""
        return _Calls.check_allowed(self.request(method, path, **caller), method, path)

    def assert_denied(self, method: str, path: str, **caller: Any) -> httpx.Response:
        """Assert the caller was refused: 403 for a caller, 401 for an anonymous call."""
        anonymous = not any(caller.get(name) for name in ("user", "token", "credential"))
        return _Calls.check(self.request(method, path, **caller), 401 if anonymous else 403, method, path)
