"""The directory's records in the shapes of IAM's answers (botocore's ``iam`` model names every member), and
IAM's pagination (``Marker``, ``MaxItems``, ``IsTruncated``).

Policy documents in answers are URL-encoded (RFC 3986), as IAM sends them; boto3 and the AWS CLI decode them into
JSON. What the directory does not keep is left out rather than made up: a group's or managed policy's path (always
``/``), a group's creation date, a login profile's or MFA device's date, a role's description.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from ..directory.sql import InvalidInputError
from ._call import Call, iso

__all__ = [
    "attached", "encoded", "group_shape", "managed_policy", "page", "policy_shape", "role_shape", "tag_list",
    "user_shape", "version_shape",
]

T = TypeVar("T")
DEFAULT_MAX_ITEMS = 100
LARGEST_MAX_ITEMS = 1000


def encoded(document: str) -> str:
    """A policy document as IAM's answers carry it: URL-encoded (RFC 3986)."""
    return quote(document, safe="")


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _boundary(call: Call, entry: Mapping[str, Any]) -> dict[str, str] | None:
    arn = call.boundary_arn(entry.get("boundary"))
    if arn is None:
        return None
    return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": arn}


def user_shape(call: Call, unique: str, entry: Mapping[str, Any], *, full: bool = False) -> dict[str, Any]:
    """``User``: GetUser and CreateUser carry the boundary and tags; ListUsers leaves them out, as IAM does."""
    shape: dict[str, Any] = {"Path": entry["path"], "UserName": entry["name"], "UserId": unique,
                             "Arn": call.entity_arn(entry, "user"), "CreateDate": iso(entry["created"])}
    if full:
        shape["PermissionsBoundary"] = _boundary(call, entry)
        shape["Tags"] = tag_list(entry["tags"]) or None
    return shape


def role_shape(call: Call, unique: str, entry: Mapping[str, Any], *, full: bool = False) -> dict[str, Any]:
    """``Role``: the trust policy URL-encoded; GetRole and CreateRole carry the boundary and tags too."""
    shape: dict[str, Any] = {
        "Path": entry["path"], "RoleName": entry["name"], "RoleId": unique, "Arn": call.entity_arn(entry, "role"),
        "CreateDate": iso(entry["created"]), "AssumeRolePolicyDocument": encoded(entry["trust_policy"]),
        "MaxSessionDuration": entry["max_session_duration"],
    }
    if full:
        shape["PermissionsBoundary"] = _boundary(call, entry)
        shape["Tags"] = tag_list(entry["tags"]) or None
    return shape


def group_shape(call: Call, name: str) -> dict[str, Any]:
    """``Group`` (no ``CreateDate``: the directory keeps none for groups)."""
    return {"Path": "/", "GroupName": name, "GroupId": call.group_id(name), "Arn": call.group_arn(name)}


def _usage(call: Call, name: str) -> tuple[int, int]:
    """(entities a managed policy is attached to, users and roles it is the boundary of), across the directory."""
    records = call.records
    entities = [*records["users"].values(), *records["roles"].values(), *records["groups"].values()]
    attachments = sum(name in entry["policies"] for entry in entities)
    boundaries = sum(entry.get("boundary") == name for entry in entities)
    return attachments, boundaries


def policy_shape(call: Call, name: str) -> dict[str, Any]:
    """``Policy``: created when its earliest version kept was, updated when its default version was made."""
    entry = call.records["policies"][name]
    attachments, boundaries = _usage(call, name)
    created = min(version["created"] for version in entry["versions"].values())
    return {
        "PolicyName": name, "PolicyId": call.policy_id(name), "Arn": call.policy_arn(name), "Path": "/",
        "DefaultVersionId": entry["default_version"], "AttachmentCount": attachments,
        "PermissionsBoundaryUsageCount": boundaries, "IsAttachable": True, "CreateDate": iso(created),
        "UpdateDate": iso(entry["versions"][entry["default_version"]]["created"]),
    }


def version_shape(call: Call, name: str, version_id: str, *, document: bool = False) -> dict[str, Any]:
    """``PolicyVersion``: the document only where IAM sends it (GetPolicyVersion, account details)."""
    entry = call.records["policies"][name]
    version = entry["versions"][version_id]
    return {"Document": encoded(version["document"]) if document else None, "VersionId": version_id,
            "IsDefaultVersion": version_id == entry["default_version"], "CreateDate": iso(version["created"])}


def managed_policy(call: Call, name: str) -> dict[str, Any]:
    """``ManagedPolicyDetail`` (GetAccountAuthorizationDetails): the policy with every version's document."""
    versions = sorted(call.records["policies"][name]["versions"], key=lambda v: int(v[1:]))
    return {**policy_shape(call, name),
            "PolicyVersionList": [version_shape(call, name, v, document=True) for v in versions]}


def attached(call: Call, names: Iterable[str]) -> list[dict[str, str]]:
    """``AttachedPolicy`` for each managed policy name."""
    return [{"PolicyName": name, "PolicyArn": call.policy_arn(name)} for name in names]


# Pagination ------------------------------------------------------------------------------------------------------
def page(call: Call, items: Iterable[T], key: Callable[[T], str], render: Callable[[Sequence[T]], dict[str, Any]],
         ) -> dict[str, Any]:
    """One page of ``items`` in ``key`` order, from after the call's ``Marker``, at most ``MaxItems`` (100 by
    default, as IAM): ``render(chunk)`` gives the list members; ``IsTruncated`` and the next ``Marker`` are added.
    A marker is the last key returned, so a page is never skipped or repeated when entities change between
    calls."""
    ordered = sorted(items, key=key)
    keys = [key(item) for item in ordered]
    start = 0
    marker = call.params.get("Marker")
    if marker is not None:
        try:
            after = base64.urlsafe_b64decode(marker.encode("ascii")).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeError):
            raise InvalidInputError("Marker is not one this service returned.") from None
        start = bisect.bisect_right(keys, after)
    size = call.params.get("MaxItems", DEFAULT_MAX_ITEMS)
    if not 1 <= size <= LARGEST_MAX_ITEMS:
        raise InvalidInputError(f"MaxItems must be from 1 to {LARGEST_MAX_ITEMS}.")
    chunk = ordered[start:start + size]
    truncated = start + size < len(ordered)
    answer = render(chunk)
    answer["IsTruncated"] = truncated
    if truncated:
        answer["Marker"] = base64.urlsafe_b64encode(keys[start + size - 1].encode()).decode("ascii")
    return answer

