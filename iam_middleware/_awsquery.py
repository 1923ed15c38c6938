"""AWS's Query protocol, shared by the token service (``sts``) and the IAM API (``iamapi``): reading a call's
form, decoding its parameters (``X.member.N`` lists, ``X.member.N.Key`` structures), writing the XML answers and
refusals in AWS's shapes, and AWS's status for a refusal.

Sans-IO: the shells read the body (bounded by the gate) and send the ``Reply``. XML is written, never parsed: every
text is escaped, characters XML 1.0 cannot carry (control characters, lone surrogates) are replaced, and an element
name that is not a plain XML name is a bug that raises rather than being written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from ._exceptions import (
    AuthenticationError,
    BadRequestError,
    IAMError,
    MethodNotAllowedError,
    OTPError,
    UnsupportedMediaTypeError,
)
from ._request import RequestView
from .gate import Reply

__all__ = [
    "BOOLEAN",
    "INTEGER",
    "STRING",
    "InvalidActionError",
    "ListOf",
    "MalformedQueryError",
    "MissingActionError",
    "ParameterError",
    "Struct",
    "aws_status",
    "decode",
    "error_document",
    "form_parameters",
    "response_document",
    "xml_reply",
]

_MAX_NAME = 64
_MEMBER = re.compile(r"member\.([1-9][0-9]{0,3})")
_XML_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class MissingActionError(BadRequestError):
    """A Query call without ``Action``."""

    code = "MissingAction"


class InvalidActionError(BadRequestError):
    """A Query call whose ``Action`` is not one this service takes."""

    code = "InvalidAction"


class MalformedQueryError(BadRequestError):
    """Parameters that cannot be read as one form: not ASCII, broken pairs, a name given twice, or a POST that
    also carries a query."""

    code = "MalformedQueryString"


class ParameterError(BadRequestError):
    """A parameter that is not the action's, of the wrong form, or missing (AWS's ``ValidationError``)."""

    code = "ValidationError"


# Reading the form ------------------------------------------------------------------------------------------------
def form_parameters(request: RequestView, raw: bytes, content_type: str | None, *, get: bool, max_parameters: int,
                    media_hint: str, methods_hint: str) -> dict[str, str]:
    """A call's parameters: a POST's form body, or (``get``) a GET's query without a presigned URL's ``X-Amz-*``.
    A name given twice, a body that is not a UTF-8 form and a POST that also carries a query are refused."""
    if request.method == "POST":
        if request.query_string:
            raise MalformedQueryError("A POST carries its parameters in the form body only, not in the query string.")
        media_type, _, options = (content_type or "").partition(";")
        charset = options.strip().lower().removeprefix("charset=").strip('"')
        if raw and (media_type.strip().lower() != "application/x-www-form-urlencoded"
                    or charset not in ("", "utf-8")):
            raise UnsupportedMediaTypeError(media_hint)
        pairs = _pairs(raw, max_parameters)
    elif request.method == "GET" and get:
        pairs = [(name, value) for name, value in _pairs(request.query_string, max_parameters)
                 if not name.startswith("X-Amz-")]
    else:
        allowed = "GET, POST" if get else "POST"
        raise MethodNotAllowedError(methods_hint, headers={"Allow": allowed})
    parameters: dict[str, str] = {}
    for name, value in pairs:
        if name in parameters:
            raise MalformedQueryError(f"The parameter {name[:_MAX_NAME]!r} is given more than once.")
        parameters[name] = value
    return parameters


def _pairs(data: bytes, max_parameters: int) -> list[tuple[str, str]]:
    try:
        return parse_qsl(data.decode("ascii"), keep_blank_values=True, strict_parsing=True, encoding="utf-8",
                         errors="strict", max_num_fields=max_parameters)
    except ValueError:  # UnicodeDecodeError included; the cause may quote the caller's bytes, so it is not kept
        raise MalformedQueryError(f"The parameters are not a form of at most {max_parameters} name=value pairs "
                                  "(percent-encoded UTF-8).") from None


# Decoding parameters ---------------------------------------------------------------------------------------------
#: Scalar kinds: text as sent, a whole number, ``true``/``false``.
STRING, INTEGER, BOOLEAN = "string", "integer", "boolean"


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list, sent as ``Name.member.1``, ``Name.member.2``, ... (``Name=`` alone: the empty list)."""

    member: Kind


@dataclass(frozen=True, slots=True)
class Struct:
    """A structure, its members sent as ``Prefix.Member``."""

    members: Mapping[str, Kind]


Kind = str | ListOf | Struct


def decode(parameters: Mapping[str, str], members: Mapping[str, Kind], *, action: str) -> dict[str, Any]:
    """The values of a call's parameters (``Action`` and ``Version`` left out) by the action's member kinds, as the
    Query protocol flattens them: ``Tags.member.1.Key=team`` is ``{"Tags": [{"Key": "team"}]}``."""
    flat = {name: value for name, value in parameters.items() if name not in ("Action", "Version")}
    return _struct(flat, members, action, "")


