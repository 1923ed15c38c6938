"""The token service's operations, sans-IO: each takes one ``Call`` (the facade, the request, its JSON body, ``now``)
and returns the JSON ``Answer`` or raises the ``IAMError`` to render.

Each operation is authorized by the policy engine as an ``sts:*`` action:

- ``sts:AssumeRole`` on the role's ARN, with the role's trust policy as the resource policy and the caller's own
  policies as the identity side (IAM semantics: the trust policy must always allow the caller; in one account, a
  trust policy that names the account rather than the caller also needs an identity-based allow; across accounts
  both sides must allow). A session that will carry session tags also needs ``sts:TagSession``, and one with a
  source identity ``sts:SetSourceIdentity``, by the same rule (``_tags`` has the tag and source identity rules).
  A root user is refused before any policy is read, as AWS STS refuses root user credentials.
- ``sts:AssumeRoleWithWebIdentity``: the role's trust policy decides for the outside token
  (``iam.credentials.web_identity``).
- ``sts:RevokeCredentials`` on the ARN the credentials stand for (a role, or a user's MFA session), except for the
  very credentials that signed the request: ending one's own credentials needs no permission, like a logout.
- ``sts:Login`` and ``sts:GetSessionToken`` on the user's own ARN are self-service, as GetSessionToken is in AWS:
  no Allow is needed, but an explicit Deny (identity policy or guardrail) is honoured, so an administrator can
  switch them off for a user or a whole account.

A logout needs no permission: ending one's own session only ever removes access. Nor does GetCallerIdentity, as in
AWS: it only tells callers who they are.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from .._authn import Authenticator
from .._bodies import json_object
from .._exceptions import (
    AccessDeniedError,
    AuthenticationError,
    InvalidTokenError,
    MissingCredentialError,
    OTPError,
    PolicyValidationError,
)
from .._iam import IAM
from .._logins import mfa_devices_of, own_mfa_serial
from .._principal import CredentialKind, Principal, PrincipalType
from .._request import RequestView
from .._temporary import TemporaryCredential
from ..authenticators._login import throttle_key_for
from ..authenticators._totp import TOTPDevice
from ..directory import User
from ..policy import Decision, DecisionKind, Policy, PolicyKind, parse_policy
from ._errors import (
    CredentialKindError,
    InvalidParameterError,
    MalformedJSONError,
    MalformedPolicyDocumentError,
    MissingParameterError,
    NoMFADeviceError,
    NotASessionError,
    UnsupportedMediaTypeError,
)
from ._tags import (
    SOURCE_IDENTITY_KEY,
    managed_session_policies,
    packed_size,
    policy_arns,
    session_attributes,
    session_policy_text,
)

__all__ = [
    "OPERATIONS",
    "Answer",
    "Call",
    "CredentialKindError",
    "InvalidParameterError",
    "MalformedJSONError",
    "MalformedPolicyDocumentError",
    "MissingParameterError",
    "NoMFADeviceError",
    "NotASessionError",
    "UnsupportedMediaTypeError",
    "parse_body",
]

logger = logging.getLogger("iam_middleware.sts")

_MIN_DURATION = 900
_DEFAULT_DURATION = 3600
_CHAINED_MAX = 3600  # AWS: a role session assuming another role ("role chaining") gets at most one hour
_ROOT_SESSION_MAX = 3600  # AWS: GetSessionToken of a root user gets at most one hour
#: AWS STS's refusal of AssumeRole called with root user credentials (AccessDenied).
_ROOT_CANNOT_ASSUME = "Roles may not be assumed by root accounts."
_MAX_POLICY_CHARS = 2048  # AWS's limit for an inline session policy
_MAX_ARN_CHARS = 2048
_MAX_TOKEN_CHARS = 16384
_MAX_FIELD_NAME = 40
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_TEMPORARY_KEY_ID = re.compile(r"ASIA[A-Z2-7]{16}", re.ASCII)
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
_MIN_SERIAL_CHARS, _MAX_SERIAL_CHARS = 9, 256  # AWS's SerialNumber, with its pattern below
_SERIAL = re.compile(r"[\w+=/:,.@-]{9,256}", re.ASCII)
# AWS's words when SerialNumber names no MFA device of the caller (an AccessDenied, as a wrong code is).
_UNKNOWN_SERIAL = ("MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial "
                   "number is valid and associated with this user.")
_ASSUME_ROLE_OPTIONAL = ("DurationSeconds", "Policy", "Tags", "TransitiveTagKeys", "SourceIdentity", "ExternalId",
                         "SerialNumber", "TokenCode", "PolicyArns")


class Answer(NamedTuple):
    """A successful result: the JSON body and any extra response headers (``Set-Cookie``)."""

    body: dict[str, Any]
    headers: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Call:
    """One call to the token service: the facade, the request (body included), its parsed JSON body, the time of
    the call and the caller's address (``aws:SourceIp``, after trusted proxies). ``authenticators`` replaces the
    facade's chain for this call (the Query API takes SigV4 for the ``sts`` signing name only)."""

    iam: IAM
    request: RequestView
    body: Mapping[str, Any]
    now: float
    source_ip: str | None = None
    request_id: str = "-"
    authenticators: Sequence[Authenticator] | None = None

    def principal(self) -> Principal:
        """The authenticated caller; a request without any credential is refused (401)."""
        principal = self.iam.authenticators.authenticate(self.request, now=self.now,
                                                       authenticators=self.authenticators)
        if principal is None:
            raise MissingCredentialError(
                "This operation needs a credential: a session token, or a request signed with an access key.",
                headers={"WWW-Authenticate": 'Bearer realm="iam-middleware", AWS4-HMAC-SHA256'},
            )
        return principal

    def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str,
        *,
        context: Mapping[str, Any] | None = None,
        resource_policy: Policy | None = None,
        resource_account: str | None = None,
    ) -> Decision:
        """The engine's decision on ``action``, with the request's global keys (source address after proxies)."""
        return self.iam.decisions.decide(principal, action, resource, context, now=self.now, request=self.request,
                                         resource_policy=resource_policy, resource_account=resource_account,
                                         source_ip=self.source_ip)

    def self_service(self, principal: Principal, action: str) -> None:
        """Refuse a self-service action (on the caller's own ARN) only on an explicit deny or a failed evaluation."""
        decision = self.authorize(principal, action, principal.arn)
        if decision.kind is DecisionKind.EXPLICITLY_DENIED or decision.error is not None:
            logger.info("sts %s refused for %s (request %s): %s", action, principal.arn, self.request_id,
                        decision.message)
            raise AccessDeniedError(decision.message, decision=decision)


