"""Session tags and source identity of an AssumeRole call, by AWS's rules (docs/credentials.md, "Session tags and
source identity"; https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html and
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access_monitor.html):

- ``Tags``: at most 50 (counting the transitive tags a calling role session passes on); keys of 1 to 128 and values
  of up to 256 letters, digits, spaces or ``_.:/=+-@``. Keys are case-insensitive, so two keys that differ only by
  case are refused, and none may start with ``aws:``. ``TransitiveTagKeys`` name keys of ``Tags``.
- Role chaining: the transitive tags of the calling session pass to the new one, stay transitive, and cannot be
  changed by a tag of the request.
- ``SourceIdentity`` (2 to 64 of ``\\w+=,.@-``, not starting with ``aws:``) is set once: a session assumed by a role
  session that has one keeps it, and asking for another one is refused.
- The session policy and the session tags, packed together, must fit one limit: ``PackedPolicySize`` is the
  percentage used; past 100 the call is refused with ``PackedPolicyTooLarge``.
- ``PolicyArns`` (managed session policies, https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html
  #policies_session): at most 10 ARNs of the directory's named policies, in the role's account; with the inline
  ``Policy`` they are the session's policies, which its permissions are intersected with. Their ARNs count in the
  packed size, and their text and the inline policy's together are at most 2,048 characters.

The rules only read and check; which trust-policy permissions the result needs (``sts:TagSession``,
``sts:SetSourceIdentity``) is ``SessionAttributes.actions``, decided by the AssumeRole operation.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .. import _json
from .._temporary import TemporaryCredential
from ..policy import Policy
from ._errors import InvalidParameterError, PackedPolicyTooLargeError

__all__ = ["SOURCE_IDENTITY_KEY", "SessionAttributes", "managed_session_policies", "packed_size", "policy_arns",
           "session_attributes", "session_policy_text"]

#: Where a credential keeps its source identity: its condition keys (``aws:SourceIdentity`` on every request).
SOURCE_IDENTITY_KEY = "aws:sourceidentity"

_MAX_TAGS = 50
_MAX_KEY = 128
_MAX_VALUE = 256
_TAG_SYMBOLS = frozenset("_.:/=+-@")
_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
#: The packed budget, in bytes of the compressed policy and tags: a session policy of the largest size AWS allows
#: (2,048 characters) always fits, whatever it holds, and leaves room for tags.
_PACKED_BUDGET = 4096
_MAX_POLICY_ARNS = 10
_POLICY_ARN_CHARS = (20, 2048)
#: AWS's limit on the plaintext of the inline and managed session policies together.
_MAX_SESSION_POLICY_CHARS = 2048
_CURRENT_VERSION = "2012-10-17"


@dataclass(frozen=True, slots=True)
class SessionAttributes:
    """What a new role session carries besides its role's own attributes.

    ``tags`` are its session tags (inherited transitive ones and the requested ones), ``transitive`` the keys among
    them it passes on, ``source_identity`` its source identity; ``requested`` are the tags of this very request
    (``aws:RequestTag/*``) and ``requested_transitive`` its ``TransitiveTagKeys``.
    """

    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    transitive: tuple[str, ...] = ()
    source_identity: str | None = None
    requested: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    requested_transitive: tuple[str, ...] = ()
    requested_source_identity: str | None = None

    def actions(self) -> tuple[str, ...]:
        """The permissions besides ``sts:AssumeRole`` the role's trust policy must grant: ``sts:TagSession`` for a
        session with session tags, ``sts:SetSourceIdentity`` for one with a source identity (inherited ones too)."""
        return ((("sts:TagSession",) if self.tags else ())
                + (("sts:SetSourceIdentity",) if self.source_identity is not None else ()))

    def context(self) -> dict[str, Any]:
        """The request's condition keys for the trust policy: ``aws:RequestTag/<key>``, ``aws:TagKeys``,
        ``sts:TransitiveTagKeys`` and ``sts:SourceIdentity``."""
        context: dict[str, Any] = {f"aws:RequestTag/{key}": value for key, value in self.requested.items()}
        if self.requested:
            context["aws:TagKeys"] = list(self.requested)
        if self.requested_transitive:
            context["sts:TransitiveTagKeys"] = list(self.requested_transitive)
        if self.requested_source_identity is not None:
            context["sts:SourceIdentity"] = self.requested_source_identity
        return context


def session_attributes(body: Mapping[str, Any], caller: TemporaryCredential | None) -> SessionAttributes:
    """The attributes an AssumeRole body asks for, merged with what the calling role session passes on
    (``caller``: its temporary credential, or None when the caller is not a role session)."""
    requested = _tags(body.get("Tags", []))
    requested_transitive = _keys(body.get("TransitiveTagKeys", []))
    folded = {key.lower(): key for key in requested}
    strays = [key for key in requested_transitive if key.lower() not in folded]
    if strays:
        raise InvalidParameterError(f"TransitiveTagKeys must name keys of Tags; not in Tags: {_names(strays)}.")
    inherited: dict[str, str] = {}
    inherited_source: str | None = None
    if caller is not None:
        inherited = {key: caller.tags[key] for key in caller.transitive_tag_keys if key in caller.tags}
        found = caller.context.get(SOURCE_IDENTITY_KEY)
        inherited_source = found if isinstance(found, str) else None
    clashes = [key for key in inherited if key.lower() in folded]
    if clashes:
        raise InvalidParameterError("A tag of the request has the key of a transitive tag of the calling session, "
                                    f"which cannot be changed in a role chain: {_names(clashes)}.")
    tags = {**inherited, **requested}
    if len(tags) > _MAX_TAGS:
        raise InvalidParameterError(f"A session has at most {_MAX_TAGS} session tags, counting the "
                                    f"{len(inherited)} transitive tags of the calling session.")
    source = _source_identity(body["SourceIdentity"]) if "SourceIdentity" in body else None
    if inherited_source is not None and source is not None and source != inherited_source:
        raise InvalidParameterError("SourceIdentity cannot be changed once set: the calling session's source "
                                    "identity passes to the new session as it is.")
    transitive = (*inherited, *(folded[key.lower()] for key in requested_transitive))
    return SessionAttributes(
        tags=MappingProxyType(tags), transitive=tuple(dict.fromkeys(transitive)),
        source_identity=inherited_source or source, requested=MappingProxyType(requested),
        requested_transitive=requested_transitive, requested_source_identity=source)


def packed_size(policy: str | None, tags: Mapping[str, str], policy_arns: Sequence[str] = ()) -> int:
    """The percentage of the packed limit the session policy, the managed session policies' ARNs and the session
    tags use (AWS's ``PackedPolicySize``); past 100, ``PackedPolicyTooLargeError``."""
    parts: list[Any] = [policy, sorted(tags.items())]
    if policy_arns:
        parts.append(list(policy_arns))
    packed = zlib.compress(json.dumps(parts, separators=(",", ":")).encode(), 9)
    percent = math.ceil(100 * len(packed) / _PACKED_BUDGET)
    if percent > 100:
        raise PackedPolicyTooLargeError(f"The session policy and session tags packed together use {percent}% of "
                                        "the limit; send a shorter policy or fewer tags.")
    return percent


def policy_arns(body: Mapping[str, Any], inline: str | None) -> tuple[str, ...]:
    """The ARNs of ``PolicyArns`` (``[{"arn": ...}]``, at most 10, a repeat counted once), checked as text: what
    they name is found by ``managed_session_policies`` once the caller may assume the role."""
    raw = body.get("PolicyArns", [])
    if not isinstance(raw, list) or len(raw) > _MAX_POLICY_ARNS:
        raise InvalidParameterError(f"PolicyArns must be a list of at most {_MAX_POLICY_ARNS} objects {{arn}}.")
    arns: dict[str, None] = {}
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != {"arn"}:
            raise InvalidParameterError("Each member of PolicyArns must be an object with exactly arn.")
        arn = entry["arn"]
        if not isinstance(arn, str) or not _POLICY_ARN_CHARS[0] <= len(arn) <= _POLICY_ARN_CHARS[1]:
            raise InvalidParameterError(f"A policy ARN is {_POLICY_ARN_CHARS[0]} to {_POLICY_ARN_CHARS[1]} "
                                        "characters.")
        arns[arn] = None
    plaintext = len(inline or "") + sum(map(len, arns))
    if plaintext > _MAX_SESSION_POLICY_CHARS:
        raise InvalidParameterError(f"Policy and PolicyArns together are {plaintext} characters; at most "
                                    f"{_MAX_SESSION_POLICY_CHARS} are allowed.")
    return tuple(arns)


def managed_session_policies(arns: Sequence[str], policies: Mapping[str, Policy], *, partition: str,
                             account: str) -> tuple[tuple[str, Policy], ...]:
    """(ARN, policy) of each managed session policy: a named policy of the directory, in the role's ``account``
    (``arn:<partition>:iam::<account>:policy/<name>``; the directory's policies have no path)."""
    prefix = f"arn:{partition}:iam::{account}:policy/"
    found: list[tuple[str, Policy]] = []
    for arn in arns:
        name = arn[len(prefix):] if arn.startswith(prefix) else ""
        policy = policies.get(name) if name and "/" not in name else None
        if policy is None:
            raise InvalidParameterError(f"Policy {arn} does not exist: a managed session policy is a policy of the "
                                        f"directory, named {prefix}<name>.")
        found.append((arn, policy))
    return tuple(found)


def session_policy_text(inline: str | None, managed: Sequence[tuple[str, Policy]]) -> str | None:
    """The one policy a session keeps for its inline and managed session policies: every statement of each, as
    evaluating them together would (any statement's Allow counts, any Deny wins). A document of an older version
    keeps its ``${...}`` as literal text (written ``${$}{...}``), repeated ``Sid``s are numbered; None without any."""
    if not managed:
        return inline
    documents: list[Mapping[str, Any]] = [_json.loads(inline)] if inline is not None else []
    documents.extend(policy.document for _, policy in managed)
    statements: list[dict[str, Any]] = []
    sids: set[str] = set()
    for document in documents:
        listed = document.get("Statement", [])
        for raw in (listed if isinstance(listed, list) else [listed]):
            statement = _plain(raw)
            if document.get("Version") != _CURRENT_VERSION:
                statement = _literal_variables(statement)
            sid = statement.get("Sid")
            if isinstance(sid, str) and sid:
                unique, n = sid, 2
                while unique in sids:
                    unique, n = f"{sid}{n}", n + 1
                sids.add(unique)
                statement["Sid"] = unique
            statements.append(statement)
    return json.dumps({"Version": _CURRENT_VERSION, "Statement": statements}, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """A policy document's value as plain JSON types (the compiled policy keeps read-only views)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _literal_variables(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement of a policy without ``Version: 2012-10-17``, where ``${...}`` is text, for a 2012-10-17 policy:
    every ``$`` of its resources and condition values written as ``${$}``."""

    def literal(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("$", "${$}")
        if isinstance(value, list):
            return [literal(item) for item in value]
        return value

    for element in ("Resource", "NotResource"):
        if element in statement:
            statement[element] = literal(statement[element])
    conditions = statement.get("Condition")
    if isinstance(conditions, dict):
        statement["Condition"] = {operator: ({key: literal(value) for key, value in pairs.items()}
                                             if isinstance(pairs, dict) else pairs)
                                  for operator, pairs in conditions.items()}
    return statement


def _tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, list) or len(raw) > _MAX_TAGS:
        raise InvalidParameterError(f"Tags must be a list of at most {_MAX_TAGS} objects {{Key, Value}}.")
    tags: dict[str, str] = {}
    folded: set[str] = set()
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != {"Key", "Value"}:
            raise InvalidParameterError("Each tag must be an object with exactly Key and Value.")
        key, value = entry["Key"], entry["Value"]
        if not (isinstance(key, str) and 0 < len(key) <= _MAX_KEY and _tag_text(key)):
            raise InvalidParameterError(f"A tag key must be 1 to {_MAX_KEY} letters, digits, spaces or _.:/=+-@.")
        if not (isinstance(value, str) and len(value) <= _MAX_VALUE and _tag_text(value)):
            raise InvalidParameterError(f"A tag value must be up to {_MAX_VALUE} letters, digits, spaces or "
                                        "_.:/=+-@.")
        if key.lower().startswith("aws:"):
            raise InvalidParameterError("Tag keys starting with aws: are reserved.")
        if key.lower() in folded:
            raise InvalidParameterError(f"Duplicate tag key {key!r}: tag keys are case-insensitive.")
        folded.add(key.lower())
        tags[key] = value
    return tags


def _keys(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > _MAX_TAGS or not all(isinstance(key, str) for key in raw):
        raise InvalidParameterError(f"TransitiveTagKeys must be a list of at most {_MAX_TAGS} tag keys.")
    return tuple(raw)


def _source_identity(raw: Any) -> str:
    if not isinstance(raw, str) or not _SOURCE_IDENTITY.fullmatch(raw) or raw.lower().startswith("aws:"):
        raise InvalidParameterError("SourceIdentity must be 2 to 64 letters, digits or any of _+=,.@- and must not "
                                    "start with aws:.")
    return raw


def _tag_text(text: str) -> bool:
    """AWS's tag alphabet: Unicode letters, separators (spaces) and numbers, and ``_.:/=+-@``."""
    return all(ch in _TAG_SYMBOLS or unicodedata.category(ch)[0] in "LZN" for ch in text)


def _names(keys: list[str]) -> str:
    return ", ".join(repr(key[:_MAX_KEY]) for key in keys)
