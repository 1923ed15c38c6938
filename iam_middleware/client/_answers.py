"""Reading the token service's JSON answers: the object of a success, its error as ``TokenServiceError``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from ._credentials import Credentials
from ._errors import TokenServiceError

__all__ = ["answer_of", "credentials_from"]


def credentials_from(answer: Mapping[str, Any]) -> Credentials:
    """The ``Credentials`` of a GetSessionToken or AssumeRole* answer."""
    try:
        found = answer["Credentials"]
        expires = datetime.fromisoformat(found["Expiration"])
        if expires.tzinfo is None:
            raise ValueError("an Expiration without its time zone")
        return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"],
                           expires.timestamp())
    except (KeyError, TypeError, ValueError):
        raise TokenServiceError(200, "InvalidResponse",
                                "The token service's answer holds no valid Credentials.") from None


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 200 answer; anything else raises ``TokenServiceError`` with the service's code."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code == 200 and isinstance(answer, dict):
        return answer
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        raise TokenServiceError(response.status_code, answer["error"], str(answer.get("message", "")),
                                request_id=answer.get("request_id"))
    raise TokenServiceError(response.status_code, "InvalidResponse",
                            f"The token service answered HTTP {response.status_code} without its JSON error.")
