"""Credential verification: bearer JWTs, SigV4 access keys, password + TOTP sessions. Pure and synchronous:
time comes in as ``now``, shared state through the ``StateStore`` protocol."""

from __future__ import annotations

from ._csrf import CSRFError, CSRFGuard, check_csrf
from ._jwks import FetchDeferred, FetchMode, JWKSSource, JWTKey, fetching
from ._jwt import JWTValidationError, JWTVerifier, TrustedIssuer, VerifiedToken
from ._login import LoginFailedError, LoginRecord, LoginService
from ._passwords import PasswordHash, hash_password, verify_password
from ._sessions import IssuedSession, SessionClaims, SessionTokens
from ._sigv4 import SigningCredential, SigV4Verifier, VerifiedSignature
from ._sigv4_signer import SignedRequest, sign_request
from ._throttle import LoginThrottle
from ._totp import TOTPDevice, TOTPVerifier, new_device, provisioning_uri, qr_svg, qr_terminal

__all__ = [
    "CSRFError",
    "CSRFGuard",
    "FetchDeferred",
    "FetchMode",
    "IssuedSession",
    "JWKSSource",
    "JWTKey",
    "JWTValidationError",
    "JWTVerifier",
    "LoginFailedError",
    "LoginRecord",
    "LoginService",
    "LoginThrottle",
    "PasswordHash",
    "SessionClaims",
    "SessionTokens",
    "SigV4Verifier",
    "SignedRequest",
    "SigningCredential",
    "TOTPDevice",
    "TOTPVerifier",
    "TrustedIssuer",
    "VerifiedSignature",
    "VerifiedToken",
    "check_csrf",
    "fetching",
    "hash_password",
    "new_device",
    "provisioning_uri",
    "qr_svg",
    "qr_terminal",
    "sign_request",
    "verify_password",
]
