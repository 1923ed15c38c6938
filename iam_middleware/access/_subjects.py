"""The principals of a directory, as the access report asks about them: each active user, a session of each role,
and a session of each web-identity provider's role, with what is known of their requests in advance.

A principal is built by the snapshot exactly as a request would bring it (``Snapshot.user_principal``,
``Snapshot.role_principal``), so its fixed keys (``aws:username``, ``aws:PrincipalTag/*``, ...) and its compiled
policy layers are the very ones the middleware uses. What the credential decides at run time stays unknown: MFA and
its age, the token's issue time, a role session's name (in ``aws:userid``), and for a web identity its token's
claims and the session tags they give.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from types import MappingProxyType

from .._principal import CredentialKind, Principal
from .._settings import WebIdentityProvider
from ..directory import Snapshot
from ..policy import Authorizer
from ._knowledge import Knowledge

__all__ = ["REQUEST_KEYS", "Subject", "subjects_of"]

#: Keys every request sets from its connection and clock (``DecisionPoint.context_for``): never known in advance.
REQUEST_KEYS = frozenset({"aws:currenttime", "aws:epochtime", "aws:sourceip", "aws:securetransport", "aws:useragent",
                          "aws:referer"})
#: Keys a credential sets when it carries a session (``Principal.context_keys``).
_SESSION_KEYS = frozenset({"aws:multifactorauthpresent", "aws:multifactorauthage", "aws:tokenissuetime"})
#: The claims a web identity's token adds as ``<provider>:<claim>`` (``assume_role_with_web_identity``).
_CLAIMS = ("sub", "aud", "amr", "email", "azp", "oaud")


@dataclass(frozen=True, slots=True)
class Subject:
    """A principal of the report: ``name`` labels it (``alice``, ``role/partner``, ``role/partner@idp.example``);
    ``kind`` is ``user``, ``role`` or ``web-identity``. ``access_key_id`` is a user's first active key and
    ``provider`` a web identity's provider, for the requests that replay a finding."""

    name: str
    kind: str
    principal: Principal
    authorizer: Authorizer
    knowledge: Knowledge
    access_key_id: str | None = None
    provider: WebIdentityProvider | None = None


def _knowledge(principal: Principal, unknown: frozenset[str]) -> Knowledge:
    known = {key.lower(): value for key, value in principal.context_keys(0.0).items()}
    return Knowledge(MappingProxyType({k: v for k, v in known.items() if k not in unknown}), unknown)


def subjects_of(snapshot: Snapshot, providers: tuple[WebIdentityProvider, ...] = ()) -> list[Subject]:
    """Every principal of ``snapshot``: users (by name, or ``account/name`` where names repeat), then roles, then
    the roles of ``providers``, each in the directory's order."""
    out: list[Subject] = []
    users = [user for user in snapshot.users.values() if user.active]
    repeated = Counter(user.name for user in users)
    for user in users:
        principal = snapshot.user_principal(user, CredentialKind.ACCESS_KEY)
        name = user.name if repeated[user.name] == 1 else f"{user.account}/{user.name}"
        key = next((k.id for k in user.access_keys if k.active), None)
        out.append(Subject(name, "user", principal, snapshot.authorizer(principal),
                           _knowledge(principal, REQUEST_KEYS | _SESSION_KEYS), key))
    roles = list(snapshot.roles.values())
    repeated = Counter(role.name for role in roles)
    for role in roles:
        principal = snapshot.role_principal(role, "session", CredentialKind.TEMPORARY_ACCESS_KEY, auth_time=0.0,
                                            expires_at=0.0)
        name = f"role/{role.name}" if repeated[role.name] == 1 else f"{role.account}/role/{role.name}"
        out.append(Subject(name, "role", principal, snapshot.authorizer(principal),
                           _knowledge(principal, REQUEST_KEYS | _SESSION_KEYS | {"aws:userid"})))
    for provider in providers:
        target = snapshot.role(provider.role)
        if target is None:
            continue
        principal = snapshot.role_principal(target, "session", CredentialKind.WEB_IDENTITY, auth_time=0.0,
                                            expires_at=0.0)
        claims = {f"{provider.name}:{claim}".lower() for claim in _CLAIMS}
        tags = {f"aws:principaltag/{tag}".lower() for tag in provider.tag_claims}
        varying = REQUEST_KEYS | {"aws:tokenissuetime", "aws:userid"} | claims | tags
        if tags:
            varying |= {"aws:principaltagkeys"}
        name = f"role/{target.name}@{provider.name}"
        out.append(Subject(name, "web-identity", principal, snapshot.authorizer(principal),
                           _knowledge(principal, frozenset(varying)), provider=provider))
    return out