# Body parsing ----------------------------------------------------------------------------------------------------
def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object a request carries, ``{}`` for an empty body. Requiring ``application/json`` also keeps
    browsers from sending these calls cross-site without a CORS preflight (login CSRF)."""
    return json_object(raw, content_type) if raw.strip() else {}


def _fields(body: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    expected = ", ".join((*required, *optional))
    unknown = sorted(name for name in body if name not in required and name not in optional)
    if unknown:
        names = ", ".join(repr(name[:_MAX_FIELD_NAME]) for name in unknown)
        raise InvalidParameterError(f"Unknown field(s) {names}; this operation takes: {expected}.")
    missing = [name for name in required if name not in body]
    if missing:
        raise MissingParameterError(f"Missing required field(s): {', '.join(missing)}.")


def _text(body: Mapping[str, Any], name: str, *, max_chars: int) -> str:
    value = body[name]
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise InvalidParameterError(f"{name} must be a non-empty string of at most {max_chars} characters.")
    return value


def _duration(body: Mapping[str, Any], name: str, *, maximum: int, why: str = "") -> int:
    value = body.get(name, min(_DEFAULT_DURATION, maximum))
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(f"{name} must be a whole number of seconds.")
    if not _MIN_DURATION <= value <= maximum:
        raise InvalidParameterError(f"{name} must be from {_MIN_DURATION} to {maximum} seconds{why}.")
    return value


def _role_arn(body: Mapping[str, Any], name: str = "RoleArn") -> str:
    arn = _text(body, name, max_chars=_MAX_ARN_CHARS)
    if not arn.startswith("arn:") or ":role/" not in arn:
        raise InvalidParameterError(f"{name} must be a role ARN (arn:<partition>:iam::<account>:role/<name>).")
    return arn


def _session_policy(body: Mapping[str, Any]) -> str | None:
    """The session policy as compact JSON text, validated as a session policy (no Principal, known elements)."""
    if "Policy" not in body:
        return None
    raw = body["Policy"]
    if isinstance(raw, dict):
        raw = json.dumps(raw, separators=(",", ":"))
    if not isinstance(raw, str) or not raw:
        raise InvalidParameterError("Policy must be a policy document: a JSON object, or a string holding one.")
    if len(raw) > _MAX_POLICY_CHARS:
        raise InvalidParameterError(f"Policy must be at most {_MAX_POLICY_CHARS} characters.")
    try:
        parse_policy(raw, kind=PolicyKind.SESSION, policy_id="session-policy")
    except PolicyValidationError as exc:
        # The issues name locations and rules of the caller's own document, never anything of ours.
        raise MalformedPolicyDocumentError(f"The session policy is invalid: {exc}") from None
    return raw


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _credentials(credential: TemporaryCredential) -> dict[str, str]:
    return {
        "AccessKeyId": credential.access_key_id,
        "SecretAccessKey": credential.secret_access_key,
        "SessionToken": credential.session_token,
        "Expiration": _iso(credential.expires_at),
    }


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def _serial_number(body: Mapping[str, Any]) -> str | None:
    """``SerialNumber`` as AWS takes it: 9 to 256 of ``A-Za-z0-9_+=/:,.@-``."""
    if "SerialNumber" not in body:
        return None
    serial = _text(body, "SerialNumber", max_chars=_MAX_SERIAL_CHARS)
    if not _SERIAL.fullmatch(serial):
        raise InvalidParameterError(f"SerialNumber must be {_MIN_SERIAL_CHARS} to {_MAX_SERIAL_CHARS} letters, "
                                    "digits or any of _+=/:,.@- (an MFA device's ARN).")
    return serial


def _caller_devices(user: User, serial: str | None) -> tuple[tuple[str | None, TOTPDevice], ...]:
    """The devices a code is checked against: the one ``serial`` names among the user's enabled devices (as AWS
    checks the code of the device named), or every one of them when no serial is given (as a login does). The
    user's own MFA name (``…:mfa<path><user name>``, documented before users had several devices) names the
    first device when no device has that serial."""
    devices = mfa_devices_of(user)
    if serial is None:
        return devices
    serials = [device.serial for device in user.mfa_devices]  # in the order of ``devices``
    if serial in serials:
        return (devices[serials.index(serial)],)
    if serial == own_mfa_serial(user) and devices:
        return devices[:1]
    raise AccessDeniedError(_UNKNOWN_SERIAL)


def _verify_code(call: Call, principal: Principal, user: User | None, code: str, serial: str | None) -> None:
    """Check the caller's one-time code against the device ``serial`` names (any of the caller's enabled devices
    without it). The access key alone must not allow guessing codes: the login throttle counts these failures."""
    if user is None or (not user.mfa_devices and user.totp is None):
        raise NoMFADeviceError(f"{principal.arn} has no TOTP device, so no one-time code can be checked; only a user "
                               "with an enrolled device can send one.")
    devices = _caller_devices(user, serial)
    iam = call.iam
    throttle_key = throttle_key_for(user.id)  # the counter a password + code login of this user counts on
    iam.logins.throttle.check(throttle_key, now=call.now, source_ip=call.source_ip)
    try:
        iam.logins.totp.verify_any(user.id, devices, code, now=call.now)
    except OTPError:
        iam.logins.throttle.record_failure(throttle_key, now=call.now, source_ip=call.source_ip)
        raise
    iam.logins.throttle.record_success(throttle_key)


# Operations ------------------------------------------------------------------------------------------------------
def login(call: Call) -> Answer:
    """``{username, password, code}`` -> a session token, as JSON and as a hardened cookie."""
    _fields(call.body, ("username", "password", "code"))
    username, password, code = (call.body[name] for name in ("username", "password", "code"))
    if not (isinstance(username, str) and isinstance(password, str) and isinstance(code, str)):
        raise InvalidParameterError("username, password and code must be strings.")
    iam = call.iam
    issued = iam.logins.login(username, password, code, now=call.now, source_ip=call.source_ip)
    try:
        principal = iam.credentials.from_token(issued.token, now=call.now)
        call.self_service(principal, "sts:Login")
    except Exception:
        iam.credentials.sessions.revoke(issued.session_id)  # a refused login leaves no live session behind
        raise
    logger.info("sts login: session %s for %s (request %s)", issued.session_id, principal.arn, call.request_id)
    return Answer({"token": issued.token, "expires_at": issued.expires_at, "token_type": "Bearer"},
                  {"Set-Cookie": iam.credentials.sessions.cookie_header(issued)})


def _session_token(call: Call) -> str | None:
    """The session token the request authenticated with: the bearer token, else the cookie (IAM's precedence)."""
    authorization = call.request.header_values("authorization")
    if authorization:
        return authorization[0].strip().partition(" ")[2].strip()
    return call.iam.credentials.sessions.token_from_cookie(call.request)


def logout(call: Call) -> Answer:
    """End the caller's session (``{"everywhere": true}``: every session of the user) and clear the cookie."""
    principal = call.principal()
    _fields(call.body, (), ("everywhere",))
    everywhere = call.body.get("everywhere", False)
    if not isinstance(everywhere, bool):
        raise InvalidParameterError("everywhere must be true or false.")
    token = _session_token(call)
    if principal.credential_kind is not CredentialKind.SESSION or token is None:
        raise NotASessionError("Logout ends a login session; this request was not made with a session token. "
                               "Temporary access keys are ended with /revoke.")
    sessions = call.iam.credentials.sessions
    if everywhere:
        sessions.revoke_all(principal.arn, now=call.now)
        call.iam.credentials.forget_principal(principal.arn)
    else:
        sessions.revoke(sessions.verify(token, now=call.now).session_id)
        call.iam.credentials.forget_token(token)
    logger.info("sts logout: %s%s (request %s)", principal.arn, " everywhere" if everywhere else "", call.request_id)
    return Answer({"logged_out": True, "everywhere": everywhere}, {"Set-Cookie": sessions.clear_cookie_header()})


def get_session_token(call: Call) -> Answer:
    """``{code, duration?, SerialNumber?}`` from a long-term access key -> temporary credentials carrying MFA."""
    principal = call.principal()
    _fields(call.body, ("code",), ("duration", "SerialNumber"))
    if principal.credential_kind is not CredentialKind.ACCESS_KEY:
        raise CredentialKindError("GetSessionToken must be called with a long-term access key (a SigV4-signed "
                                  "request); sessions and temporary credentials cannot call it.")
    code = _text(call.body, "code", max_chars=8)
    iam = call.iam
    duration = _duration(call.body, "duration", maximum=iam.settings.sts_max_duration)
    user = iam.snapshot.user_by_arn(principal.arn)
    if user is None or not user.active:
        raise AuthenticationError("The user of this access key no longer exists or is disabled.",
                                  code="InvalidClientTokenId", scheme="AWS4-HMAC-SHA256")
    if user.is_root:  # AWS: "sessions for AWS account owners" last at most an hour, a longer duration is cut
        duration = min(duration, _ROOT_SESSION_MAX)
    call.self_service(principal, "sts:GetSessionToken")
    _verify_code(call, principal, user, code, _serial_number(call.body))
    credential = iam.credentials.temporary.issue(kind="user", arn=user.arn, session_name=user.name, now=call.now,
                                                 duration=duration, mfa_time=call.now, source=principal.arn,
                                                 principal_id=user.id)
    logger.info("sts GetSessionToken: %s for %s (request %s)", credential.access_key_id, user.arn, call.request_id)
    return Answer({"Credentials": _credentials(credential)})


def assume_role(call: Call) -> Answer:
    """``{RoleArn, RoleSessionName, DurationSeconds?, Policy?, PolicyArns?, Tags?, TransitiveTagKeys?,
    SourceIdentity?, ExternalId?, SerialNumber? + TokenCode?}`` -> temporary credentials of a role session."""
    principal = call.principal()
    _fields(call.body, ("RoleArn", "RoleSessionName"), _ASSUME_ROLE_OPTIONAL)
    role_arn = _role_arn(call.body)
    session_name = _text(call.body, "RoleSessionName", max_chars=64)
    if not _SESSION_NAME.fullmatch(session_name):
        raise InvalidParameterError("RoleSessionName must be 2 to 64 letters, digits or any of _+=,.@-")
    policy = _session_policy(call.body)
    arns = policy_arns(call.body, policy)
    iam = call.iam
    attributes = session_attributes(call.body, _calling_role_session(call, principal))
    packed = packed_size(policy, attributes.tags, arns) if policy is not None or arns or attributes.tags else None
    context = {"sts:RoleSessionName": session_name, **attributes.context()}
    if "ExternalId" in call.body:
        context["sts:ExternalId"] = _external_id(call.body)
    if principal.type is PrincipalType.ACCOUNT:
        # AWS STS: root user credentials cannot call AssumeRole, whatever the trust policy says.
        logger.info("sts AssumeRole refused for %s (request %s): a root user", principal.arn, call.request_id)
        raise AccessDeniedError(_ROOT_CANNOT_ASSUME)
    role = iam.snapshot.role(role_arn)
    if role is None:
        # One answer whether the role is missing or not assumable by this caller (as AWS does).
        logger.info("sts AssumeRole refused for %s (request %s): no role %s", principal.arn, call.request_id, role_arn)
        raise AccessDeniedError(_not_authorized(principal, "sts:AssumeRole", role_arn))
    mfa_time = _request_mfa(call, principal)
    if mfa_time is not None:  # the code just checked is the MFA the trust policy sees, as in AWS
        context.update({"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "0"})
    for action in ("sts:AssumeRole", *attributes.actions()):
        decision = call.authorize(principal, action, role.arn, resource_policy=role.trust_policy,
                                  resource_account=role.account, context=context)
        # A trust policy is not an optional grant: it must allow the caller even when its own policies would.
        if not decision.allowed or decision.layer("resource") is not True:
            logger.info("sts AssumeRole refused for %s (request %s): %s%s", principal.arn, call.request_id,
                        decision.message, "" if decision.layer("resource") else " (the trust policy does not allow it)")
            raise AccessDeniedError(_not_authorized(principal, action, role_arn), decision=decision)
    maximum = min(role.max_session_duration, iam.settings.sts_max_duration)
    why = f" (the role's maximum session duration is {role.max_session_duration} seconds)"
    if principal.type is PrincipalType.ASSUMED_ROLE:
        maximum = min(maximum, _CHAINED_MAX)
        why = " (role chaining: a role session may assume a role for at most one hour)"
    duration = _duration(call.body, "DurationSeconds", maximum=maximum, why=why)
    if mfa_time is None and principal.mfa_present:
        mfa_time = principal.mfa_time
    source_identity = attributes.source_identity
    credential = iam.credentials.temporary.issue(
        kind="role", arn=role.arn, session_name=session_name, now=call.now, duration=duration, mfa_time=mfa_time,
        session_policy=_with_managed(call, policy, arns, role.account), tags=attributes.tags, source=principal.arn,
        principal_id=role.id,
        context={SOURCE_IDENTITY_KEY: source_identity} if source_identity is not None else None,
        transitive_tag_keys=attributes.transitive,
    )
    session = iam.credentials.principal_for_temporary(credential)
    logger.info("sts AssumeRole: %s as %s for %s (request %s)", credential.access_key_id, session.arn, principal.arn,
                call.request_id)
    answer: dict[str, Any] = {"Credentials": _credentials(credential),
                              "AssumedRoleUser": {"Arn": session.arn, "AssumedRoleId": session.id}}
    if packed is not None:
        answer["PackedPolicySize"] = packed
    if source_identity is not None:
        answer["SourceIdentity"] = source_identity
    return Answer(answer)


def _with_managed(call: Call, policy: str | None, arns: Sequence[str], account: str) -> str | None:
    """The session policy a session keeps: the inline ``Policy`` and the managed session policies ``PolicyArns``
    names, as one document (``session_policy_text``), found only once the caller may assume the role."""
    iam = call.iam
    managed = managed_session_policies(arns, iam.snapshot.policies, partition=iam.settings.partition,
                                       account=account)
    combined = session_policy_text(policy, managed)
    if managed and combined is not None:
        try:
            parse_policy(combined, kind=PolicyKind.SESSION, policy_id="session-policy")
        except PolicyValidationError as exc:
            raise MalformedPolicyDocumentError(f"The session policies together are invalid: {exc}") from None
    return combined


def _not_authorized(principal: Principal, action: str, role_arn: str) -> str:
    return f"User: {principal.arn} is not authorized to perform: {action} on resource: {role_arn}"


def _external_id(body: Mapping[str, Any]) -> str:
    external_id = _text(body, "ExternalId", max_chars=1224)
    if not _EXTERNAL_ID.fullmatch(external_id):
        raise InvalidParameterError("ExternalId must be 2 to 1224 letters, digits or any of _+=,.@:/-")
    return external_id


def _calling_role_session(call: Call, principal: Principal) -> TemporaryCredential | None:
    """The temporary credential of a calling role session (role chaining: its transitive tags and source identity
    pass on), or None for any other caller."""
    if principal.type is not PrincipalType.ASSUMED_ROLE or principal.access_key_id is None:
        return None
    credential = call.iam.credentials.temporary.lookup(principal.access_key_id)
    if credential is None:  # revoked or expired since the signature was checked
        raise AuthenticationError("The security token included in the request is expired or revoked.",
                                  code="ExpiredToken", scheme="AWS4-HMAC-SHA256")
    return credential


def _request_mfa(call: Call, principal: Principal) -> float | None:
    """The time of the one-time code an AssumeRole call carries (``SerialNumber`` with ``TokenCode``), checked
    against the calling user's device; None when the call carries none."""
    body = call.body
    if "SerialNumber" not in body and "TokenCode" not in body:
        return None
    if "SerialNumber" not in body or "TokenCode" not in body:
        raise MissingParameterError("SerialNumber and TokenCode go together: the ARN of the caller's MFA device and "
                                    "the code it shows.")
    user = call.iam.snapshot.user_by_arn(principal.arn) if principal.type is PrincipalType.USER else None
    _verify_code(call, principal, user, _text(body, "TokenCode", max_chars=8), _serial_number(body))
    return call.now


def assume_role_with_web_identity(call: Call) -> Answer:
    """``{WebIdentityToken, RoleArn?, DurationSeconds?, RoleSessionName?, Policy?, PolicyArns?}`` -> role
    credentials; the outside token is the credential. The session is named by the provider's
    ``session_name_claim`` (the token's subject by default), so its ARN says whose token it was: a
    ``RoleSessionName`` (AWS clients always send one) is checked like AssumeRole's and otherwise not used. The
    session policies narrow the session as AssumeRole's do."""
    _fields(call.body, ("WebIdentityToken",), ("RoleArn", "DurationSeconds", "RoleSessionName", "Policy",
                                               "PolicyArns"))
    token = _text(call.body, "WebIdentityToken", max_chars=_MAX_TOKEN_CHARS)
    policy = _session_policy(call.body)
    arns = policy_arns(call.body, policy)
    role_arn = _role_arn(call.body) if "RoleArn" in call.body else None
    if "RoleSessionName" in call.body and not _SESSION_NAME.fullmatch(
            _text(call.body, "RoleSessionName", max_chars=64)):
        raise InvalidParameterError("RoleSessionName must be 2 to 64 letters, digits or any of _+=,.@-")
    iam = call.iam
    if iam.credentials.web_identity is None:
        raise InvalidTokenError("No outside identity provider is configured, so no web identity token is accepted.",
                                code="InvalidIdentityToken")
    verified = iam.credentials.web_identity.verify(token, now=call.now)
    provider = next(p for p in iam.settings.web_identity if p.issuer.issuer == verified.issuer)
    # An outside token older than max_token_lifetime: no.
    iam.credentials.honoured_until(token, verified, provider, call.now)
    wanted = role_arn or provider.role
    role = iam.snapshot.role(wanted)
    refused = ("Not authorized to perform sts:AssumeRoleWithWebIdentity on resource: "
               f"{role.arn if role is not None else wanted}")
    if role is None:
        logger.info("sts AssumeRoleWithWebIdentity refused (request %s): no role %s", call.request_id, wanted)
        raise AccessDeniedError(refused)
    session, decision = iam.credentials.assume_role_with_web_identity(
        provider, verified, now=call.now, role=role.arn, request=call.request, source_ip=call.source_ip)
    if session is None or session.session_name is None:
        logger.info("sts AssumeRoleWithWebIdentity refused (request %s): %s", call.request_id, decision.message)
        raise AccessDeniedError(refused, decision=decision)
    duration = _duration(call.body, "DurationSeconds", maximum=min(role.max_session_duration,
                                                                    iam.settings.sts_max_duration),
                         why=f" (the role's maximum session duration is {role.max_session_duration} seconds)")
    tags = provider.session_tags(verified.claims)
    packed = packed_size(policy, tags, arns) if policy is not None or arns else None
    credential = iam.credentials.temporary.issue(kind="role", arn=role.arn, session_name=session.session_name,
                                                 now=call.now, duration=duration, tags=tags, source=provider.name,
                                                 context=session.extra_context, principal_id=role.id,
                                                 session_policy=_with_managed(call, policy, arns, role.account))
    logger.info("sts AssumeRoleWithWebIdentity: %s as %s for a token of %s (request %s)", credential.access_key_id,
                session.arn, provider.name, call.request_id)
    answer: dict[str, Any] = {"Credentials": _credentials(credential),
                              "AssumedRoleUser": {"Arn": session.arn, "AssumedRoleId": session.id},
                              "Provider": provider.name, "SubjectFromWebIdentityToken": verified.subject}
    audience = verified.claims.get("aud")
    if isinstance(audience, str):
        answer["Audience"] = audience
    if packed is not None:
        answer["PackedPolicySize"] = packed
    return Answer(answer)


def get_caller_identity(call: Call) -> Answer:
    """``{}`` -> who the caller is: ``UserId`` (``aws:userid``), ``Account`` and ``Arn``."""
    principal = call.principal()
    _fields(call.body, ())
    return Answer({"UserId": principal.id, "Account": principal.account, "Arn": principal.arn})


def revoke(call: Call) -> Answer:
    """``{AccessKeyId}`` -> the temporary credentials stop working everywhere at once."""
    principal = call.principal()
    _fields(call.body, ("AccessKeyId",))
    key_id = _text(call.body, "AccessKeyId", max_chars=32)
    if not _TEMPORARY_KEY_ID.fullmatch(key_id):
        raise InvalidParameterError("AccessKeyId must be a temporary access key id issued by this service (ASIA...).")
    # One answer whether the key is unknown, expired or not revocable by this caller: no probing for live keys.
    refused = (f"User: {principal.arn} is not authorized to perform: sts:RevokeCredentials on access key {key_id}, "
               "or the credentials have already expired or been revoked")
    temporary = call.iam.credentials.temporary.lookup(key_id)
    if temporary is None:
        raise AccessDeniedError(refused)
    if principal.access_key_id != key_id:
        decision = call.authorize(principal, "sts:RevokeCredentials", temporary.arn,
                                  resource_account=_account_of(temporary.arn))
        if not decision.allowed:
            logger.info("sts revoke refused for %s (request %s): %s", principal.arn, call.request_id,
                        decision.message)
            raise AccessDeniedError(refused, decision=decision)
    call.iam.credentials.temporary.revoke(key_id)
    logger.info("sts revoke: %s (of %s) by %s (request %s)", key_id, temporary.arn, principal.arn, call.request_id)
    return Answer({"AccessKeyId": key_id, "Revoked": True})


#: Path (below the mount point) -> operation.
OPERATIONS: Mapping[str, Callable[[Call], Answer]] = {
    "/login": login,
    "/logout": logout,
    "/GetSessionToken": get_session_token,
    "/AssumeRole": assume_role,
    "/AssumeRoleWithWebIdentity": assume_role_with_web_identity,
    "/GetCallerIdentity": get_caller_identity,
    "/revoke": revoke,
}
