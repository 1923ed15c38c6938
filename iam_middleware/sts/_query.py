"""The token service's AWS Query API: AWS STS's own protocol at the service's root, so ``boto3.client("sts",
endpoint_url=...)``, botocore's credential providers and the AWS CLI obtain credentials from it unchanged
(docs/credentials.md, "The AWS STS Query API"; https://docs.aws.amazon.com/STS/latest/APIReference/welcome.html).

``POST /`` with an ``application/x-www-form-urlencoded`` body (``Action=AssumeRole&Version=2011-06-15&...``), or
``GET /?Action=GetCallerIdentity&...`` (a presigned URL), signed with SigV4 for the signing name ``sts``; answers
and refusals are XML in AWS's shapes. Translation only: each action becomes the JSON operation of the same name
(``_operations``), which authenticates, authorizes and decides as it does for JSON callers; its answer becomes
the XML document. Only SigV4 is taken here: a form post is what any web page can send cross-site, so the session
cookie (and a bearer token) never counts on this endpoint.

GET is taken for GetCallerIdentity only: the calls that issue credentials come as POST, so the SigV4 replay guard
(``settings.sigv4_replay_protection``, which spares idempotent methods) covers them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._authn import SigV4Authenticator
from .._awsquery import (
    InvalidActionError,
    MalformedQueryError,
    MissingActionError,
    aws_status,
    form_parameters,
    xml_reply,
)
from .._exceptions import AccessDeniedError, IAMError, InvalidTokenError, MissingCredentialError
from .._request import RequestView
from ..authenticators._jwt import TokenExpiredError
from ..gate import Gate, Reply, RequestContext
from ._errors import InvalidParameterError, MissingParameterError
from ._handle import MethodNotAllowedError
from ._operations import (
    Answer,
    Call,
    assume_role,
    assume_role_with_web_identity,
    get_caller_identity,
    get_session_token,
)
from ._xml import error_document, response_document

__all__ = ["ACTIONS", "SIGNING_NAME", "VERSION", "InvalidActionError", "MalformedQueryError", "MissingActionError",
           "handle_query", "query_refused"]

logger = logging.getLogger("iam_middleware.sts")

#: The API version every Query call names (``Version=2011-06-15``).
VERSION = "2011-06-15"
#: The SigV4 signing name of AWS STS: what boto3 and the AWS CLI sign Query calls for.
SIGNING_NAME = "sts"

_MAX_PARAMETERS = 256  # 50 tags (two each), 50 transitive keys and the rest, with room to spare
_MAX_NAME = 64
_MEMBER = re.compile(r"member\.([1-9][0-9]{0,2})(?:\.([A-Za-z]+))?")
# Parameter kinds: a string, a whole number, a list of strings (``X.member.N``), a list of tags
# (``X.member.N.Key`` and ``.Value``).
_STRING, _INTEGER, _STRINGS, _TAGS = "string", "integer", "strings", "tags"
_ARNS = "arns"  # a list of policy descriptors (``X.member.N.arn``), as the operations take ``[{"arn": ...}]``


@dataclass(frozen=True, slots=True)
class Action:
    """One Query action: the JSON operation it becomes, its parameters (Query name -> the operation's field and the
    parameter's kind), whether it is signed, and whether GET may carry it. ``required`` names the parameters the
    operation cannot go without that it knows by another name, so that a refusal names them as AWS clients send
    them (the operation checks them all the same)."""

    operation: Callable[[Call], Answer]
    parameters: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    signed: bool = True
    get: bool = False


def _same(**kinds: str) -> dict[str, tuple[str, str]]:
    return {name: (name, kind) for name, kind in kinds.items()}


#: Action -> how it is translated. Parameter names and kinds are those of botocore's STS service model.
ACTIONS: Mapping[str, Action] = {
    "GetCallerIdentity": Action(get_caller_identity, get=True),
    "GetSessionToken": Action(get_session_token, {"DurationSeconds": ("duration", _INTEGER),
                                                  "SerialNumber": ("SerialNumber", _STRING),
                                                  "TokenCode": ("code", _STRING)}, required=("TokenCode",)),
    "AssumeRole": Action(assume_role, _same(
        RoleArn=_STRING, RoleSessionName=_STRING, DurationSeconds=_INTEGER, Policy=_STRING, Tags=_TAGS,
        TransitiveTagKeys=_STRINGS, SourceIdentity=_STRING, ExternalId=_STRING, SerialNumber=_STRING,
        TokenCode=_STRING, PolicyArns=_ARNS)),
    "AssumeRoleWithWebIdentity": Action(assume_role_with_web_identity, _same(
        WebIdentityToken=_STRING, RoleArn=_STRING, RoleSessionName=_STRING, DurationSeconds=_INTEGER,
        Policy=_STRING, PolicyArns=_ARNS),
        signed=False),
}


def handle_query(gate: Gate, context: RequestContext, raw: bytes, content_type: str | None) -> Reply:
    """Run one Query API call whose body was read: the XML answer, or the refusal in AWS's XML. Never raises."""
    iam = gate.iam
    try:
        if context.error is not None:
            raise context.error
        request = context.request.with_body(raw)
        parameters = _parameters(request, raw, content_type)
        name, action = _action(parameters, request.method)
        verifier = iam.credentials.sigv4.for_service(SIGNING_NAME)
        if action.signed and not verifier.recognizes(request):
            raise MissingCredentialError(f"Request is missing Authentication Token: sign {name} with AWS Signature "
                                         f"Version 4 for the signing name {SIGNING_NAME!r}.")
        # The keys that sign here are tracked as on any route: GetAccessKeyLastUsed shows the service "sts".
        signer = SigV4Authenticator(iam.credentials, verifier, last_used=iam.last_used)
        call = Call(iam, request, _body(name, action, parameters), now=context.now, source_ip=context.source_ip,
                    request_id=context.request_id, authenticators=(signer,))
        answer = action.operation(call)
    except IAMError as error:
        logger.info("sts Query %s refused (request %s): %s %s", context.path, context.request_id, error.status_code,
                    error.code)
        return query_refused(gate, context, error)
    except Exception:  # noqa: BLE001 - fail closed: nothing was issued, and no 500 tells anything
        logger.exception("sts Query %s failed closed (request %s)", context.path, context.request_id)
        return query_refused(gate, context, AccessDeniedError(
            "The request could not be completed; nothing was issued.", code="RequestFailed"))
    return _reply(200, response_document(name, answer.body, context.request_id), context.request_id)


def query_refused(gate: Gate, context: RequestContext, error: IAMError) -> Reply:
    """A refusal of a Query call, recorded by the gate like every refusal, in AWS's XML with AWS's status and code
    (``_aws_error``), never cached."""
    gate.refuse(context, error)
    status, code = _aws_error(error)
    extra = [(name.lower(), value) for name, value in error.headers.items() if name.lower() in ("allow", "retry-after")]
    return _reply(status, error_document(status, code, error.message, context.request_id), context.request_id, extra)


def _aws_error(error: IAMError) -> tuple[int, str]:
    """The status and code AWS STS answers for a refusal: an outside token that does not verify is 400
    ``InvalidIdentityToken`` (or ``ExpiredTokenException``); the rest as every Query service answers
    (``aws_status``: never 401, a signature's own code, a failed one-time code is ``AccessDenied``)."""
    if isinstance(error, TokenExpiredError):
        return 400, "ExpiredTokenException"
    if isinstance(error, InvalidTokenError):  # no bearer token reaches this API: the token is a web identity's
        return 400, "InvalidIdentityToken"
    return aws_status(error)


def _reply(status: int, payload: bytes, request_id: str, extra: list[tuple[str, str]] | None = None) -> Reply:
    return xml_reply(status, payload, request_id, extra or ())


def _parameters(request: RequestView, raw: bytes, content_type: str | None) -> dict[str, str]:
    """The call's parameters: a POST's form body, or a GET's query (without a presigned URL's ``X-Amz-*``)."""
    return form_parameters(
        request, raw, content_type, get=True, max_parameters=_MAX_PARAMETERS,
        media_hint="Send the Query API's parameters as application/x-www-form-urlencoded (UTF-8); the JSON "
                   "operations are at /<Operation>.",
        methods_hint="The Query API takes POST (and GET for GetCallerIdentity).")


def _action(parameters: Mapping[str, str], method: str) -> tuple[str, Action]:
    name = parameters.get("Action")
    if not name:
        raise MissingActionError("The request has no Action; this service takes " + ", ".join(ACTIONS) + ".")
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidActionError(f"Could not find operation {name[:_MAX_NAME]!r} for version {VERSION}; this "
                                 "service takes " + ", ".join(ACTIONS) + ".")
    version = parameters.get("Version")
    if version is None:
        raise MissingParameterError(f"The request has no Version; send Version={VERSION}.")
    if version != VERSION:
        raise InvalidParameterError(f"Version must be {VERSION}.")
    if method == "GET" and not action.get:
        raise MethodNotAllowedError(f"Send {name} as a POST; GET is taken for GetCallerIdentity only.",
                                    headers={"Allow": "POST"})
    return name, action


def _body(name: str, action: Action, parameters: Mapping[str, str]) -> dict[str, Any]:
    """The operation's body for a call's parameters: ``X.member.N`` lists gathered, whole numbers read."""
    missing = [required for required in action.required if required not in parameters]
    if missing:
        raise MissingParameterError(f"{name} needs {', '.join(missing)}.")
    body: dict[str, Any] = {}
    lists: dict[str, dict[int, Any]] = {}
    for parameter, value in parameters.items():
        if parameter in ("Action", "Version"):
            continue
        head, _, rest = parameter.partition(".")
        spec = action.parameters.get(head)
        if spec is None:
            raise InvalidParameterError(f"{parameter[:_MAX_NAME]!r} is not a parameter of {name}; it takes: "
                                        f"{', '.join(action.parameters) or 'none'}.")
        target, kind = spec
        if kind in (_STRING, _INTEGER):
            if rest:
                raise InvalidParameterError(f"{head} is a single value, not a list.")
            body[target] = _integer(head, value) if kind == _INTEGER else value
            continue
        items = lists.setdefault(head, {})
        if not rest:
            if value:
                raise InvalidParameterError(f"{head} is a list: send {head}.member.1, {head}.member.2, ...")
            continue  # "Tags=": the empty list, as botocore sends one
        member = _MEMBER.fullmatch(rest)
        if member is None or (member.group(2) is None) != (kind == _STRINGS):
            form = f"{head}.member.N.Key and {head}.member.N.Value" if kind == _TAGS else f"{head}.member.N"
            form = f"{head}.member.N.arn" if kind == _ARNS else form
            raise InvalidParameterError(f"{parameter[:_MAX_NAME]!r} is not a member of {head}: send {form}.")
        index = int(member.group(1))
        if kind == _STRINGS:
            items[index] = value
        else:
            items.setdefault(index, {})[member.group(2)] = value
    for head, items in lists.items():
        if sorted(items) != list(range(1, len(items) + 1)):
            raise InvalidParameterError(f"The members of {head} must be numbered from 1 without gaps.")
        body[action.parameters[head][0]] = [items[index] for index in range(1, len(items) + 1)]
    return body


def _integer(name: str, value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise InvalidParameterError(f"{name} must be a whole number.")
    return int(value)
