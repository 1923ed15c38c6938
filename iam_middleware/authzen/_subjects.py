"""From an AuthZEN Subject to the principal it names, and to the ARN a PEP must be allowed to ask about (sans-IO).

- ``{"type": "user", "id": NAME or USER-ARN}``: a user of the directory, decided as when it calls with its long-term
  access key (no MFA keys), as ``iam-middleware access`` decides users.
- ``{"type": "role", "id": NAME, ROLE-ARN or ROLE-SESSION-ARN}``: a fresh session of the role, without MFA; its
  session name is the one in a role-session ARN, else ``properties.session_name``, else ``authzen``.
- ``{"type": "caller", "id": "self"}``: the principal the AuthZEN request's own credential proves, with all that
  credential carries (MFA, session tags, a session policy, an outside token's claims).

A name is looked up in the account of the principal asking. What the PEP must be allowed is
``iam:SimulatePrincipalPolicy`` on the user's or role's ARN (docs/authzen.md); for a name that names nobody, on the
ARN it would have, so a PEP learns that a principal does not exist only where it may ask about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._principal import CredentialKind, Principal
from ..directory import Role, Snapshot, User
from ._errors import InvalidEvaluationError
from ._model import Entity

__all__ = ["DEFAULT_SESSION_NAME", "Named", "resolve"]

#: The session name of a role subject that names none.
DEFAULT_SESSION_NAME = "authzen"
_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_SESSION = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_IAM_ARN = re.compile(r"arn:(?P<partition>[\w-]+):iam::(?P<account>[\w-]{1,64}):(?P<kind>user|role)"
                      r"/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]{1,64})", re.ASCII)
_SESSION_ARN = re.compile(r"arn:(?P<partition>[\w-]+):sts::(?P<account>[\w-]{1,64}):assumed-role"
                          r"/(?P<name>[\w+=,.@-]{1,64})/(?P<session>[\w+=,.@-]{2,64})", re.ASCII)


@dataclass(frozen=True, slots=True)
class Named:
    """A resolved subject: ``arn`` is what the PEP must be allowed to ask about, ``account`` the account its
    resources default to, ``principal`` the principal decided (None: nobody by that name, ``missing`` says so)."""

    arn: str
    account: str
    principal: Principal | None
    missing: str = ""


def resolve(snapshot: Snapshot, subject: Entity, caller: Principal, *, now: float) -> Named:
    """The principal ``subject`` names, for a request authenticated as ``caller``."""
    if subject.type == "caller":
        if subject.id != "self":
            raise InvalidEvaluationError(f'{subject.where}.id must be "self" for a subject of type caller (the '
                                         "principal this request's own credential proves).")
        return Named(caller.principal_arn, caller.account, caller)
    if subject.type == "user":
        return _user(snapshot, subject, caller.account)
    if subject.type == "role":
        return _role(snapshot, subject, caller.account, now)
    raise InvalidEvaluationError(f'{subject.where}.type must be "user", "role" or "caller".')


def _user(snapshot: Snapshot, subject: Entity, account: str) -> Named:
    given = subject.id
    user: User | None
    if given.startswith("arn:"):
        found = _arn(_IAM_ARN, subject, snapshot.partition, "user")
        account, user, arn = found["account"], snapshot.user_by_arn(given), given
    else:
        _name(subject, "user")
        user = snapshot.user(given, account)
        arn = user.arn if user is not None else f"arn:{snapshot.partition}:iam::{account}:user/{given}"
    if user is None or not user.active:
        return Named(arn, account, None, f"The user {arn} does not exist or is disabled.")
    return Named(arn, account, snapshot.user_principal(user, CredentialKind.ACCESS_KEY))


def _role(snapshot: Snapshot, subject: Entity, account: str, now: float) -> Named:
    given = subject.id
    session = _session_name(subject)
    role: Role | None
    if _SESSION_ARN.fullmatch(given) is not None:
        found = _arn(_SESSION_ARN, subject, snapshot.partition, "role")
        if session is not None and session != found["session"]:
            raise InvalidEvaluationError(f"{subject.where}.properties.session_name differs from the session name in "
                                         f"{subject.where}.id.")
        account, session = found["account"], found["session"]
        role = snapshot.role(found["name"], account)
        arn = role.arn if role is not None else f"arn:{snapshot.partition}:iam::{account}:role/{found['name']}"
    elif given.startswith("arn:"):
        found = _arn(_IAM_ARN, subject, snapshot.partition, "role")
        account, role, arn = found["account"], snapshot.role(given), given
    else:
        _name(subject, "role")
        role = snapshot.role(given, account)
        arn = role.arn if role is not None else f"arn:{snapshot.partition}:iam::{account}:role/{given}"
    if role is None:
        return Named(arn, account, None, f"The role {arn} does not exist.")
    principal = snapshot.role_principal(role, session or DEFAULT_SESSION_NAME, CredentialKind.TEMPORARY_ACCESS_KEY,
                                        auth_time=now, expires_at=now + role.max_session_duration)
    return Named(arn, account, principal)


def _arn(pattern: re.Pattern[str], subject: Entity, partition: str, kind: str) -> re.Match[str]:
    found = pattern.fullmatch(subject.id)
    if found is None or found.groupdict().get("kind", kind) != kind:
        forms = (f"arn:{partition}:iam::ACCOUNT:user/NAME" if kind == "user" else
                 f"arn:{partition}:iam::ACCOUNT:role/NAME or arn:{partition}:sts::ACCOUNT:assumed-role/NAME/SESSION")
        raise InvalidEvaluationError(f"{subject.where}.id must be a {kind} name or a {kind} ARN ({forms}).")
    if found["partition"] != partition:
        raise InvalidEvaluationError(f"{subject.where}.id must be an ARN of partition {partition!r}, the "
                                     "directory's.")
    return found


def _name(subject: Entity, kind: str) -> None:
    if _NAME.fullmatch(subject.id) is None:
        raise InvalidEvaluationError(f"{subject.where}.id must be a {kind} name (1-64 letters, digits and +=,.@_-) "
                                     f"or a {kind} ARN.")


def _session_name(subject: Entity) -> str | None:
    value = subject.properties.get("session_name")
    if value is None:
        return None
    if not isinstance(value, str) or _SESSION.fullmatch(value) is None:
        raise InvalidEvaluationError(f"{subject.where}.properties.session_name must be 2-64 letters, digits and "
                                     "+=,.@_-, as a role session name is.")
    return value
