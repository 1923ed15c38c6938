"""Temporary credentials (ASIA key id, secret, session token), issued by the token service, kept in shared state.

The record lives in the ``StateStore`` under the key id until it expires, so every worker and machine sees the same
credentials, and deleting the record revokes them everywhere at once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._exceptions import ServiceUnavailableError
from ._json import loads
from .state import StateStore, StateUnavailableError

__all__ = ["TemporaryCredential", "TemporaryCredentials"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class TemporaryCredential:
    """What an ASIA key stands for: whose session it is, until when, with which MFA facts and session policy.

    ``eq=False``: compared by identity, so nothing compares secrets with a short-circuiting ``==``.
    """

    access_key_id: str
    secret_access_key: str
    session_token: str
    kind: str  # "role" (AssumeRole*) or "user" (GetSessionToken)
    arn: str  # the role's ARN, or the user's ARN
    session_name: str
    issued_at: float
    expires_at: float
    mfa_time: float | None = None
    session_policy: str | None = None  # the policy document as JSON text
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str | None = None  # the ARN of the caller that obtained it
    #: Condition keys the credential carries for its whole life (a web identity's ``<provider>:sub``, ...).
    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: The id of the user or role at issue: the credential ends when the name is re-created with another id (the
    #: token service always sets it; without it the credential is bound by name only).
    principal_id: str | None = None
    #: The keys of ``tags`` a role session passes on to the sessions it assumes (AssumeRole's TransitiveTagKeys).
    transitive_tag_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"TemporaryCredential(access_key_id={self.access_key_id!r}, secret_access_key='********', "
                f"session_token='********', kind={self.kind!r}, arn={self.arn!r}, expires_at={self.expires_at!r})")

    def to_json(self) -> bytes:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["tags"] = dict(self.tags)
        data["context"] = dict(self.context)
        if not self.transitive_tag_keys:
            del data["transitive_tag_keys"]  # records without it stay readable by releases that predate the field
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TemporaryCredential | None:
        try:
            data = loads(raw)  # strict: a record in the shared state is input too
            data["tags"] = MappingProxyType(dict(data.get("tags") or {}))
            data["context"] = MappingProxyType(dict(data.get("context") or {}))
            data["transitive_tag_keys"] = tuple(data.get("transitive_tag_keys") or ())
            return cls(**data)
        except (ValueError, TypeError):
            return None


def _unavailable(verb: str) -> ServiceUnavailableError:
    return ServiceUnavailableError(f"temporary credentials cannot be {verb} right now (shared state unavailable); "
                                   "try again shortly")


class TemporaryCredentials:
    """Issue, look up and revoke temporary credentials in a ``StateStore``."""

    def __init__(self, store: StateStore, *, prefix: str = "iam:sts:") -> None:
        self._store = store
        self._prefix = prefix

    def issue(
        self,
        *,
        kind: str,
        arn: str,
        session_name: str,
        now: float,
        duration: float,
        mfa_time: float | None = None,
        session_policy: str | None = None,
        tags: Mapping[str, str] | None = None,
        source: str | None = None,
        context: Mapping[str, Any] | None = None,
        principal_id: str | None = None,
        transitive_tag_keys: tuple[str, ...] = (),
    ) -> TemporaryCredential:
        key_id = "ASIA" + "".join(secrets.choice(_ALPHABET) for _ in range(16))
        credential = TemporaryCredential(
            access_key_id=key_id,
            secret_access_key=_secret_key(),
            session_token=_session_token(),
            kind=kind, arn=arn, session_name=session_name, issued_at=now, expires_at=now + duration,
            mfa_time=mfa_time, session_policy=session_policy, tags=MappingProxyType(dict(tags or {})), source=source,
            context=MappingProxyType(dict(context or {})), principal_id=principal_id,
            transitive_tag_keys=transitive_tag_keys,
        )
        try:
            self._store.set(self._prefix + key_id, credential.to_json(), ttl=duration)
        except StateUnavailableError:
            raise _unavailable("issued") from None
        return credential

    def lookup(self, access_key_id: str) -> TemporaryCredential | None:
        """The live credential for a key id, or None. Raises ServiceUnavailableError if the store cannot answer."""
        try:
            raw = self._store.get(self._prefix + access_key_id)
        except StateUnavailableError:
            raise _unavailable("checked") from None
        return TemporaryCredential.from_json(raw) if raw is not None else None

    def revoke(self, access_key_id: str) -> None:
        try:
            self._store.delete(self._prefix + access_key_id)
        except StateUnavailableError:
            raise _unavailable("revoked") from None


#: AWS's secret access keys: 40 characters of base64's alphabet. Drawn so none starts with "-" or "/" and none holds
#: "=": safe as a command-line argument (argparse-style CLIs take "--secret VALUE") and in a URL or a header.
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_LEADING = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _secret_key() -> str:
    return secrets.choice(_LEADING) + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(39))


def _session_token() -> str:
    # 384 bits, letters and digits only: nothing a shell, a URL or a header could read differently.
    return "".join(secrets.choice(_LEADING) for _ in range(64))
