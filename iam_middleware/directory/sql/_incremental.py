"""A change validated by what it touches: the writer's check of a ``change()`` block against the state it began on.

The state a change begins on was validated whole (or by this check, which accepts only what the whole validation
accepts), so a new problem can only involve what the change touched, or what depends on it. This check validates:

- the changed users, and every user that depends on a changed entity (the holders of a changed managed policy,
  attached or as their boundary, the members of a changed group, the users holding a changed MFA device), with the
  file loader's own code for one user (``Builder``: fields, account, groups, policies, boundary, keys, devices);
- when a managed policy, group, role or MFA device not held by a user changed, everything but the users, whole
  with the file loader (few entities beside the users);
- the rules across entities against the rest of the directory: user names unique per account whatever their
  case, unique ids unique across users and roles, access key ids across users and root users, MFA serial numbers
  across the directory.

It answers the new ``Loaded`` (the snapshot derived from the one in force, ``Snapshot.derive``, as an incremental
reload builds it), or None when it cannot vouch for the change: a change of the settings, routes or accounts, more
than ``MAX_USERS`` users to build, or any problem found. None sends the change to the whole validation, which
decides (and names every problem), so this check never refuses what the whole validation would accept, and a
problem it misses in a case it does not cover is still caught there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..._exceptions import ConfigurationError
from .._load import ROOT_MFA_NAME, mfa_serial
from .._snapshot import Snapshot
from ._lazy import Builder
from ._records import Records

if TYPE_CHECKING:
    from ._directory import Loaded

__all__ = ["MAX_USERS", "check_change"]

#: More users to build than this in one change: the whole directory is validated instead (as fast by then).
MAX_USERS = 5000
_WHOLE = frozenset({"settings", "routes", "accounts"})
_REST = frozenset({"policies", "groups", "roles"})


def _entry(entries: dict[str, Any], key: str) -> Any:
    """An entry as it is, without a draft's ``Overlay`` taking a copy of it."""
    return dict.get(entries, key)


def check_change(base: Loaded, before: Records, after: Records, changed: Mapping[str, Collection[str]],
                 revision: int, *, validate: Callable[[Records, int], Loaded], builder: Callable[[], Builder]
                 ) -> Loaded | None:
    """The ``Loaded`` of ``after`` at ``revision`` if the change from ``before`` (whose validated state is ``base``)
    is valid by what it touches; None when the whole directory must be validated to decide (see the module).

    ``changed``: the keys that differ, by kind (``changed_keys``); ``validate``: the whole validation (used here
    on everything but the users); ``builder``: builds users from their records for a snapshot.
    """
    if _WHOLE & changed.keys():
        return None
    users = set(changed.get("users", ()))
    rest_changed = bool(_REST & changed.keys())
    for key in changed.get("mfa_devices", ()):
        for device in (_entry(before["mfa_devices"], key), _entry(after["mfa_devices"], key)):
            if device is None:
                continue
            if device["holder"] in before["users"] or device["holder"] in after["users"]:
                users.add(device["holder"])  # its User holds the device
            else:
                rest_changed = True  # an account's device (its root user's, or enabled for nobody)
    context = base.snapshot
    rest = None
    if rest_changed:
        others = {key: device for key, device in after["mfa_devices"].items() if device["holder"] not in after["users"]}
        try:
            rest = validate({**after, "users": {}, "mfa_devices": others}, revision)
        except ConfigurationError:
            return None
        context = rest.snapshot
        users |= _dependents(after["users"], set(changed.get("policies", ())), set(changed.get("groups", ())))
    if len(users) > MAX_USERS:
        return None
    present = {unique: _entry(after["users"], unique) for unique in users if unique in after["users"]}
    held = {key: device for key, device in after["mfa_devices"].items() if device["holder"] in present}
    try:
        built = builder().users(context, present, held)
    except ConfigurationError:
        return None
    if not _unique_across(base.snapshot, after, present, users, set(changed.get("roles", ())), context.partition):
        return None
    if rest is None:
        snapshot = base.snapshot.derive(version=revision, removed=users, added=built)
    else:
        new = rest.snapshot
        snapshot = base.snapshot.derive(version=revision, removed=users, added=built, accounts=new.accounts.values(),
                                        groups=new.groups.values(), roles=new.roles.values(), policies=new.policies)
    return dataclasses.replace(base, snapshot=snapshot)


def _dependents(users: Mapping[str, Any], policies: set[str], groups: set[str]) -> set[str]:
    """The users holding one of ``policies`` (attached, or as their boundary) or in one of ``groups``."""
    if not policies and not groups:
        return set()
    found = set()
    for unique, entry in users.items():
        boundary = entry["boundary"]
        if (not policies.isdisjoint(entry["policies"]) or (isinstance(boundary, str) and boundary in policies)
                or not groups.isdisjoint(entry["groups"])):
            found.add(unique)
    return found


def _unique_across(base: Snapshot, after: Records, present: Mapping[str, Any], users: set[str], roles: set[str],
                   partition: str) -> bool:
    """Whether the users ``present`` (of the changed ``users``; the others are gone) and the changed ``roles`` keep
    the directory's names, ids, access key ids and MFA serial numbers unique. The rest of the directory was valid
    (``base``, whose indexes answer), so only they can clash."""
    names = {(entry["account"], entry["name"].lower()) for entry in present.values()}
    keys = [key["id"] for entry in present.values() for key in entry["access_keys"]]
    if len(names) != len(present) or len(set(keys)) != len(keys):
        return False
    if any(unique in after["roles"] for unique in present) or any(unique in after["users"] for unique in roles):
        return False
    for account, name in names:
        if any(user.id not in users for user in base.users_named_alike(account, name)):
            return False
    for key_id in keys:
        found = base.access_key(key_id)
        if found is not None and (found[1].is_root or found[1].id not in users):
            return False
    serials = list(_serials(after, partition))
    return len(serials) == len(set(serials))


def _serials(records: Records, partition: str) -> Iterator[str]:
    """The serial number (lower case) of every MFA device of the directory as its file mapping places them
    (``file_mapping``): users' and root users' ``totp_secret`` and devices, and the devices enabled for nobody."""
    for entry in records["users"].values():
        if entry["totp_secret"] is not None:
            yield mfa_serial(partition, entry["account"], entry["path"], entry["name"]).lower()
    for account_id, account in records["accounts"].items():
        root = account.get("root")
        if root is not None and root["totp_secret"] is not None:
            yield mfa_serial(partition, account_id, "/", ROOT_MFA_NAME).lower()
    for device in records["mfa_devices"].values():
        holder = device["holder"]
        if holder is None:
            owner = device["account"] if device["account"] in records["accounts"] else None
        elif holder in records["users"]:
            owner = _entry(records["users"], holder)["account"]
        elif holder in records["accounts"] and _entry(records["accounts"], holder).get("root") is not None:
            owner = holder
        else:
            owner = None  # a holder that does not exist: the file mapping leaves the device out
        if owner is not None:
            yield mfa_serial(partition, owner, device["path"], device["name"]).lower()
