"""Users built one by one, and users loaded on demand (``SQLDirectoryReloader.open(..., users="lazy")``).

``Builder`` builds the ``User`` of a few user records with the file loader's own code (``_Builder``), against a
snapshot's policies, groups and accounts: what an incremental reload does for the users a revision changed, and
what ``LazyUsers`` does for a user asked for the first time. Only the user's own validation runs (its fields, the
policies and groups it names): the checks across the whole directory (unique names, ids and keys) were made when
the revision was committed (``SQLDirectory.change()`` commits only states the whole validation accepts), so
committed revisions are trusted. A writer checks its changes with it too (``_incremental``), the rules across the
directory then checked against the rest of it.

``LazyUsers`` is a snapshot's ``UserLoader``: a user it does not hold costs one indexed query (``read_users``), then
is remembered in a bounded LRU (``UserCache``). Each snapshot has its own cache; the next snapshot starts from a
copy without the users its revisions changed (and the look-ups those changes may answer differently), so a request
pinned to a snapshot never sees a user of a later revision mixed with that snapshot's policies. A lookup that cannot
reach the database raises ``DirectoryUnavailableError`` (503): a user that cannot be read is never taken for one
that does not exist, nor for one that does.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import SQLAlchemyError

from ..._exceptions import ConfigurationError, ServiceUnavailableError
from ...policy import Policy
from .._load import _Builder
from .._model import AccessKey, User
from .._snapshot import Snapshot
from . import _schema as t
from ._mapping import file_mapping
from ._records import Records, empty_records, read_users

__all__ = ["Builder", "DirectoryUnavailableError", "LazyUsers", "UserCache"]

logger = logging.getLogger("iam_middleware.reload")


class DirectoryUnavailableError(ServiceUnavailableError):
    """A user needed to decide a request could not be loaded from the directory database (unreachable, or its
    rows do not make a valid user): the request is refused, never decided without it."""

    code = "DirectoryUnavailable"

    def __init__(self, detail: str, *, retry_after: float = 1.0) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.message = "The directory needed to decide this request is unavailable; retry shortly."


class _Reusing(_Builder):
    """The file loader's builder with the settings' secrets already read and the snapshot's policies known."""

    def __init__(self, data: Mapping[str, Any], base_dir: Path, source: str, secrets: Mapping[str, Any],
                 policies: Mapping[str, Policy]) -> None:
        self._known_secrets = secrets
        super().__init__(data, base_dir, source)
        self.policies = dict(policies)

    def _load_secrets(self) -> Mapping[str, Any]:
        return self._known_secrets


class Builder:
    """Builds users from their records for snapshots of one directory (its settings and secrets, read once)."""

    def __init__(self, settings: Mapping[str, Any], base_dir: Path, source: str) -> None:
        self.settings = dict(settings)
        self.base_dir = base_dir
        self.source = source
        reader = _Builder({"settings": self.settings}, base_dir, source)
        if reader.problems:
            raise ConfigurationError(f"{source}: " + "; ".join(reader.problems))
        self.secrets = reader.secrets

    def users(self, snapshot: Snapshot, users: Records, devices: Records) -> list[User]:
        """The ``User`` of each record (``devices``: the MFA devices they hold), for ``snapshot``; raises
        ConfigurationError naming each problem (a user that cannot be built is never served half-built)."""
        if not users:
            return []
        records = empty_records()
        records["settings"], records["users"], records["mfa_devices"] = self.settings, users, devices
        data = file_mapping(records)
        builder = _Reusing(data, self.base_dir, self.source, self.secrets, snapshot.policies)
        built = builder._users(snapshot.accounts, set(snapshot.groups))
        if builder.problems:
            raise ConfigurationError(f"{self.source}: invalid user(s):\n  " + "\n  ".join(builder.problems))
        return built


def refers_to(user: User, policies: Collection[str]) -> bool:
    """Whether ``user`` holds one of the managed ``policies`` (attached, or as its boundary)."""
    return any(p.id in policies for p in user.policies) or (user.boundary is not None and
                                                             user.boundary.id in policies)


