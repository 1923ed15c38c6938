"""The Query API's XML answers, in AWS STS's shapes: the shared writer (``iam_middleware._awsquery``) with STS's
namespace. Every text is escaped and characters XML 1.0 cannot carry are replaced; an element name that is not a
plain XML name is a bug and raises rather than being written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _awsquery

__all__ = ["NAMESPACE", "error_document", "response_document"]

#: The namespace of AWS STS's 2011-06-15 API, which every answer of the Query API declares.
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


def response_document(action: str, result: Mapping[str, Any], request_id: str) -> bytes:
    """``<{action}Response><{action}Result>…</{action}Result><ResponseMetadata><RequestId>…`` for an operation's
    answer (members that are None are left out, as AWS leaves out absent ones)."""
    return _awsquery.response_document(NAMESPACE, action, result, request_id)


def error_document(status: int, code: str, message: str, request_id: str) -> bytes:
    """``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>…</Code><Message>…</Message></Error>
    <RequestId>…</RequestId></ErrorResponse>``: the sender's fault below 500, the service's from 500."""
    return _awsquery.error_document(NAMESPACE, status, code, message, request_id)
