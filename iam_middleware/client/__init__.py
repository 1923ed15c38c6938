"""Outbound calls as a principal, with httpx (docs/client.md).

- ``SigV4Auth``: signs each request with AWS Signature Version 4 (header form), as botocore does and as the
  project's verifier checks it.
- ``TokenServiceClient``: the token service's operations as credentials providers that renew themselves, one call
  at a time: ``get_session_token`` (a one-time code supplier), ``assume_role``, ``assume_role_with_web_identity``
  (an outside token supplier), and ``login`` (a session token for ``BearerAuth``).
- ``BearerAuth``: attaches a session or outside token and renews it on expiry or on a 401 ``invalid_token``.
"""

from __future__ import annotations

from ._bearer import BearerAuth, LoginSession, SuppliedToken, TokenProvider
from ._credentials import Credentials, CredentialsProvider, StaticCredentials
from ._errors import TokenServiceError
from ._service import TokenServiceClient
from ._sigv4 import SigV4Auth
from ._temporary import TemporaryCredentials

__all__ = [
    "BearerAuth",
    "Credentials",
    "CredentialsProvider",
    "LoginSession",
    "SigV4Auth",
    "StaticCredentials",
    "SuppliedToken",
    "TemporaryCredentials",
    "TokenProvider",
    "TokenServiceClient",
    "TokenServiceError",
]