class UserCache:
    """A bounded LRU of look-ups (``("name", name)``, ``("arn", arn)`` or ``("key", key id)``) and the users each
    found (none, for one that found nobody: those are remembered too, so unknown names cannot make every request a
    query)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ConfigurationError("cache_size must be at least 1")
        self.size = size
        self._entries: OrderedDict[tuple[str, str], tuple[User, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, lookup: tuple[str, str]) -> tuple[User, ...] | None:
        with self._lock:
            found = self._entries.get(lookup)
            if found is not None:
                self._entries.move_to_end(lookup)
            return found

    def put(self, lookup: tuple[str, str], users: tuple[User, ...]) -> None:
        with self._lock:
            self._entries[lookup] = users
            self._entries.move_to_end(lookup)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def users(self) -> list[User]:
        """Every user remembered now (a user found by name and by key may appear twice)."""
        with self._lock:
            return [user for found in self._entries.values() for user in found]

    def without(self, user_ids: Collection[str], names: Collection[str], keys: Collection[str],
                policies: Collection[str] = ()) -> UserCache:
        """A copy without the look-ups that found one of ``user_ids`` or a user holding one of ``policies``, and
        without those a change may now answer differently (of ``names``, by name or ARN, and of access ``keys``):
        the cache of the next snapshot."""
        copy = UserCache(self.size)
        with self._lock:
            for lookup, found in self._entries.items():
                kind, value = lookup
                if ((kind == "key" and value in keys) or (kind == "name" and value in names)
                        or (kind == "arn" and value.rpartition("/")[2] in names)
                        or any(u.id in user_ids or (policies and refers_to(u, policies)) for u in found)):
                    continue
                copy._entries[lookup] = found
        return copy


class LazyUsers:
    """A snapshot's ``UserLoader``: one indexed query for a user it has not seen, then its bounded cache."""

    def __init__(self, engine: Any, builder: Builder, cache: UserCache, *, retry_after: float = 1.0) -> None:
        self.engine = engine
        self.builder = builder
        self.cache = cache
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"LazyUsers({len(self.cache)} of {self.cache.size} look-ups remembered)"

    def users_named(self, snapshot: Snapshot, name: str) -> Sequence[User]:
        return self._find(snapshot, ("name", name), select(t.users.c.id).where(t.users.c.name == name))

    def user_with_arn(self, snapshot: Snapshot, arn: str) -> User | None:
        account, _, rest = arn.partition(":iam::")[2].partition(":user")
        chosen = select(t.users.c.id).where(t.users.c.account_id == account,
                                            t.users.c.name == rest.rpartition("/")[2])
        return next((u for u in self._find(snapshot, ("arn", arn), chosen) if u.arn == arn), None)

    def user_with_key(self, snapshot: Snapshot, key_id: str) -> tuple[AccessKey, User] | None:
        chosen = select(t.access_keys.c.user_id).where(t.access_keys.c.id == key_id)
        for user in self._find(snapshot, ("key", key_id), chosen):
            for key in user.access_keys:
                if key.id == key_id:
                    return key, user
        return None

    def _find(self, snapshot: Snapshot, lookup: tuple[str, str], chosen: Select[Any]) -> tuple[User, ...]:
        found = self.cache.get(lookup)
        if found is not None:
            return found
        try:
            with self.engine.connect() as connection:
                revision, users, devices = read_users(connection, chosen, revision=True)
        except SQLAlchemyError as exc:
            logger.warning("a user could not be loaded from the directory database (%s); the request is refused",
                           type(exc).__name__)
            raise DirectoryUnavailableError(f"the directory database cannot be read ({type(exc).__name__})",
                                            retry_after=self.retry_after) from None
        try:
            built = tuple(self.builder.users(snapshot, users, devices))
        except ConfigurationError as exc:
            # A user of a later revision may name a policy this snapshot does not know yet: the reload is on its
            # way. Otherwise the rows were edited by hand past the validation of change().
            logger.error("a user of the directory database could not be built for revision %d:\n%s",
                         snapshot.version, exc)
            raise DirectoryUnavailableError(f"the user's rows do not make a valid user at revision "
                                            f"{snapshot.version}", retry_after=self.retry_after) from None
        if revision == snapshot.version:
            # Remembered only when read at the snapshot's own revision: a later one belongs to the next snapshot.
            # Each user found is remembered by its ARN too: how a request's authorization finds its user again.
            self.cache.put(lookup, built)
            for user in built:
                if lookup != ("arn", user.arn):
                    self.cache.put(("arn", user.arn), (user,))
        return built
