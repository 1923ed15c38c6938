"""iam-middleware: AWS IAM's access model (policies, principals, SigV4, JWT, TOTP sessions) for any Python web API."""

from __future__ import annotations

from ._admin import admin_app
from ._asgi import IAMCredentials, IAMMiddleware
from ._exceptions import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    IAMError,
    InvalidTokenError,
    LockedOutError,
    MissingCredentialError,
    OTPError,
    PolicyValidationError,
    ServiceUnavailableError,
    SignatureError,
)
from ._iam import IAM
from ._principal import CredentialKind, Principal, PrincipalType
from ._reload import DirectoryReloader, ReloadResult
from ._request import RequestView
from ._routes import PUBLIC, Permission, Rule, RuleTable, permission, public
from ._settings import Settings, WebIdentityProvider
from .policy import Decision, DecisionKind, Policy, PolicyKind, PolicySet, parse_policy

__version__ = "0.1.0"

__all__ = [
    "IAM",
    "PUBLIC",
    "AccessDeniedError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "CredentialKind",
    "Decision",
    "DecisionKind",
    "DirectoryReloader",
    "IAMCredentials",
    "IAMError",
    "IAMMiddleware",
    "InvalidTokenError",
    "LockedOutError",
    "MissingCredentialError",
    "OTPError",
    "Permission",
    "Policy",
    "PolicyKind",
    "PolicySet",
    "PolicyValidationError",
    "Principal",
    "PrincipalType",
    "ReloadResult",
    "RequestView",
    "Rule",
    "RuleTable",
    "ServiceUnavailableError",
    "Settings",
    "SignatureError",
    "WebIdentityProvider",
    "admin_app",
    "parse_policy",
    "permission",
    "public",
]
