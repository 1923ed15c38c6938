"""One IAM API call from read body to answer, for every shell: ``IAMService.handle``.

Sans-IO and synchronous (a shell runs it in a worker thread: a change takes the directory's write lock and reads
it whole). The steps, each refused in AWS's XML with IAM's code:

1. the form: ``POST`` with ``application/x-www-form-urlencoded`` parameters, ``Action`` one of ``ACTIONS``,
   ``Version=2010-05-08``; the parameters decoded by the action's members (botocore's ``iam`` model);
2. the caller: SigV4 for the signing name ``iam`` only, with the directory's keys and temporary credentials (a
   form post is what any web page can send cross-site, so no cookie and no bearer token counts here);
3. the decision: ``iam:<Action>`` on each ARN the action names (``_actions``), with the request's global keys and
   the action's own (``iam:PolicyARN``, ``iam:PermissionsBoundary``, ``aws:RequestTag/...``,
   ``aws:ResourceTag/...``), by the engine every request goes through, so IAM policies (boundaries, guardrails,
   ``${aws:username}``) decide who may administer whom;
4. the action: a read answers from the directory's records; a write runs inside ``SQLDirectory.change()`` (decided
   again there, on the records it changes), is validated whole and committed, and is in force in this process at
   once.

Every call is recorded by the gate (``iam_middleware.decisions``): who, which action on which ARN, the outcome.
Never a parameter: a password or a new key's secret never reaches a log.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from .._authn import SigV4Authenticator
from .._awsquery import (
    InvalidActionError,
    MissingActionError,
    ParameterError,
    aws_status,
    decode,
    error_document,
    form_parameters,
    response_document,
    xml_reply,
)
from .._exceptions import AccessDeniedError, IAMError, MissingCredentialError, ServiceUnavailableError
from .._iam import IAM
from ..directory.sql import InvalidInputError, SQLDirectory
from ..gate import Gate, Reply, RequestContext
from ._actions import ACTIONS, Action
from ._call import Call

__all__ = ["NAMESPACE", "SIGNING_NAME", "VERSION", "IAMService"]

logger = logging.getLogger("iam_middleware.iamapi")

#: The API version every call names (``Version=2010-05-08``).
VERSION = "2010-05-08"
#: The SigV4 signing name of AWS IAM: what boto3 and the AWS CLI sign IAM calls for.
SIGNING_NAME = "iam"
#: The namespace of IAM's answers.
NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"

_MAX_PARAMETERS = 1000
#: Members that name a user, group, role, policy or virtual MFA device, and their longest length: IAM's name
#: pattern, checked before anything is looked up.
_NAMES = {"UserName": 128, "NewUserName": 128, "GroupName": 128, "RoleName": 128, "PolicyName": 128,
          "VirtualMFADeviceName": 226}
_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)


class _Records:
    """The directory's records at its current revision, read whole once per revision (a read action costs one
    indexed row while nothing changes). Shared read-only by every call."""

    def __init__(self, directory: SQLDirectory) -> None:
        self.directory = directory
        self._cached: tuple[int, Mapping[str, Any]] | None = None
        self._lock = threading.Lock()

    def current(self) -> Mapping[str, Any]:
        revision = self.directory.revision()
        cached = self._cached
        if cached is not None and cached[0] == revision:
            return cached[1]
        with self._lock:
            # Read after the revision: the records are of this revision or a later one, never an earlier one.
            records = self.directory.records()
            self._cached = (revision, records)
            return records


class IAMService:
    """The IAM API over ``directory`` (a ``SQLDirectory``), its callers authenticated and authorized by ``iam``
    (the ``IAM`` serving that directory: ``SQLDirectoryReloader.iam``, kept current by the reloader, which takes
    this process's commits at once)."""

    def __init__(self, iam: IAM, directory: SQLDirectory, *, max_body_bytes: int = 256 * 1024) -> None:
        self.iam = iam
        self.directory = directory
        self.gate = Gate(iam, max_body_bytes=max_body_bytes)
        self._records = _Records(directory)

    def __repr__(self) -> str:
        return f"IAMService(directory={self.directory!r})"

    def handle(self, context: RequestContext, raw: bytes, content_type: str | None) -> Reply:
        """Answer one call whose body was read: IAM's XML answer, or the refusal in AWS's XML. Never raises."""
        try:
            if context.error is not None:
                raise context.error
            name, answer = self._answer(context, raw, content_type)
        except IAMError as error:
            logger.info("iam %s refused (request %s): %s %s", context.action or "call", context.request_id,
                        error.status_code, error.code)
            return self.refused(context, error)
        except SQLAlchemyError as exc:  # the database did not answer: nothing was changed, try again
            logger.warning("iam %s: the directory database failed (request %s): %s", context.action or "call",
                           context.request_id, type(exc).__name__)
            return self.refused(context, ServiceUnavailableError("The directory database cannot be reached; "
                                                                 "nothing was changed. Try again shortly."))
        except Exception:  # noqa: BLE001 - fail closed: nothing was changed, and no 500 tells anything
            logger.exception("iam %s failed closed (request %s)", context.action or "call", context.request_id)
            return self.refused(context, AccessDeniedError("The request could not be completed; nothing was "
                                                           "changed.", code="RequestFailed"))
        self.gate.log(context)
        return xml_reply(200, response_document(NAMESPACE, name, answer, context.request_id), context.request_id)

    def refused(self, context: RequestContext, error: IAMError) -> Reply:
        """A refusal, recorded by the gate like every refusal, in AWS's XML with IAM's status and code."""
        self.gate.refuse(context, error)
        status, code = aws_status(error)
        extra = [(n.lower(), v) for n, v in error.headers.items() if n.lower() in ("allow", "retry-after")]
        return xml_reply(status, error_document(NAMESPACE, status, code, error.message, context.request_id),
                         context.request_id, extra)

    # The steps -------------------------------------------------------------------------------------------------
    def _answer(self, context: RequestContext, raw: bytes, content_type: str | None,
                ) -> tuple[str, dict[str, Any] | None]:
        iam = self.iam
        request = context.request.with_body(raw)
        parameters = form_parameters(
            request, raw, content_type, get=False, max_parameters=_MAX_PARAMETERS,
            media_hint="Send IAM's parameters as application/x-www-form-urlencoded (UTF-8).",
            methods_hint="The IAM API takes POST.")
        name, action = _action(parameters)
        context.action = f"iam:{name}"
        params = decode(parameters, action.members, action=name)
        missing = [member for member in action.required if member not in params]
        if missing:
            raise ParameterError(f"{name} needs {', '.join(missing)}.")
        for member, longest in _NAMES.items():
            value = params.get(member)
            if value is not None and not (len(value) <= longest and _NAME.fullmatch(value)):
                # Also what keeps the directory's own markers (the root user's "<root_account>") out of reach.
                raise ParameterError(f"{member} must be 1 to {longest} of A-Z, a-z, 0-9 and +=,.@_- (IAM's "
                                     "names).")
        for member in action.unsupported:
            if params.get(member):
                raise InvalidInputError(f"{member} is not kept by this directory; leave it out.")
        verifier = iam.credentials.sigv4.for_service(SIGNING_NAME)
        if not verifier.recognizes(request):
            raise MissingCredentialError(f"Request is missing Authentication Token: sign {name} with AWS Signature "
                                         f"Version 4 for the signing name {SIGNING_NAME!r}.")
        # The key's use is recorded, as any other request's (GetAccessKeyLastUsed, the credential report).
        authenticator = SigV4Authenticator(iam.credentials, verifier, last_used=iam.last_used)
        principal = iam.authenticators.authenticate(request, now=context.now, authenticators=(authenticator,))
        if principal is None:  # pragma: no cover - a request the verifier recognizes yields a principal or raises
            raise MissingCredentialError("This API needs a request signed with an access key.")
        context.principal = principal
        call = Call(iam, principal, name, params, self._records.current(), request, context.now,
                    source_ip=context.source_ip, request_id=context.request_id)
        self._authorize(context, call, action)
        if action.check is not None:
            action.check(call)
        if not action.writes:
            return name, action.run(call)
        with self.directory.change() as draft:
            call.draft = draft
            call.records = draft.records
            self._authorize(context, call, action)  # again, on the records the change is made to
            answer = action.run(call)
        logger.info("iam %s by %s committed (request %s)", name, principal.arn, context.request_id)
        return name, answer

    def _authorize(self, context: RequestContext, call: Call, action: Action) -> None:
        """``iam:<Action>`` on each of the action's ARNs; the first that is not allowed refuses the call."""
        extra = action.context(call) if action.context is not None else None
        for resource in action.resources(call):
            context.resource = resource
            decision = self.iam.authorize(call.principal, f"iam:{call.action}", resource, extra, now=call.now,
                                          request=call.request, source_ip=call.source_ip)
            context.decision = decision
            context.outcome = decision.kind.value
            if not decision.allowed:
                raise AccessDeniedError(decision.message, decision=decision)


def _action(parameters: Mapping[str, str]) -> tuple[str, Action]:
    name = parameters.get("Action")
    if not name:
        raise MissingActionError("The request has no Action; see docs/iam-api.md for the actions this service "
                                 "takes.")
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidActionError(f"Could not find operation {name[:64]!r} for version {VERSION}: this service "
                                 "takes IAM's actions listed in docs/iam-api.md.")
    version = parameters.get("Version")
    if version is None:
        raise ParameterError(f"The request has no Version; send Version={VERSION}.", code="MissingParameter")
    if version != VERSION:
        raise ParameterError(f"Version must be {VERSION}.")
    return name, action
