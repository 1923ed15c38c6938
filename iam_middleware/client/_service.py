"""``TokenServiceClient``: calls to the project's token service (``POST <url>/<Operation>`` with a JSON body, as in
docs/credentials.md, "The token service"), and the providers that keep its answers fresh."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from ._answers import answer_of
from ._bearer import LoginSession
from ._credentials import Credentials, CredentialsProvider
from ._sigv4 import SigV4Auth
from ._temporary import TemporaryCredentials

__all__ = ["TokenServiceClient"]

_DEFAULT_MARGIN = 300.0  # renew temporary credentials five minutes before they end
# An unsigned call (login, AssumeRoleWithWebIdentity) must not take the auth of a client you share with us.
_NO_AUTH = httpx.Auth()


class TokenServiceClient:
    """The token service mounted at ``url`` (``https://api.example/sts``), whose SigV4 scope is ``service`` and
    ``region`` (the directory's ``settings.service`` and one of its ``regions``).

    Calls go through ``client`` (sync callers) or ``async_client`` (async callers) when given, so they share your
    timeouts, TLS settings and connection pool; otherwise each call opens a short-lived default client. ``clock``
    (epoch seconds) signs the calls and decides when answers need renewing; tests inject their own.
    """

    def __init__(self, url: str, *, service: str, region: str, client: httpx.Client | None = None,
                 async_client: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"url must be an http(s) URL of the token service (got {url!r})")
        self.url = url.rstrip("/")
        self.service = service
        self.region = region
        self.clock = clock
        self._client = client
        self._async_client = async_client

    def __repr__(self) -> str:
        return f"TokenServiceClient({self.url!r}, service={self.service!r}, region={self.region!r})"

    def signer(self, credentials: Credentials | CredentialsProvider) -> SigV4Auth:
        """The ``SigV4Auth`` that signs calls to this token service (and to APIs of the same service and region)."""
        return SigV4Auth(credentials, service=self.service, region=self.region, clock=self.clock)

    def post(self, operation: str, body: Mapping[str, Any], *, auth: httpx.Auth | None = None) -> dict[str, Any]:
        """Call ``operation`` (``"AssumeRole"``, ``"login"``, ...) and return its JSON answer, or raise
        ``TokenServiceError`` with the service's code and message."""
        url, sent = f"{self.url}/{operation}", dict(body)
        if self._client is not None:
            return answer_of(self._client.post(url, json=sent, auth=auth or _NO_AUTH))
        with httpx.Client() as client:
            return answer_of(client.post(url, json=sent, auth=auth or _NO_AUTH))

    async def apost(self, operation: str, body: Mapping[str, Any], *,
                    auth: httpx.Auth | None = None) -> dict[str, Any]:
        """``post`` for async callers."""
        url, sent = f"{self.url}/{operation}", dict(body)
        if self._async_client is not None:
            return answer_of(await self._async_client.post(url, json=sent, auth=auth or _NO_AUTH))
        async with httpx.AsyncClient() as client:
            return answer_of(await client.post(url, json=sent, auth=auth or _NO_AUTH))

    def get_session_token(self, credentials: Credentials | CredentialsProvider, *, code: Callable[[], str],
                          duration: int | None = None, serial_number: str | None = None,
                          margin: float = _DEFAULT_MARGIN) -> TemporaryCredentials:
        """Temporary credentials that carry MFA, from a long-term access key and the user's current one-time code
        (``code`` is asked once per renewal; a code works once, and renewals never overlap). ``serial_number``
        names the MFA device ``code`` reads (its ARN); without it a code of any of the user's devices is taken."""
        def body() -> dict[str, Any]:
            return _without_none(code=code(), duration=duration, SerialNumber=serial_number)

        return TemporaryCredentials(self, "GetSessionToken", body, auth=self.signer(credentials), margin=margin)

    def assume_role(self, credentials: Credentials | CredentialsProvider, role_arn: str, session_name: str, *,
                    duration: int | None = None, policy: str | Mapping[str, Any] | None = None,
                    policy_arns: Sequence[str] | None = None, tags: Mapping[str, str] | None = None,
                    transitive_tag_keys: Sequence[str] | None = None, source_identity: str | None = None,
                    margin: float = _DEFAULT_MARGIN) -> TemporaryCredentials:
        """Temporary credentials of a session of role ``role_arn``, asked for with ``credentials`` (any access
        key, or another provider: role chaining). ``policy`` is a session policy and ``policy_arns`` the ARNs of
        managed session policies (policies of the directory, at most 10): together they narrow the session;
        ``tags`` are session tags (``aws:PrincipalTag/*``), of which ``transitive_tag_keys`` pass on to the
        sessions it assumes; ``source_identity`` is ``aws:SourceIdentity``, set once for the whole chain
        (docs/credentials.md, "Session tags and source identity": the role's trust policy must allow
        ``sts:TagSession`` and ``sts:SetSourceIdentity``).
        """
        fixed = _without_none(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration, Policy=policy,
            PolicyArns=_policy_descriptors(policy_arns),
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()] if tags else None,
            TransitiveTagKeys=list(transitive_tag_keys) if transitive_tag_keys else None,
            SourceIdentity=source_identity)
        return TemporaryCredentials(self, "AssumeRole", lambda: fixed, auth=self.signer(credentials), margin=margin)

    def assume_role_with_web_identity(self, token: Callable[[], str], *, role_arn: str | None = None,
                                      duration: int | None = None, policy: str | Mapping[str, Any] | None = None,
                                      policy_arns: Sequence[str] | None = None,
                                      margin: float = _DEFAULT_MARGIN) -> TemporaryCredentials:
        """Temporary credentials of a role session for an outside identity provider's token, which ``token``
        supplies afresh for each renewal (read a projected token file, ask the provider). The token is the
        credential: the call is not signed. ``policy`` and ``policy_arns`` narrow the session as in
        ``assume_role``."""
        descriptors = _policy_descriptors(policy_arns)

        def body() -> dict[str, Any]:
            return _without_none(WebIdentityToken=token(), RoleArn=role_arn, DurationSeconds=duration,
                                 Policy=policy, PolicyArns=descriptors)

        return TemporaryCredentials(self, "AssumeRoleWithWebIdentity", body, auth=None, margin=margin)

    def login(self, username: str, *, password: Callable[[], str], code: Callable[[], str],
              margin: float = 60.0) -> LoginSession:
        """A session token from a password and one-time code login, for ``BearerAuth``; both are asked for again
        at each renewal, so they need not be kept in memory by this object."""
        return LoginSession(self, username, password=password, code=code, margin=margin)


def _policy_descriptors(arns: Sequence[str] | None) -> list[dict[str, str]] | None:
    """``PolicyArns`` as the token service takes it, ``[{"arn": ...}]``; a lone string is refused, since it would
    otherwise be sent one character per ARN."""
    if arns is None:
        return None
    if isinstance(arns, str) or not all(isinstance(arn, str) for arn in arns):
        raise TypeError("policy_arns must be a sequence of policy ARNs (strings), not a single string")
    return [{"arn": arn} for arn in arns] or None


def _without_none(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
