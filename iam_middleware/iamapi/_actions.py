"""The IAM API's actions: one row each, naming what the action takes (botocore's ``iam`` model's member names and
kinds), which ARNs it is authorized on (as the Service Authorization Reference for IAM says), and what it does.

An action that writes runs inside ``SQLDirectory.change()``, with the ``DirectoryDraft`` method of the same name
(``CreateUser`` is ``create_user``): IAM's rules and error codes are the draft's, and the whole directory is
validated before it is committed. An action that reads answers from the directory's records at the revision in
force. A parameter the directory cannot keep (a role's ``Description``, a policy's ``Tags``) is refused with
``InvalidInput`` rather than silently dropped.

Adding an action is one function and one row: ``"GetAccessKeyLastUsed": Action(get_access_key_last_used,
{"AccessKeyId": STRING}, ("AccessKeyId",), _key_owner)`` and so on.

The account's root user (a request signed with its access key) acts on itself where ``UserName`` is left out; its
answers leave out the user name and path it does not have, as IAM's do.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._awsquery import BOOLEAN, INTEGER, STRING, Kind, ListOf, ParameterError, Struct
from .._exceptions import IAMError
from .._principal import PrincipalType
from ..authenticators._login import throttle_key_for
from ..authenticators._passwords import verify_password
from ..directory import _credential_report as report_store
from ..directory.sql import ROOT, DirectoryDraft, InvalidInputError, MFADeviceInfo, NoSuchEntityError
from ._call import Call, iso
from ._shapes import (
    attached,
    encoded,
    group_shape,
    managed_policy,
    page,
    policy_shape,
    role_shape,
    tag_list,
    user_shape,
    version_shape,
)
from ._simulate import SIMULATE_CUSTOM, SIMULATE_PRINCIPAL, simulate_custom_policy, simulate_principal_policy

__all__ = ["ACTIONS", "Action", "ReportExpiredError", "ReportNotPresentError"]

Answer = dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Action:
    """One IAM action: ``run`` answers it (None: IAM answers nothing but the request id), ``members`` its
    parameters by kind, ``required`` those it cannot go without, ``resources`` the ARNs ``iam:<Action>`` is
    authorized on (each must allow), ``context`` the condition keys the request adds (``iam:PolicyARN``,
    ``aws:RequestTag/...``), ``writes`` whether it runs in a directory change, and ``check`` what must hold before
    the change is opened (a password verified outside the directory's write lock)."""

    run: Callable[[Call], Answer]
    members: Mapping[str, Kind]
    required: tuple[str, ...] = ()
    resources: Callable[[Call], Sequence[str]] = lambda call: ("*",)
    writes: bool = False
    context: Callable[[Call], Mapping[str, Any]] | None = None
    check: Callable[[Call], None] | None = None
    unsupported: tuple[str, ...] = field(default=())


# Parameters ------------------------------------------------------------------------------------------------------
TAGS = ListOf(Struct({"Key": STRING, "Value": STRING}))
PAGED: dict[str, Kind] = {"Marker": STRING, "MaxItems": INTEGER}


def _tags(call: Call, member: str = "Tags") -> dict[str, str]:
    tags: dict[str, str] = {}
    for i, tag in enumerate(call.params.get(member) or (), start=1):
        if set(tag) != {"Key", "Value"}:
            raise ParameterError(f"{member}.member.{i} needs a Key and a Value.")
        if tag["Key"] in tags:
            raise InvalidInputError(f"Duplicate tag keys found: {tag['Key'][:128]}.")
        tags[tag["Key"]] = tag["Value"]
    return tags


def _path_prefix(call: Call) -> str:
    return str(call.params.get("PathPrefix") or "/")


# Resources (the ARNs an action is authorized on) -----------------------------------------------------------------
def _user(call: Call) -> Sequence[str]:
    return (call.user_arn(call.user_name()),)


def _new_user(call: Call) -> Sequence[str]:
    return (call.arn("user", call.params["UserName"], call.params.get("Path", "/")),)


def _renamed_user(call: Call) -> Sequence[str]:
    """UpdateUser needs the permission on the user as it is and as it will be (IAM: on source and target)."""
    name = call.params["UserName"]
    found = call.find("users", name)
    path = found[1]["path"] if found else "/"
    now = call.arn("user", name, path)
    after = call.arn("user", call.params.get("NewUserName", name), call.params.get("NewPath", path))
    return (now,) if after == now else (now, after)


def _group(call: Call) -> Sequence[str]:
    return (call.group_arn(call.params["GroupName"]),)


def _role(call: Call) -> Sequence[str]:
    return (call.role_arn(call.params["RoleName"]),)


def _new_role(call: Call) -> Sequence[str]:
    return (call.arn("role", call.params["RoleName"], call.params.get("Path", "/")),)


def _policy(call: Call) -> Sequence[str]:
    return (call.params["PolicyArn"],)


def _new_policy(call: Call) -> Sequence[str]:
    return (call.policy_arn(call.params["PolicyName"]),)


def _source(call: Call) -> Sequence[str]:
    return (call.params["PolicySourceArn"],)


def _anything(call: Call) -> Sequence[str]:
    return ("*",)


def _new_mfa(call: Call) -> Sequence[str]:
    return (call.mfa_arn(call.params["VirtualMFADeviceName"], call.params.get("Path", "/")),)


def _own_serial(call: Call) -> str:
    """``SerialNumber``, if it names a virtual MFA device of the caller's account; else ``NoSuchEntity`` (a device
    of another account, or a hardware device: the directory keeps virtual devices only)."""
    serial = str(call.params["SerialNumber"])
    if not serial.startswith(f"arn:{call.partition}:iam::{call.account}:mfa/"):
        raise NoSuchEntityError(f"VirtualMFADevice with serial number {serial} doesn't exist.")
    return serial


def _serial(call: Call) -> Sequence[str]:
    return (_own_serial(call),)


def _key_owner(call: Call) -> Sequence[str]:
    """GetAccessKeyLastUsed: the key owner's ARN (``*`` for a key the caller's account does not have, so that
    nothing but an allowed caller learns it is unknown)."""
    owner = _owner_of_key(call)
    return (call.user_arn(owner),) if owner is not None else ("*",)


# Condition keys the request adds ---------------------------------------------------------------------------------
def _request_tags(call: Call) -> dict[str, Any]:
    tags = _tags(call)
    keys: dict[str, Any] = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    if tags:
        keys["aws:TagKeys"] = list(tags)
    return keys


def _resource_tags(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    tags = entry["tags"] if entry is not None else {}
    return {**{f"aws:ResourceTag/{k}": v for k, v in tags.items()}, **{f"iam:ResourceTag/{k}": v
                                                                       for k, v in tags.items()}}


def _entity(call: Call) -> Mapping[str, Any] | None:
    """The user or role the call names (with a default to the caller for a user), if it exists."""
    if "RoleName" in call.params:
        found = call.find("roles", call.params["RoleName"])
    else:
        try:
            found = call.find("users", call.user_name())
        except ParameterError:
            found = None
    return found[1] if found else None


def _entity_keys(call: Call) -> dict[str, Any]:
    """``aws:ResourceTag/*`` of the user or role acted on, and ``iam:PermissionsBoundary`` (the boundary it has,
    or the one being put), so that a delegated administrator can be held to users and roles of one boundary."""
    entry = _entity(call)
    keys = _resource_tags(entry)
    if "PermissionsBoundary" in call.params:
        keys["iam:PermissionsBoundary"] = call.params["PermissionsBoundary"]
    elif entry is not None and isinstance(entry.get("boundary"), str):
        keys["iam:PermissionsBoundary"] = call.policy_arn(entry["boundary"])
    if "PolicyArn" in call.params:
        keys["iam:PolicyARN"] = call.params["PolicyArn"]
    if "TagKeys" in call.params:
        keys["aws:TagKeys"] = list(call.params["TagKeys"])
    if "Tags" in call.params:
        keys.update(_request_tags(call))
    return keys


def _policy_keys(call: Call) -> dict[str, Any]:
    return {"iam:PolicyARN": call.params["PolicyArn"]}


# Users -----------------------------------------------------------------------------------------------------------
def create_user(call: Call) -> Answer:
    draft = call.changes()
    name = call.params["UserName"]
    unique = draft.create_user(name, account=call.account, path=call.params.get("Path", "/"), tags=_tags(call))
    if "PermissionsBoundary" in call.params:
        boundary = call.policy_name(call.params["PermissionsBoundary"], member="PermissionsBoundary")
        draft.put_user_permissions_boundary(name, boundary, account=call.account)
    return {"User": user_shape(call, unique, draft.records["users"][unique], full=True)}


def get_user(call: Call) -> Answer:
    name = call.user_name()
    unique, entry = call.user(name)
    if name == ROOT:
        return {"User": _root_shape(call, entry)}
    return {"User": user_shape(call, unique, entry, full=True)}


def _root_shape(call: Call, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The root user as IAM's answers show it: its account id and ARN (it has no user name or path)."""
    created = entry.get("created")
    return {"UserId": call.account, "Arn": call.root_arn(), "CreateDate": iso(created) if created else None}


def _shown(name: str) -> str | None:
    """A user name as answers carry it: the root user's is left out, as IAM leaves it out."""
    return None if name == ROOT else name


def list_users(call: Call) -> Answer:
    prefix = _path_prefix(call)
    users = [(unique, entry) for unique, entry in call.records["users"].items()
             if entry["account"] == call.account and entry["path"].startswith(prefix)]
    return page(call, users, lambda item: item[1]["name"],
                lambda chunk: {"Users": [user_shape(call, unique, entry) for unique, entry in chunk]})


def update_user(call: Call) -> Answer:
    call.changes().update_user(call.params["UserName"], account=call.account,
                               new_user_name=call.params.get("NewUserName"), new_path=call.params.get("NewPath"))
    return None


def delete_user(call: Call) -> Answer:
    call.changes().delete_user(call.params["UserName"], account=call.account)
    return None


def tag_user(call: Call) -> Answer:
    call.changes().tag_user(call.params["UserName"], _tags(call), account=call.account)
    return None


def untag_user(call: Call) -> Answer:
    call.changes().untag_user(call.params["UserName"], call.params["TagKeys"], account=call.account)
    return None


def _tag_page(call: Call, tags: Mapping[str, str]) -> Answer:
    return page(call, list(tags.items()), lambda item: item[0], lambda chunk: {"Tags": tag_list(dict(chunk))})


def list_user_tags(call: Call) -> Answer:
    return _tag_page(call, call.user(call.params["UserName"])[1]["tags"])


# Groups ----------------------------------------------------------------------------------------------------------
def _root_path(call: Call) -> None:
    if call.params.get("Path", "/") != "/":
        raise InvalidInputError("This directory keeps no path for groups and managed policies: leave Path out, "
                                "or send /.")


def create_group(call: Call) -> Answer:
    _root_path(call)
    name = call.params["GroupName"]
    call.changes().create_group(name, account=call.account)
    return {"Group": group_shape(call, name)}


def _members(call: Call, name: str) -> list[tuple[str, Mapping[str, Any]]]:
    return [(unique, entry) for unique, entry in call.records["users"].items()
            if entry["account"] == call.account and name in entry["groups"]]


def get_group(call: Call) -> Answer:
    name = call.params["GroupName"]
    call.group(name)
    return page(call, _members(call, name), lambda item: item[1]["name"], lambda chunk: {
        "Group": group_shape(call, name), "Users": [user_shape(call, unique, entry) for unique, entry in chunk]})


def list_groups(call: Call) -> Answer:
    names = [name for name, entry in call.records["groups"].items()
             if entry["account"] == call.account and "/".startswith(_path_prefix(call))]
    return page(call, names, str, lambda chunk: {"Groups": [group_shape(call, name) for name in chunk]})


def delete_group(call: Call) -> Answer:
    call.group(call.params["GroupName"])
    call.changes().delete_group(call.params["GroupName"])
    return None


def add_user_to_group(call: Call) -> Answer:
    call.group(call.params["GroupName"])
    call.changes().add_user_to_group(call.params["GroupName"], call.params["UserName"])
    return None


def remove_user_from_group(call: Call) -> Answer:
    call.group(call.params["GroupName"])
    call.changes().remove_user_from_group(call.params["GroupName"], call.params["UserName"])
    return None


def list_groups_for_user(call: Call) -> Answer:
    groups = call.user(call.params["UserName"])[1]["groups"]
    return page(call, list(groups), str, lambda chunk: {"Groups": [group_shape(call, name) for name in chunk]})


# Roles -----------------------------------------------------------------------------------------------------------
def create_role(call: Call) -> Answer:
    draft = call.changes()
    name = call.params["RoleName"]
    unique = draft.create_role(name, call.params["AssumeRolePolicyDocument"], account=call.account,
                               path=call.params.get("Path", "/"),
                               max_session_duration=call.params.get("MaxSessionDuration", 3600), tags=_tags(call))
    if "PermissionsBoundary" in call.params:
        boundary = call.policy_name(call.params["PermissionsBoundary"], member="PermissionsBoundary")
        draft.put_role_permissions_boundary(name, boundary, account=call.account)
    return {"Role": role_shape(call, unique, draft.records["roles"][unique], full=True)}


def get_role(call: Call) -> Answer:
    unique, entry = call.role(call.params["RoleName"])
    return {"Role": role_shape(call, unique, entry, full=True)}


def list_roles(call: Call) -> Answer:
    prefix = _path_prefix(call)
    roles = [(unique, entry) for unique, entry in call.records["roles"].items()
             if entry["account"] == call.account and entry["path"].startswith(prefix)]
    return page(call, roles, lambda item: item[1]["name"],
                lambda chunk: {"Roles": [role_shape(call, unique, entry) for unique, entry in chunk]})


def update_role(call: Call) -> Answer:
    call.changes().update_role(call.params["RoleName"], account=call.account,
                               max_session_duration=call.params.get("MaxSessionDuration"))
    return {}  # UpdateRoleResult is empty


def update_assume_role_policy(call: Call) -> Answer:
    call.changes().update_assume_role_policy(call.params["RoleName"], call.params["PolicyDocument"],
                                             account=call.account)
    return None


def delete_role(call: Call) -> Answer:
    call.changes().delete_role(call.params["RoleName"], account=call.account)
    return None


def tag_role(call: Call) -> Answer:
    call.changes().tag_role(call.params["RoleName"], _tags(call), account=call.account)
    return None


def untag_role(call: Call) -> Answer:
    call.changes().untag_role(call.params["RoleName"], call.params["TagKeys"], account=call.account)
    return None


def list_role_tags(call: Call) -> Answer:
    return _tag_page(call, call.role(call.params["RoleName"])[1]["tags"])


# Managed policies ------------------------------------------------------------------------------------------------
def create_policy(call: Call) -> Answer:
    _root_path(call)
    name = call.params["PolicyName"]
    call.changes().create_policy(name, call.params["PolicyDocument"])
    return {"Policy": policy_shape(call, name)}


def get_policy(call: Call) -> Answer:
    return {"Policy": policy_shape(call, call.policy_name(call.params["PolicyArn"]))}


def list_policies(call: Call) -> Answer:
    scope = call.params.get("Scope", "All")
    usage = call.params.get("PolicyUsageFilter")
    if scope not in ("All", "AWS", "Local") or usage not in (None, "PermissionsPolicy", "PermissionsBoundary"):
        raise InvalidInputError("Scope is All, AWS or Local; PolicyUsageFilter is PermissionsPolicy or "
                                "PermissionsBoundary.")
    names = []
    for name in call.records["policies"] if scope != "AWS" and "/".startswith(_path_prefix(call)) else ():
        shape = policy_shape(call, name)
        if call.params.get("OnlyAttached") and not (shape["AttachmentCount"] or shape["PermissionsBoundaryUsageCount"]):
            continue
        if usage == "PermissionsPolicy" and not shape["AttachmentCount"]:
            continue
        if usage == "PermissionsBoundary" and not shape["PermissionsBoundaryUsageCount"]:
            continue
        names.append(name)
    return page(call, names, str, lambda chunk: {"Policies": [policy_shape(call, name) for name in chunk]})


def delete_policy(call: Call) -> Answer:
    call.changes().delete_policy(call.policy_name(call.params["PolicyArn"]))
    return None


def create_policy_version(call: Call) -> Answer:
    name = call.policy_name(call.params["PolicyArn"])
    version = call.changes().create_policy_version(name, call.params["PolicyDocument"],
                                                   set_as_default=call.params.get("SetAsDefault", False))
    return {"PolicyVersion": version_shape(call, name, version)}


def get_policy_version(call: Call) -> Answer:
    name = call.policy_name(call.params["PolicyArn"])
    version = call.params["VersionId"]
    if version not in call.records["policies"][name]["versions"]:
        raise NoSuchEntityError(f"Policy {call.params['PolicyArn']} version {version} does not exist or is not "
                                "attachable.")
    return {"PolicyVersion": version_shape(call, name, version, document=True)}


def list_policy_versions(call: Call) -> Answer:
    name = call.policy_name(call.params["PolicyArn"])
    versions = list(call.records["policies"][name]["versions"])
    return page(call, versions, lambda version: f"{int(version[1:]):09d}",
                lambda chunk: {"Versions": [version_shape(call, name, version) for version in chunk]})


def set_default_policy_version(call: Call) -> Answer:
    call.changes().set_default_policy_version(call.policy_name(call.params["PolicyArn"]), call.params["VersionId"])
    return None


def delete_policy_version(call: Call) -> Answer:
    call.changes().delete_policy_version(call.policy_name(call.params["PolicyArn"]), call.params["VersionId"])
    return None


def list_entities_for_policy(call: Call) -> Answer:
    name = call.policy_name(call.params["PolicyArn"])
    wanted = call.params.get("EntityFilter")
    usage = call.params.get("PolicyUsageFilter")
    prefix = _path_prefix(call)
    entities: list[tuple[str, str, str]] = []  # (kind, name, id)
    for kind, table in (("User", "users"), ("Role", "roles")):
        for unique, entry in call.records[table].items():
            uses = ((usage != "PermissionsBoundary" and name in entry["policies"])
                    or (usage != "PermissionsPolicy" and entry["boundary"] == name))
            if entry["account"] == call.account and uses and entry["path"].startswith(prefix):
                entities.append((kind, entry["name"], unique))
    for group, entry in call.records["groups"].items():
        if (entry["account"] == call.account and usage != "PermissionsBoundary" and name in entry["policies"]
                and "/".startswith(prefix)):
            entities.append(("Group", group, call.group_id(group)))
    if wanted not in (None, "User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"):
        raise InvalidInputError("EntityFilter is User, Role, Group, LocalManagedPolicy or AWSManagedPolicy.")
    entities = [e for e in entities if wanted in (None, e[0])]

    def render(chunk: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
        return {f"Policy{kind}s": [{f"{kind}Name": n, f"{kind}Id": i} for k, n, i in chunk if k == kind]
                for kind in ("Group", "User", "Role")}

    return page(call, entities, lambda e: f"{e[0]}\0{e[1]}", render)


# Attached and inline policies, boundaries ------------------------------------------------------------------------
def _attached_page(call: Call, names: Sequence[str]) -> Answer:
    prefix = _path_prefix(call)
    return page(call, [n for n in names if "/".startswith(prefix)], str,
                lambda chunk: {"AttachedPolicies": attached(call, chunk)})


def attach_user_policy(call: Call) -> Answer:
    call.changes().attach_user_policy(call.params["UserName"], call.policy_name(call.params["PolicyArn"]),
                                      account=call.account)
    return None


def detach_user_policy(call: Call) -> Answer:
    call.changes().detach_user_policy(call.params["UserName"], call.policy_name(call.params["PolicyArn"]),
                                      account=call.account)
    return None


def list_attached_user_policies(call: Call) -> Answer:
    return _attached_page(call, call.user(call.params["UserName"])[1]["policies"])


def attach_group_policy(call: Call) -> Answer:
    call.group(call.params["GroupName"])
    call.changes().attach_group_policy(call.params["GroupName"], call.policy_name(call.params["PolicyArn"]))
    return None


def detach_group_policy(call: Call) -> Answer:
    call.group(call.params["GroupName"])
    call.changes().detach_group_policy(call.params["GroupName"], call.policy_name(call.params["PolicyArn"]))
    return None


def list_attached_group_policies(call: Call) -> Answer:
    return _attached_page(call, call.group(call.params["GroupName"])["policies"])


def attach_role_policy(call: Call) -> Answer:
    call.changes().attach_role_policy(call.params["RoleName"], call.policy_name(call.params["PolicyArn"]),
                                      account=call.account)
    return None


def detach_role_policy(call: Call) -> Answer:
    call.changes().detach_role_policy(call.params["RoleName"], call.policy_name(call.params["PolicyArn"]),
                                      account=call.account)
    return None


def list_attached_role_policies(call: Call) -> Answer:
    return _attached_page(call, call.role(call.params["RoleName"])[1]["policies"])


def _inline(entry: Mapping[str, Any], policy: str) -> str:
    document: str | None = entry["inline"].get(policy)
    if document is None:
        raise NoSuchEntityError(f"The inline policy {policy} cannot be found.")
    return document


def _inline_page(call: Call, entry: Mapping[str, Any]) -> Answer:
    return page(call, list(entry["inline"]), str, lambda chunk: {"PolicyNames": list(chunk)})


def put_user_policy(call: Call) -> Answer:
    p = call.params
    call.changes().put_user_policy(p["UserName"], p["PolicyName"], p["PolicyDocument"], account=call.account)
    return None


def get_user_policy(call: Call) -> Answer:
    p = call.params
    document = _inline(call.user(p["UserName"])[1], p["PolicyName"])
    return {"UserName": p["UserName"], "PolicyName": p["PolicyName"], "PolicyDocument": encoded(document)}


def delete_user_policy(call: Call) -> Answer:
    call.changes().delete_user_policy(call.params["UserName"], call.params["PolicyName"], account=call.account)
    return None


def list_user_policies(call: Call) -> Answer:
    return _inline_page(call, call.user(call.params["UserName"])[1])


def put_group_policy(call: Call) -> Answer:
    p = call.params
    call.group(p["GroupName"])
    call.changes().put_group_policy(p["GroupName"], p["PolicyName"], p["PolicyDocument"])
    return None


def get_group_policy(call: Call) -> Answer:
    p = call.params
    document = _inline(call.group(p["GroupName"]), p["PolicyName"])
    return {"GroupName": p["GroupName"], "PolicyName": p["PolicyName"], "PolicyDocument": encoded(document)}


def delete_group_policy(call: Call) -> Answer:
    call.group(call.params["GroupName"])
    call.changes().delete_group_policy(call.params["GroupName"], call.params["PolicyName"])
    return None


def list_group_policies(call: Call) -> Answer:
    return _inline_page(call, call.group(call.params["GroupName"]))


def put_role_policy(call: Call) -> Answer:
    p = call.params
    call.changes().put_role_policy(p["RoleName"], p["PolicyName"], p["PolicyDocument"], account=call.account)
    return None


def get_role_policy(call: Call) -> Answer:
    p = call.params
    document = _inline(call.role(p["RoleName"])[1], p["PolicyName"])
    return {"RoleName": p["RoleName"], "PolicyName": p["PolicyName"], "PolicyDocument": encoded(document)}


def delete_role_policy(call: Call) -> Answer:
    call.changes().delete_role_policy(call.params["RoleName"], call.params["PolicyName"], account=call.account)
    return None


def list_role_policies(call: Call) -> Answer:
    return _inline_page(call, call.role(call.params["RoleName"])[1])


def put_user_permissions_boundary(call: Call) -> Answer:
    boundary = call.policy_name(call.params["PermissionsBoundary"], member="PermissionsBoundary")
    call.changes().put_user_permissions_boundary(call.params["UserName"], boundary, account=call.account)
    return None


def delete_user_permissions_boundary(call: Call) -> Answer:
    call.changes().delete_user_permissions_boundary(call.params["UserName"], account=call.account)
    return None


def put_role_permissions_boundary(call: Call) -> Answer:
    boundary = call.policy_name(call.params["PermissionsBoundary"], member="PermissionsBoundary")
    call.changes().put_role_permissions_boundary(call.params["RoleName"], boundary, account=call.account)
    return None


def delete_role_permissions_boundary(call: Call) -> Answer:
    call.changes().delete_role_permissions_boundary(call.params["RoleName"], account=call.account)
    return None


# Credentials -----------------------------------------------------------------------------------------------------
def create_access_key(call: Call) -> Answer:
    key = call.changes().create_access_key(call.user_name(), account=call.account)
    # The only time the secret is shown: in this answer, never in a log or a repr.
    return {"AccessKey": {"UserName": _shown(key.user_name), "AccessKeyId": key.access_key_id, "Status": "Active",
                          "SecretAccessKey": key.secret_access_key, "CreateDate": iso(call.now)}}


def list_access_keys(call: Call) -> Answer:
    name = call.user_name()
    keys = call.user(name)[1]["access_keys"]
    return page(call, keys, lambda key: key["id"], lambda chunk: {"AccessKeyMetadata": [
        {"UserName": _shown(name), "AccessKeyId": key["id"], "Status": "Active" if key["active"] else "Inactive",
         "CreateDate": iso(key["created"])} for key in chunk]})


def update_access_key(call: Call) -> Answer:
    call.changes().update_access_key(call.user_name(), call.params["AccessKeyId"], call.params["Status"],
                                     account=call.account)
    return None


def delete_access_key(call: Call) -> Answer:
    call.changes().delete_access_key(call.user_name(), call.params["AccessKeyId"], account=call.account)
    return None


def _no_reset(call: Call) -> None:
    if call.params.get("PasswordResetRequired"):
        raise InvalidInputError("PasswordResetRequired is not supported: this directory has no password reset at "
                                "sign-in. Leave it out, or send false.")


def _password(call: Call) -> str:
    password = call.params.get("Password")
    if not password:
        raise ParameterError(f"{call.action} needs Password.")
    return str(password)


def create_login_profile(call: Call) -> Answer:
    _no_reset(call)
    name = call.user_name()
    call.changes().create_login_profile(name, _password(call), account=call.account)
    return {"LoginProfile": {"UserName": _shown(name), "CreateDate": iso(call.now), "PasswordResetRequired": False}}


def _login_profile(call: Call, name: str) -> None:
    if call.user(name)[1]["password_hash"] is None:
        raise NoSuchEntityError(f"Login Profile for User {name} cannot be found.")


def get_login_profile(call: Call) -> Answer:
    name = call.user_name()
    _login_profile(call, name)
    return {"LoginProfile": {"UserName": _shown(name), "PasswordResetRequired": False}}


def update_login_profile(call: Call) -> Answer:
    _no_reset(call)
    name = call.params["UserName"]
    if call.params.get("Password") is None:
        _login_profile(call, name)  # nothing to change, as IAM answers a call that only clears the reset flag
    else:
        call.changes().update_login_profile(name, _password(call), account=call.account)
    return None


def delete_login_profile(call: Call) -> Answer:
    call.changes().delete_login_profile(call.user_name(), account=call.account)
    return None


def _caller_user(call: Call) -> tuple[str, dict[str, Any]]:
    if call.principal.type is not PrincipalType.USER:
        raise InvalidInputError("ChangePassword changes the password of the user who calls it; call it with a "
                                "user's credentials.", code="InvalidUserType")
    return call.user(call.principal.name)


def check_old_password(call: Call) -> None:
    """ChangePassword's old password, verified before the change is opened (hashing is slow; the directory's
    write lock is not held for it). Failures count on the user's login throttle, so a key alone does not allow
    guessing the password."""
    unique, entry = _caller_user(call)
    if entry["password_hash"] is None:
        raise NoSuchEntityError(f"Login Profile for User {entry['name']} cannot be found.")
    throttle = call.iam.logins.throttle
    key = throttle_key_for(unique)
    throttle.check(key, now=call.now, source_ip=call.source_ip)
    if not verify_password(str(call.params["OldPassword"]), entry["password_hash"]):
        throttle.record_failure(key, now=call.now, source_ip=call.source_ip)
        raise InvalidInputError("The old password is not the user's current password.")
    throttle.record_success(key)


def change_password(call: Call) -> Answer:
    _, entry = _caller_user(call)
    call.changes().update_login_profile(entry["name"], str(call.params["NewPassword"]), account=call.account)
    return None


def enable_mfa_device(call: Call) -> Answer:
    """The virtual device ``SerialNumber`` (made by CreateVirtualMFADevice) becomes the user's, given two
    consecutive codes of it. As in IAM, ``UserName`` is required: the root user's device is not enabled here."""
    p = call.params
    call.changes().enable_mfa_device(p["UserName"], _own_serial(call), p["AuthenticationCode1"],
                                     p["AuthenticationCode2"], account=call.account)
    return None


def deactivate_mfa_device(call: Call) -> Answer:
    call.changes().deactivate_mfa_device(call.user_name(), call.params["SerialNumber"], account=call.account)
    return None


def _reader(call: Call) -> DirectoryDraft:
    """The draft's listings over the records in force (they only read)."""
    return DirectoryDraft(dict(call.records), now=int(call.now))


def list_mfa_devices(call: Call) -> Answer:
    name = call.user_name()
    call.user(name)
    devices = _reader(call).list_mfa_devices(name, account=call.account)
    return page(call, devices, lambda device: device.serial_number, lambda chunk: {"MFADevices": [
        {"UserName": _shown(name), "SerialNumber": device.serial_number,
         "EnableDate": iso(device.enable_date) if device.enable_date is not None else None} for device in chunk]})


def _blob(data: bytes) -> str:
    """A blob as IAM's XML carries it (base64; boto3 hands back the bytes, the CLI writes them to a file)."""
    return base64.b64encode(data).decode("ascii")


def create_virtual_mfa_device(call: Call) -> Answer:
    device = call.changes().create_virtual_mfa_device(call.params["VirtualMFADeviceName"],
                                                      call.params.get("Path", "/"), account=call.account)
    # The only time the seed is shown: in this answer (as its Base32 text and as a QR code), never in a log.
    png = device.qr_code_png
    return {"VirtualMFADevice": {"SerialNumber": device.serial_number,
                                 "Base32StringSeed": _blob(device.base32_string_seed.encode("ascii")),
                                 "QRCodePNG": _blob(png) if png is not None else None}}


def delete_virtual_mfa_device(call: Call) -> Answer:
    call.changes().delete_virtual_mfa_device(_own_serial(call))
    return None


_ASSIGNMENT = ("Assigned", "Unassigned", "Any")


def _holder_shape(call: Call, device: MFADeviceInfo) -> dict[str, Any] | None:
    """The ``User`` a device is enabled for: the user (as ListUsers shows it), or the root user."""
    if device.user_name is None:
        return None
    if device.user_name == ROOT:
        return _root_shape(call, call.user(ROOT)[1])
    for unique, entry in call.records["users"].items():
        if call.entity_arn(entry, "user") == device.user_arn:
            return user_shape(call, unique, entry)
    return None  # pragma: no cover - a device's holder is a user of the directory


def list_virtual_mfa_devices(call: Call) -> Answer:
    status = call.params.get("AssignmentStatus", "Any")
    if status not in _ASSIGNMENT:
        raise ParameterError(f"AssignmentStatus must be one of {', '.join(_ASSIGNMENT)}.")
    devices = _reader(call).list_virtual_mfa_devices(status, account=call.account)
    return page(call, devices, lambda device: device.serial_number, lambda chunk: {"VirtualMFADevices": [
        {"SerialNumber": device.serial_number, "User": _holder_shape(call, device),
         "EnableDate": iso(device.enable_date) if device.enable_date is not None else None} for device in chunk]})


# Last use and the credential report ------------------------------------------------------------------------------
_NA = "N/A"


def _owner_of_key(call: Call) -> str | None:
    """The user name (``ROOT`` for the root user) of the caller's account that has the access key, or None."""
    key_id = call.params["AccessKeyId"]
    for entry in call.records["users"].values():
        if entry["account"] == call.account and any(key["id"] == key_id for key in entry["access_keys"]):
            return str(entry["name"])
    root = call.records["accounts"][call.account].get("root")
    if root is not None and any(key["id"] == key_id for key in root["access_keys"]):
        return ROOT
    return None


def get_access_key_last_used(call: Call) -> Answer:
    """When, where and for which service the key last signed a request (``N/A`` and no date when never, as IAM
    answers); the root user's key answers without a user name."""
    owner = _owner_of_key(call)
    if owner is None:
        raise NoSuchEntityError(f"The Access Key with id {call.params['AccessKeyId']} cannot be found.")
    use = call.iam.last_used.access_key(call.params["AccessKeyId"])
    used: dict[str, Any] = {"ServiceName": _NA, "Region": _NA}
    if use is not None:
        used = {"LastUsedDate": iso(use.date), "ServiceName": use.service or _NA, "Region": use.region or _NA}
    return {"UserName": _shown(owner), "AccessKeyLastUsed": used}


class ReportNotPresentError(IAMError):
    """GetCredentialReport before GenerateCredentialReport."""

    status_code = 410
    code = "ReportNotPresent"


class ReportExpiredError(IAMError):
    """GetCredentialReport when the report kept is more than four hours old."""

    status_code = 410
    code = "ReportExpired"


def _times(records: Mapping[str, Any]) -> report_store.CredentialTimes:
    """When each user, root user, password and access key was made (the report's creation and rotation times)."""
    users: dict[str, float] = {}
    passwords: dict[str, float] = {}
    keys: dict[str, float] = {}
    holders = [*records["users"].items(), *((account, entry["root"]) for account, entry in records["accounts"].items()
                                            if entry.get("root") is not None)]
    for holder, entry in holders:
        if entry.get("created") is not None:
            users[holder] = entry["created"]
        if entry.get("password_changed") is not None:
            passwords[holder] = entry["password_changed"]
        keys.update((key["id"], key["created"]) for key in entry["access_keys"] if key.get("created") is not None)
    return report_store.CredentialTimes(users, passwords, keys)


def generate_credential_report(call: Call) -> Answer:
    """STARTED when a report is made now (kept four hours, in the state store every process shares), COMPLETE
    while one is kept."""
    state = report_store.generate_credential_report(call.iam.store, call.iam.snapshot, now=call.now,
                                                    account=call.account, times=_times(call.records),
                                                    last_used=call.iam.last_used)
    description = "No report exists. Starting a new report generation task" if state == "STARTED" else None
    return {"State": state, "Description": description}


def get_credential_report(call: Call) -> Answer:
    report, expired = report_store.find_credential_report(call.iam.store, call.account, now=call.now)
    if report is None:
        if expired:
            raise ReportExpiredError("The credential report is more than four hours old: generate a new one with "
                                     "GenerateCredentialReport.")
        raise ReportNotPresentError("The credential report does not exist: generate one with "
                                    "GenerateCredentialReport.")
    return {"Content": _blob(report.content.encode("utf-8")), "ReportFormat": report.report_format,
            "GeneratedTime": iso(report.generated_time)}


# The whole account -----------------------------------------------------------------------------------------------
_DETAIL_KINDS = ("User", "Group", "Role", "LocalManagedPolicy", "AWSManagedPolicy")


def get_account_authorization_details(call: Call) -> Answer:
    wanted = set(call.params.get("Filter") or _DETAIL_KINDS)
    if not wanted <= set(_DETAIL_KINDS):
        raise InvalidInputError(f"Filter takes {', '.join(_DETAIL_KINDS)}.")
    records = call.records
    items: list[tuple[str, str, str]] = []  # (order, kind, key)
    if "User" in wanted:
        items += [("0", "users", unique) for unique, e in records["users"].items() if e["account"] == call.account]
    if "Group" in wanted:
        items += [("1", "groups", name) for name, e in records["groups"].items() if e["account"] == call.account]
    if "Role" in wanted:
        items += [("2", "roles", unique) for unique, e in records["roles"].items() if e["account"] == call.account]
    if "LocalManagedPolicy" in wanted:
        items += [("3", "policies", name) for name in records["policies"]]

    def sort_key(item: tuple[str, str, str]) -> str:
        name = records[item[1]][item[2]]["name"] if item[1] in ("users", "roles") else item[2]
        return f"{item[0]}\0{name}\0{item[2]}"

    def inline(entry: Mapping[str, Any]) -> list[dict[str, str]] | None:
        return [{"PolicyName": n, "PolicyDocument": encoded(d)} for n, d in entry["inline"].items()] or None

    def render(chunk: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
        answer: dict[str, Any] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
        for _, kind, key in chunk:
            entry = records[kind][key]
            if kind == "users":
                answer["UserDetailList"].append({
                    **user_shape(call, key, entry, full=True), "UserPolicyList": inline(entry),
                    "GroupList": list(entry["groups"]) or None,
                    "AttachedManagedPolicies": attached(call, entry["policies"]) or None})
            elif kind == "groups":
                answer["GroupDetailList"].append({
                    **group_shape(call, key), "GroupPolicyList": inline(entry),
                    "AttachedManagedPolicies": attached(call, entry["policies"]) or None})
            elif kind == "roles":
                answer["RoleDetailList"].append({
                    **role_shape(call, key, entry, full=True), "InstanceProfileList": [],
                    "RolePolicyList": inline(entry),
                    "AttachedManagedPolicies": attached(call, entry["policies"]) or None})
            else:
                answer["Policies"].append(managed_policy(call, key))
        return answer

    return page(call, items, sort_key, render)


# The table -------------------------------------------------------------------------------------------------------
_USER = {"UserName": STRING}
_OWN = ("UserName",)
_ROLE = {"RoleName": STRING}
_GROUP = {"GroupName": STRING}
_POLICY = {"PolicyArn": STRING}
_INLINE = {"PolicyName": STRING, "PolicyDocument": STRING}

#: Action -> how it is answered. Members and their kinds are botocore's ``iam`` model's (tests/iamapi pins them).
ACTIONS: Mapping[str, Action] = {
    # Users
    "CreateUser": Action(create_user, {**_USER, "Path": STRING, "PermissionsBoundary": STRING, "Tags": TAGS},
                         _OWN, _new_user, writes=True, context=_entity_keys),
    "GetUser": Action(get_user, _USER, (), _user),
    "ListUsers": Action(list_users, {"PathPrefix": STRING, **PAGED}),
    "UpdateUser": Action(update_user, {**_USER, "NewPath": STRING, "NewUserName": STRING}, _OWN, _renamed_user,
                         writes=True, context=_entity_keys),
    "DeleteUser": Action(delete_user, _USER, _OWN, _user, writes=True, context=_entity_keys),
    "TagUser": Action(tag_user, {**_USER, "Tags": TAGS}, ("UserName", "Tags"), _user, writes=True,
                      context=_entity_keys),
    "UntagUser": Action(untag_user, {**_USER, "TagKeys": ListOf(STRING)}, ("UserName", "TagKeys"), _user,
                        writes=True, context=_entity_keys),
    "ListUserTags": Action(list_user_tags, {**_USER, **PAGED}, _OWN, _user, context=_entity_keys),
    # Groups
    "CreateGroup": Action(create_group, {**_GROUP, "Path": STRING}, ("GroupName",), _group, writes=True),
    "GetGroup": Action(get_group, {**_GROUP, **PAGED}, ("GroupName",), _group),
    "ListGroups": Action(list_groups, {"PathPrefix": STRING, **PAGED}),
    "DeleteGroup": Action(delete_group, _GROUP, ("GroupName",), _group, writes=True),
    "AddUserToGroup": Action(add_user_to_group, {**_GROUP, **_USER}, ("GroupName", "UserName"), _group,
                             writes=True),
    "RemoveUserFromGroup": Action(remove_user_from_group, {**_GROUP, **_USER}, ("GroupName", "UserName"), _group,
                                  writes=True),
    "ListGroupsForUser": Action(list_groups_for_user, {**_USER, **PAGED}, _OWN, _user),
    # Roles
    "CreateRole": Action(create_role, {**_ROLE, "AssumeRolePolicyDocument": STRING, "Path": STRING,
                                       "MaxSessionDuration": INTEGER, "PermissionsBoundary": STRING, "Tags": TAGS,
                                       "Description": STRING},
                         ("RoleName", "AssumeRolePolicyDocument"), _new_role, writes=True, context=_entity_keys,
                         unsupported=("Description",)),
    "GetRole": Action(get_role, _ROLE, ("RoleName",), _role),
    "ListRoles": Action(list_roles, {"PathPrefix": STRING, **PAGED}),
    "UpdateRole": Action(update_role, {**_ROLE, "MaxSessionDuration": INTEGER, "Description": STRING},
                         ("RoleName",), _role, writes=True, context=_entity_keys, unsupported=("Description",)),
    "UpdateAssumeRolePolicy": Action(update_assume_role_policy, {**_ROLE, "PolicyDocument": STRING},
                                     ("RoleName", "PolicyDocument"), _role, writes=True, context=_entity_keys),
    "DeleteRole": Action(delete_role, _ROLE, ("RoleName",), _role, writes=True, context=_entity_keys),
    "TagRole": Action(tag_role, {**_ROLE, "Tags": TAGS}, ("RoleName", "Tags"), _role, writes=True,
                      context=_entity_keys),
    "UntagRole": Action(untag_role, {**_ROLE, "TagKeys": ListOf(STRING)}, ("RoleName", "TagKeys"), _role,
                        writes=True, context=_entity_keys),
    "ListRoleTags": Action(list_role_tags, {**_ROLE, **PAGED}, ("RoleName",), _role, context=_entity_keys),
    # Managed policies
    "CreatePolicy": Action(create_policy, {**_INLINE, "Path": STRING, "Description": STRING, "Tags": TAGS},
                           ("PolicyName", "PolicyDocument"), _new_policy, writes=True,
                           unsupported=("Description", "Tags")),
    "GetPolicy": Action(get_policy, _POLICY, ("PolicyArn",), _policy),
    "ListPolicies": Action(list_policies, {"Scope": STRING, "OnlyAttached": BOOLEAN, "PathPrefix": STRING,
                                           "PolicyUsageFilter": STRING, **PAGED}),
    "DeletePolicy": Action(delete_policy, _POLICY, ("PolicyArn",), _policy, writes=True),
    "CreatePolicyVersion": Action(create_policy_version, {**_POLICY, "PolicyDocument": STRING,
                                                          "SetAsDefault": BOOLEAN},
                                  ("PolicyArn", "PolicyDocument"), _policy, writes=True),
    "GetPolicyVersion": Action(get_policy_version, {**_POLICY, "VersionId": STRING}, ("PolicyArn", "VersionId"),
                               _policy),
    "ListPolicyVersions": Action(list_policy_versions, {**_POLICY, **PAGED}, ("PolicyArn",), _policy),
    "SetDefaultPolicyVersion": Action(set_default_policy_version, {**_POLICY, "VersionId": STRING},
                                      ("PolicyArn", "VersionId"), _policy, writes=True),
    "DeletePolicyVersion": Action(delete_policy_version, {**_POLICY, "VersionId": STRING},
                                  ("PolicyArn", "VersionId"), _policy, writes=True),
    "ListEntitiesForPolicy": Action(list_entities_for_policy, {**_POLICY, "EntityFilter": STRING,
                                                               "PathPrefix": STRING, "PolicyUsageFilter": STRING,
                                                               **PAGED}, ("PolicyArn",), _policy),
    # Attached policies
    "AttachUserPolicy": Action(attach_user_policy, {**_USER, **_POLICY}, ("UserName", "PolicyArn"), _user,
                               writes=True, context=_entity_keys),
    "DetachUserPolicy": Action(detach_user_policy, {**_USER, **_POLICY}, ("UserName", "PolicyArn"), _user,
                               writes=True, context=_entity_keys),
    "ListAttachedUserPolicies": Action(list_attached_user_policies, {**_USER, "PathPrefix": STRING, **PAGED},
                                       _OWN, _user),
    "AttachGroupPolicy": Action(attach_group_policy, {**_GROUP, **_POLICY}, ("GroupName", "PolicyArn"), _group,
                                writes=True, context=_policy_keys),
    "DetachGroupPolicy": Action(detach_group_policy, {**_GROUP, **_POLICY}, ("GroupName", "PolicyArn"), _group,
                                writes=True, context=_policy_keys),
    "ListAttachedGroupPolicies": Action(list_attached_group_policies, {**_GROUP, "PathPrefix": STRING, **PAGED},
                                        ("GroupName",), _group),
    "AttachRolePolicy": Action(attach_role_policy, {**_ROLE, **_POLICY}, ("RoleName", "PolicyArn"), _role,
                               writes=True, context=_entity_keys),
    "DetachRolePolicy": Action(detach_role_policy, {**_ROLE, **_POLICY}, ("RoleName", "PolicyArn"), _role,
                               writes=True, context=_entity_keys),
    "ListAttachedRolePolicies": Action(list_attached_role_policies, {**_ROLE, "PathPrefix": STRING, **PAGED},
                                       ("RoleName",), _role),
    # Inline policies
    "PutUserPolicy": Action(put_user_policy, {**_USER, **_INLINE}, ("UserName", "PolicyName", "PolicyDocument"),
                            _user, writes=True, context=_entity_keys),
    "GetUserPolicy": Action(get_user_policy, {**_USER, "PolicyName": STRING}, ("UserName", "PolicyName"), _user),
    "DeleteUserPolicy": Action(delete_user_policy, {**_USER, "PolicyName": STRING}, ("UserName", "PolicyName"),
                               _user, writes=True, context=_entity_keys),
    "ListUserPolicies": Action(list_user_policies, {**_USER, **PAGED}, _OWN, _user),
    "PutGroupPolicy": Action(put_group_policy, {**_GROUP, **_INLINE},
                             ("GroupName", "PolicyName", "PolicyDocument"), _group, writes=True),
    "GetGroupPolicy": Action(get_group_policy, {**_GROUP, "PolicyName": STRING}, ("GroupName", "PolicyName"),
                             _group),
    "DeleteGroupPolicy": Action(delete_group_policy, {**_GROUP, "PolicyName": STRING},
                                ("GroupName", "PolicyName"), _group, writes=True),
    "ListGroupPolicies": Action(list_group_policies, {**_GROUP, **PAGED}, ("GroupName",), _group),
    "PutRolePolicy": Action(put_role_policy, {**_ROLE, **_INLINE}, ("RoleName", "PolicyName", "PolicyDocument"),
                            _role, writes=True, context=_entity_keys),
    "GetRolePolicy": Action(get_role_policy, {**_ROLE, "PolicyName": STRING}, ("RoleName", "PolicyName"), _role),
    "DeleteRolePolicy": Action(delete_role_policy, {**_ROLE, "PolicyName": STRING}, ("RoleName", "PolicyName"),
                               _role, writes=True, context=_entity_keys),
    "ListRolePolicies": Action(list_role_policies, {**_ROLE, **PAGED}, ("RoleName",), _role),
    # Permissions boundaries
    "PutUserPermissionsBoundary": Action(put_user_permissions_boundary, {**_USER, "PermissionsBoundary": STRING},
                                         ("UserName", "PermissionsBoundary"), _user, writes=True,
                                         context=_entity_keys),
    "DeleteUserPermissionsBoundary": Action(delete_user_permissions_boundary, _USER, _OWN, _user, writes=True,
                                            context=_entity_keys),
    "PutRolePermissionsBoundary": Action(put_role_permissions_boundary, {**_ROLE, "PermissionsBoundary": STRING},
                                         ("RoleName", "PermissionsBoundary"), _role, writes=True,
                                         context=_entity_keys),
    "DeleteRolePermissionsBoundary": Action(delete_role_permissions_boundary, _ROLE, ("RoleName",), _role,
                                            writes=True, context=_entity_keys),
    # Access keys (UserName left out: the caller's own)
    "CreateAccessKey": Action(create_access_key, _USER, (), _user, writes=True),
    "ListAccessKeys": Action(list_access_keys, {**_USER, **PAGED}, (), _user),
    "UpdateAccessKey": Action(update_access_key, {**_USER, "AccessKeyId": STRING, "Status": STRING},
                              ("AccessKeyId", "Status"), _user, writes=True),
    "DeleteAccessKey": Action(delete_access_key, {**_USER, "AccessKeyId": STRING}, ("AccessKeyId",), _user,
                              writes=True),
    # Passwords
    "CreateLoginProfile": Action(create_login_profile, {**_USER, "Password": STRING,
                                                        "PasswordResetRequired": BOOLEAN}, (), _user, writes=True),
    "GetLoginProfile": Action(get_login_profile, _USER, (), _user),
    "UpdateLoginProfile": Action(update_login_profile, {**_USER, "Password": STRING,
                                                        "PasswordResetRequired": BOOLEAN}, _OWN, _user, writes=True),
    "DeleteLoginProfile": Action(delete_login_profile, _USER, (), _user, writes=True),
    "ChangePassword": Action(change_password, {"OldPassword": STRING, "NewPassword": STRING},
                             ("OldPassword", "NewPassword"), _user, writes=True, check=check_old_password),
    # MFA devices
    "EnableMFADevice": Action(enable_mfa_device, {**_USER, "SerialNumber": STRING, "AuthenticationCode1": STRING,
                                                  "AuthenticationCode2": STRING},
                              ("UserName", "SerialNumber", "AuthenticationCode1", "AuthenticationCode2"), _user,
                              writes=True),
    "DeactivateMFADevice": Action(deactivate_mfa_device, {**_USER, "SerialNumber": STRING}, ("SerialNumber",),
                                  _user, writes=True),
    "ListMFADevices": Action(list_mfa_devices, {**_USER, **PAGED}, (), _user),
    "CreateVirtualMFADevice": Action(create_virtual_mfa_device, {"VirtualMFADeviceName": STRING, "Path": STRING,
                                                                 "Tags": TAGS},
                                     ("VirtualMFADeviceName",), _new_mfa, writes=True, unsupported=("Tags",)),
    "DeleteVirtualMFADevice": Action(delete_virtual_mfa_device, {"SerialNumber": STRING}, ("SerialNumber",),
                                     _serial, writes=True),
    "ListVirtualMFADevices": Action(list_virtual_mfa_devices, {"AssignmentStatus": STRING, **PAGED}),
    # Last use, and the credential report
    "GetAccessKeyLastUsed": Action(get_access_key_last_used, {"AccessKeyId": STRING}, ("AccessKeyId",), _key_owner),
    "GenerateCredentialReport": Action(generate_credential_report, {}),
    "GetCredentialReport": Action(get_credential_report, {}),
    # The account, and the simulator
    "GetAccountAuthorizationDetails": Action(get_account_authorization_details,
                                             {"Filter": ListOf(STRING), **PAGED}),
    "SimulatePrincipalPolicy": Action(simulate_principal_policy, SIMULATE_PRINCIPAL,
                                      ("PolicySourceArn", "ActionNames"), _source),
    "SimulateCustomPolicy": Action(simulate_custom_policy, SIMULATE_CUSTOM, ("PolicyInputList", "ActionNames"),
                                   _anything),
}
