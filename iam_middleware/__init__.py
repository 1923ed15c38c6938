"""iam-middleware: AWS IAM's access model (policies, principals, SigV4, JWT, TOTP sessions) for any Python web API.

Names are imported on first use, so ``import iam_middleware.policy`` (the sans-IO core, used by the Flask adapter
and by library users) does not pull in Starlette.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ._admin import admin_app
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
    from ._settings import Settings, WebIdentityProvider
    from .asgi import IAMCredentials, IAMMiddleware
    from .passwords import InvalidPasswordError, PasswordCost, hash_password, needs_rehash, verify_password
    from .policy import Decision, DecisionKind, Policy, PolicyKind, PolicySet, parse_policy
    from .routing import PUBLIC, Permission, Rule, RuleTable, permission, public

_EXPORTS = {
    "AccessDeniedError": "._exceptions",
    "AuthenticationError": "._exceptions",
    "BadRequestError": "._exceptions",
    "ConfigurationError": "._exceptions",
    "CredentialKind": "._principal",
    "Decision": ".policy",
    "DecisionKind": ".policy",
    "DirectoryReloader": "._reload",
    "IAM": "._iam",
    "IAMCredentials": ".asgi",
    "IAMError": "._exceptions",
    "IAMMiddleware": ".asgi",
    "InvalidPasswordError": ".passwords",
    "InvalidTokenError": "._exceptions",
    "LockedOutError": "._exceptions",
    "MissingCredentialError": "._exceptions",
    "OTPError": "._exceptions",
    "PUBLIC": ".routing",
    "PasswordCost": ".passwords",
    "Permission": ".routing",
    "Policy": ".policy",
    "PolicyKind": ".policy",
    "PolicySet": ".policy",
    "PolicyValidationError": "._exceptions",
    "Principal": "._principal",
    "PrincipalType": "._principal",
    "ReloadResult": "._reload",
    "RequestView": "._request",
    "Rule": ".routing",
    "RuleTable": ".routing",
    "ServiceUnavailableError": "._exceptions",
    "Settings": "._settings",
    "SignatureError": "._exceptions",
    "WebIdentityProvider": "._settings",
    "admin_app": "._admin",
    "hash_password": ".passwords",
    "needs_rehash": ".passwords",
    "parse_policy": ".policy",
    "permission": ".routing",
    "public": ".routing",
    "verify_password": ".passwords",
}

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "CredentialKind",
    "Decision",
    "DecisionKind",
    "DirectoryReloader",
    "IAM",
    "IAMCredentials",
    "IAMError",
    "IAMMiddleware",
    "InvalidPasswordError",
    "InvalidTokenError",
    "LockedOutError",
    "MissingCredentialError",
    "OTPError",
    "PUBLIC",
    "PasswordCost",
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
    "hash_password",
    "needs_rehash",
    "parse_policy",
    "permission",
    "public",
    "verify_password",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
