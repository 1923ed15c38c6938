"""What a valid directory should still not hold: root users with access keys or without MFA.

IAM's own advice for the account root user (IAM User Guide, "Root user best practices"): do not create access keys
for it, and enable MFA on it. A directory that does otherwise is valid, and is served, but the start-up of an ``IAM``
logs each finding and ``iam-middleware check`` lists it as a warning (failing under ``--strict``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["directory_warnings"]


def directory_warnings(directory: Any) -> list[str]:
    """One line per finding, with its place (``accounts.111122223333.root: ...``). Takes a ``Snapshot``; a
    directory without ``roots`` (an application's own ``Directory``) has nothing to say."""
    warnings = []
    roots = getattr(directory, "roots", None) or {}
    for account, root in sorted(roots.items()):
        where = f"accounts.{account}.root"
        if root.access_keys:
            ids = ", ".join(key.id for key in root.access_keys)
            warnings.append(f"{where}: the root user has access keys ({ids}); a key of the root user can do anything "
                            "in the account and no policy limits it: delete it, and give an IAM user or role the "
                            "access it served")
        if not root.mfa_devices:
            warnings.append(f"{where}: the root user has no MFA device; enable one (totp_secret or mfa_devices)")
    return warnings