def _struct(flat: Mapping[str, str], members: Mapping[str, Kind], action: str, prefix: str) -> dict[str, Any]:
    grouped: dict[str, dict[str, str]] = {}
    for name, value in flat.items():
        head, _, rest = name.partition(".")
        if head not in members:
            where = f"{prefix}{head}"[:_MAX_NAME]
            raise ParameterError(f"{where!r} is not a parameter of {action}; it takes: "
                                 f"{', '.join(members) or 'none'}.")
        grouped.setdefault(head, {})[rest] = value
    return {head: _value(items, members[head], action, f"{prefix}{head}") for head, items in grouped.items()}


def _value(items: Mapping[str, str], kind: Kind, action: str, where: str) -> Any:
    if isinstance(kind, str):
        if set(items) != {""}:
            raise ParameterError(f"{where} is a single value, not a list or a structure.")
        return _scalar(items[""], kind, where)
    if isinstance(kind, Struct):
        if "" in items:
            raise ParameterError(f"{where} is a structure: send its members as {where}.<Member>.")
        return _struct(items, kind.members, action, f"{where}.")
    if "" in items:
        if items[""] or len(items) > 1:
            raise ParameterError(f"{where} is a list: send {where}.member.1, {where}.member.2, ...")
        return []  # "Tags=": the empty list, as botocore sends one
    numbered: dict[int, dict[str, str]] = {}
    for rest, value in items.items():
        head, dot, tail = rest.partition(".")
        number, _, tail = tail.partition(".")
        member = _MEMBER.fullmatch(f"{head}{dot}{number}")
        if member is None:
            raise ParameterError(f"{f'{where}.{rest}'[:_MAX_NAME]!r} is not a member of {where}: send "
                                 f"{where}.member.N.")
        numbered.setdefault(int(member.group(1)), {})[tail] = value
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ParameterError(f"The members of {where} must be numbered from 1 without gaps.")
    return [_value(numbered[n], kind.member, action, f"{where}.member.{n}") for n in range(1, len(numbered) + 1)]


def _scalar(value: str, kind: str, where: str) -> Any:
    if kind == INTEGER:
        if not (value.isascii() and value.lstrip("-").isdigit() and len(value) <= 9):
            raise ParameterError(f"{where} must be a whole number.")
        return int(value)
    if kind == BOOLEAN:
        if value not in ("true", "false"):
            raise ParameterError(f"{where} must be true or false.")
        return value == "true"
    return value


# Writing XML -----------------------------------------------------------------------------------------------------
def response_document(namespace: str, action: str, result: Mapping[str, Any] | None, request_id: str) -> bytes:
    """``<{action}Response><{action}Result>…</{action}Result><ResponseMetadata><RequestId>…`` for an answer
    (``result`` None: an action that answers nothing, as IAM's writes do). Members that are None are left out,
    as AWS leaves out absent ones; a list is written as ``<member>`` elements, a bool as ``true``/``false``."""
    inner = "" if result is None else _element(f"{action}Result", result)
    inner += _element("ResponseMetadata", {"RequestId": request_id})
    return _document(namespace, f"{action}Response", inner)


def error_document(namespace: str, status: int, code: str, message: str, request_id: str) -> bytes:
    """``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>…</Code><Message>…</Message></Error>
    <RequestId>…</RequestId></ErrorResponse>``: the sender's fault below 500, the service's from 500."""
    error = {"Type": "Sender" if status < 500 else "Receiver", "Code": code, "Message": message}
    return _document(namespace, "ErrorResponse", _element("Error", error) + _element("RequestId", request_id))


def _document(namespace: str, root: str, inner: str) -> bytes:
    _check(root)
    return f'<{root} xmlns="{escape(namespace, {chr(34): "&quot;"})}">{inner}</{root}>'.encode()


def _element(name: str, value: Any) -> str:
    _check(name)
    if isinstance(value, Mapping):
        inner = "".join(_element(key, item) for key, item in value.items() if item is not None)
    elif isinstance(value, str):
        inner = escape(_NOT_XML.sub("\ufffd", value))
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    elif isinstance(value, int):
        inner = str(value)
    elif isinstance(value, Sequence):
        inner = "".join(_element("member", item) for item in value)
    else:
        raise TypeError(f"no XML form for a {type(value).__name__} (element {name})")
    return f"<{name}>{inner}</{name}>"


def _check(name: str) -> None:
    if not _XML_NAME.fullmatch(name):
        raise ValueError(f"not an XML element name of the Query API: {name[:64]!r}")


# Answers ---------------------------------------------------------------------------------------------------------
def aws_status(error: IAMError) -> tuple[int, str]:
    """The status and code AWS's Query services answer for a refusal: never 401; a credential that does not verify
    is 403 with the signature's code (400 for an incomplete or expired signature), a one-time code that fails is
    ``AccessDenied``. Every other refusal keeps its own status and code."""
    if isinstance(error, OTPError):
        return 403, "AccessDenied"
    if isinstance(error, AuthenticationError):
        return (400 if error.code in ("IncompleteSignature", "RequestExpired") else 403), error.code
    return error.status_code, error.code


def xml_reply(status: int, payload: bytes, request_id: str, extra: Sequence[tuple[str, str]] = ()) -> Reply:
    """An XML answer: botocore reads the request id from ``x-amzn-requestid``; nothing is cached on the way (an
    answer may carry a secret)."""
    headers = [("content-type", "text/xml"), ("content-length", str(len(payload))), ("cache-control", "no-store"),
               ("x-amzn-requestid", request_id), ("x-request-id", request_id), *extra]
    return Reply(status, headers, payload)
