"""The Query API's XML answers, in AWS STS's shapes: written here, never parsed.

Every text is escaped, and characters XML 1.0 cannot carry (control characters, lone surrogates) are replaced, so
no value (a caller's session name quoted in a message) can end an element or make the document unreadable. Element
names come from the operations' answers, which use AWS's member names; a name that is not a plain XML name is a bug
and raises rather than being written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["NAMESPACE", "error_document", "response_document"]

#: The namespace of AWS STS's 2011-06-15 API, which every answer of the Query API declares.
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def response_document(action: str, result: Mapping[str, Any], request_id: str) -> bytes:
    """``<{action}Response><{action}Result>…</{action}Result><ResponseMetadata><RequestId>…`` for an operation's
    answer (members that are None are left out, as AWS leaves out absent ones)."""
    inner = _element(f"{action}Result", result) + _element("ResponseMetadata", {"RequestId": request_id})
    return _document(f"{action}Response", inner)


def error_document(status: int, code: str, message: str, request_id: str) -> bytes:
    """``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>…</Code><Message>…</Message></Error>
    <RequestId>…</RequestId></ErrorResponse>``: the sender's fault below 500, the service's from 500."""
    error = {"Type": "Sender" if status < 500 else "Receiver", "Code": code, "Message": message}
    return _document("ErrorResponse", _element("Error", error) + _element("RequestId", request_id))


def _document(root: str, inner: str) -> bytes:
    _check(root)
    return f'<{root} xmlns="{NAMESPACE}">{inner}</{root}>'.encode()


def _element(name: str, value: Any) -> str:
    _check(name)
    if isinstance(value, Mapping):
        inner = "".join(_element(key, item) for key, item in value.items() if item is not None)
    elif isinstance(value, str):
        inner = escape(_NOT_XML.sub("\ufffd", value))
    elif isinstance(value, int) and not isinstance(value, bool):
        inner = str(value)
    else:
        raise TypeError(f"no XML form for a {type(value).__name__} (element {name})")
    return f"<{name}>{inner}</{name}>"


def _check(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not an XML element name of the Query API: {name[:64]!r}")
