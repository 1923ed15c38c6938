"""An immutable directory snapshot: lookups, principal construction, and per-principal compiled authorizers.

A reload builds a new Snapshot and swaps it in whole; Authorizers (and so their decision caches) belong to one
snapshot, so a policy change can never be answered from a stale cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from .._principal import CredentialKind, Principal, PrincipalType
from ..policy import Caller, Policy, PolicySet
from ..policy._authorizer import Authorizer
from ._model import AccessKey, Account, Group, Role, User

__all__ = ["Directory", "Snapshot", "UserLoader", "stable_id"]


def stable_id(prefix: str, arn: str) -> str:
    """An AWS-style unique id (``AIDA…``/``AROA…``) derived from the ARN, stable across reloads."""
    digest = hashlib.sha256(arn.encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return prefix + "".join(alphabet[b % 32] for b in digest[:17])


@runtime_checkable
class Directory(Protocol):
    """What the middleware asks of a directory. ``Snapshot`` implements it; an application may back it with its
    own database by implementing these methods (each must be fast, or cached by the implementation)."""

    version: int
    partition: str

    def user(self, name: str, account: str | None = None) -> User | None: ...
    def user_by_arn(self, arn: str) -> User | None: ...
    def access_key(self, key_id: str) -> tuple[AccessKey, User] | None: ...
    def role(self, name_or_arn: str, account: str | None = None) -> Role | None: ...
    def account(self, account_id: str) -> Account | None: ...
    def authorizer(self, principal: Principal, session_policy: Policy | None = None) -> Authorizer: ...


class UserLoader(Protocol):
    """Finds the users a snapshot does not hold, for a directory whose users are loaded on demand (the database
    directory's ``users="lazy"``, docs/live-directory.md). Each lookup answers for ``snapshot`` (its policies,
    groups and accounts); a lookup that cannot be answered raises (a ``ServiceUnavailableError``: 503), never
    finds nobody for want of an answer."""

    def users_named(self, snapshot: Snapshot, name: str) -> Sequence[User]:
        """Every user named ``name`` (exactly), in any account."""
        ...

    def user_with_arn(self, snapshot: Snapshot, arn: str) -> User | None:
        """The user (never a root user) whose ARN is ``arn``."""
        ...

    def user_with_key(self, snapshot: Snapshot, key_id: str) -> tuple[AccessKey, User] | None:
        """The user holding long-term access key ``key_id``, with the key."""
        ...


class Snapshot:
    """One validated, immutable version of the directory.

    With a ``loader``, the snapshot holds no users (``users`` is empty): ``user``, ``user_by_arn`` and
    ``access_key`` ask the loader, and whatever lists every user (``users``) sees none.
    """

    def __init__(
        self,
        *,
        partition: str,
        accounts: Iterable[Account],
        users: Iterable[User],
        groups: Iterable[Group],
        roles: Iterable[Role],
        version: int = 1,
        source: str = "<memory>",
        policies: Mapping[str, Policy] | None = None,
        loader: UserLoader | None = None,
    ) -> None:
        self.version = version
        #: Where users not held here are found (None: every user is held here).
        self.loader = loader
        #: The directory's named (managed) policies, by name: what a session's ``PolicyArns`` may name.
        self.policies: Mapping[str, Policy] = MappingProxyType(dict(policies or {}))
        self.partition = partition
        self.source = source
        self.accounts: Mapping[str, Account] = MappingProxyType({a.id: a for a in accounts})
        self.users: Mapping[str, User] = MappingProxyType({u.arn: u for u in users})
        self.groups: Mapping[tuple[str, str], Group] = MappingProxyType({(g.account, g.name): g for g in groups})
        self.roles: Mapping[str, Role] = MappingProxyType({r.arn: r for r in roles})
        #: The account root users the directory declares, by account id (never among ``users``).
        self.roots: Mapping[str, User] = MappingProxyType(
            {a.id: a.root for a in self.accounts.values() if a.root is not None})
        self._roots_by_arn = {root.arn: root for root in self.roots.values()}
        by_name: dict[str, tuple[User, ...]] = {}
        keys: dict[str, tuple[AccessKey, User]] = {}
        for user in self.users.values():
            by_name[user.name] = (*by_name.get(user.name, ()), user)
            for key in user.access_keys:
                keys[key.id] = (key, user)
        for root in self.roots.values():
            for key in root.access_keys:
                keys[key.id] = (key, root)
        self._users_by_name = by_name
        self._by_id = {user.id: user for user in self.users.values()}
        self._access_keys = keys
        self._alike: dict[tuple[str, str], tuple[User, ...]] | None = None  # built by ``users_named_alike``
        self._authorizers: dict[tuple[str, str], Authorizer] = {}
        # Compiled layers per user or role (and session policy): many sessions of one role share them.
        self._layers: dict[tuple[str, str], tuple[PolicySet | None, ...]] = {}
        self._lock = threading.Lock()

    def derive(self, *, version: int, removed: Collection[str] = (), added: Iterable[User] = (),
               accounts: Iterable[Account] | None = None, groups: Iterable[Group] | None = None,
               roles: Iterable[Role] | None = None, policies: Mapping[str, Policy] | None = None,
               loader: UserLoader | None = None) -> Snapshot:
        """A new snapshot: this one without the users whose unique ids are ``removed``, with the users ``added``
        and, where given, every account, group, role and policy replaced (and ``loader``, where given).

        What an incremental reload builds: the indexes are copied and patched, not rebuilt, so the cost follows the
        change, not the directory. When only users change, the compiled authorizers of every other principal carry
        over (theirs cannot have changed); otherwise the new snapshot compiles afresh.
        """
        new = Snapshot.__new__(Snapshot)
        new.version, new.partition, new.source = version, self.partition, self.source
        new.loader = self.loader if loader is None else loader
        new.policies = self.policies if policies is None else MappingProxyType(dict(policies))
        new.accounts = self.accounts if accounts is None else MappingProxyType({a.id: a for a in accounts})
        new.groups = self.groups if groups is None else MappingProxyType({(g.account, g.name): g for g in groups})
        new.roles = self.roles if roles is None else MappingProxyType({r.arn: r for r in roles})
        new.roots = MappingProxyType({a.id: a.root for a in new.accounts.values() if a.root is not None})
        new._roots_by_arn = {root.arn: root for root in new.roots.values()}
        users, by_name, by_id, keys = dict(self.users), dict(self._users_by_name), dict(self._by_id), \
            dict(self._access_keys)
        changed = set()
        gone = [self._by_id[unique] for unique in removed if unique in self._by_id]
        if accounts is not None:
            gone += self.roots.values()
        for user in gone:
            changed.add(user.arn)
            if not user.is_root:
                del users[user.arn], by_id[user.id]
                kept = tuple(u for u in by_name[user.name] if u is not user)
                if kept:
                    by_name[user.name] = kept
                else:
                    del by_name[user.name]
            for key in user.access_keys:
                if keys.get(key.id, (None, None))[1] is user:
                    del keys[key.id]
        added = list(added)
        for user in [*added, *(new.roots.values() if accounts is not None else ())]:
            changed.add(user.arn)
            if not user.is_root:
                users[user.arn] = by_id[user.id] = user
                by_name[user.name] = (*by_name.get(user.name, ()), user)
            keys.update((key.id, (key, user)) for key in user.access_keys)
        new.users = MappingProxyType(users)
        new._users_by_name, new._by_id, new._access_keys = by_name, by_id, keys
        new._alike = None
        alike = self._alike
        if alike is not None:  # built here: patched for the new snapshot rather than built again there
            alike = dict(alike)
            for user in gone:
                if not user.is_root:
                    fold = (user.account, user.name.lower())
                    alike[fold] = tuple(u for u in alike.get(fold, ()) if u is not user)
                    if not alike[fold]:
                        del alike[fold]
            for user in (user for user in added if not user.is_root):
                fold = (user.account, user.name.lower())
                alike[fold] = (*alike.get(fold, ()), user)
            new._alike = alike
        new._lock = threading.Lock()
        if accounts is None and groups is None and roles is None and policies is None:
            with self._lock:  # a consistent copy: other threads compile into these meanwhile
                new._authorizers = {k: v for k, v in self._authorizers.items() if k[0] not in changed}
                new._layers = {k: v for k, v in self._layers.items() if k[0] not in changed}
        else:
            new._authorizers, new._layers = {}, {}
        return new

    def __repr__(self) -> str:
        return (f"Snapshot(version={self.version}, source={self.source!r}, accounts={len(self.accounts)}, "
                f"users={len(self.users)}, roles={len(self.roles)})")

    # Lookups ---------------------------------------------------------------------------------------------------
    def user(self, name: str, account: str | None = None) -> User | None:
        """A user by name; ``account/name`` or ``account=`` picks among accounts. Ambiguous names find nothing.
        An ARN names a user or a root user (``arn:…:iam::<account>:root``: how the root user signs in)."""
        if name.startswith("arn:"):
            named = self.user_by_arn(name)
            return named if named is not None and (account is None or named.account == account) else None
        if account is None and "/" in name:
            account, _, name = name.partition("/")
        pool = self._users_by_name.get(name, ()) if self.loader is None else self.loader.users_named(self, name)
        found = [u for u in pool if account is None or u.account == account]
        return found[0] if len(found) == 1 else None

    def user_by_arn(self, arn: str) -> User | None:
        """A user, or an account's root user, by ARN."""
        found = self.users.get(arn)
        if found is None and self.loader is not None and ":user/" in arn:
            found = self.loader.user_with_arn(self, arn)
        return found if found is not None else self._roots_by_arn.get(arn)

    def users_named_alike(self, account: str, name: str) -> tuple[User, ...]:
        """The users held here of ``account`` named ``name`` whatever its case (IAM's names are unique so, which a
        change is checked against). The index is built on first use and carried over, patched, by ``derive``."""
        alike = self._alike
        if alike is None:
            built: dict[tuple[str, str], tuple[User, ...]] = {}
            for user in self.users.values():
                fold = (user.account, user.name.lower())
                built[fold] = (*built.get(fold, ()), user)
            self._alike = alike = built
        return alike.get((account, name.lower()), ())

    def user_by_id(self, unique_id: str) -> User | None:
        """A user held here, by unique id (``AIDA…``)."""
        return self._by_id.get(unique_id)

    def access_key(self, key_id: str) -> tuple[AccessKey, User] | None:
        found = self._access_keys.get(key_id)
        if found is None and self.loader is not None:
            return self.loader.user_with_key(self, key_id)
        return found

    def role(self, name_or_arn: str, account: str | None = None) -> Role | None:
        if name_or_arn.startswith("arn:"):
            return self.roles.get(name_or_arn)
        found = [r for r in self.roles.values() if r.name == name_or_arn and (account is None or r.account == account)]
        return found[0] if len(found) == 1 else None

    def account(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def group(self, account: str, name: str) -> Group | None:
        return self.groups.get((account, name))

    # Principals ------------------------------------------------------------------------------------------------
    def user_principal(
        self,
        user: User,
        kind: CredentialKind,
        *,
        auth_time: float | None = None,
        mfa_time: float | None = None,
        expires_at: float | None = None,
        access_key_id: str | None = None,
        issuer: str | None = None,
    ) -> Principal:
        """The principal of a user. MFA facts exist only for session credentials (absent for long-term keys).
        A root user is ``aws:PrincipalType`` ``Account`` with the account id as ``aws:userid``, as in AWS."""
        session_like = kind in (CredentialKind.SESSION, CredentialKind.TEMPORARY_ACCESS_KEY, CredentialKind.JWT)
        return Principal(
            arn=user.arn, type=PrincipalType.ACCOUNT if user.is_root else PrincipalType.USER, account=user.account,
            name=user.name, id=user.id,
            credential_kind=kind, groups=user.groups, tags=user.tags, issuer=issuer, auth_time=auth_time,
            mfa_present=(mfa_time is not None) if session_like else None, mfa_time=mfa_time,
            token_issue_time=auth_time if session_like else None, expires_at=expires_at, access_key_id=access_key_id,
        )

    def role_principal(
        self,
        role: Role,
        session_name: str,
        kind: CredentialKind,
        *,
        auth_time: float,
        expires_at: float,
        mfa_time: float | None = None,
        session_tags: Mapping[str, str] | None = None,
        access_key_id: str | None = None,
        issuer: str | None = None,
        extra_context: Mapping[str, object] | None = None,
    ) -> Principal:
        """The principal of a role session (``arn:…:sts::acct:assumed-role/Role/session``)."""
        # Session tags override the role's tags of the same key, compared case-insensitively as AWS compares them.
        overridden = {key.lower() for key in session_tags or ()}
        tags = {key: value for key, value in role.tags.items() if key.lower() not in overridden}
        tags.update(session_tags or {})
        return Principal(
            arn=f"arn:{self.partition}:sts::{role.account}:assumed-role/{role.name}/{session_name}",
            type=PrincipalType.ASSUMED_ROLE, account=role.account, name=role.name,
            id=f"{role.id}:{session_name}", credential_kind=kind, source_arn=role.arn,
            tags=MappingProxyType(tags), issuer=issuer, auth_time=auth_time,
            mfa_present=mfa_time is not None, mfa_time=mfa_time, token_issue_time=auth_time,
            expires_at=expires_at, session_name=session_name, access_key_id=access_key_id,
            extra_context=MappingProxyType(dict(extra_context or {})),
        )

    # Authorization ---------------------------------------------------------------------------------------------
    def authorizer(self, principal: Principal, session_policy: Policy | None = None) -> Authorizer:
        """The compiled layers of a principal (cached for this snapshot's life).

        A session policy is told apart by its ``id``: give each distinct document a distinct id (the token service
        uses a digest of the document).
        """
        key = (principal.arn, session_policy.id if session_policy is not None else "")
        found = self._authorizers.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._authorizers.get(key)
            if found is None:
                if len(self._authorizers) >= 10_000:
                    self._authorizers.clear()
                found = self._authorizers[key] = self._build_authorizer(principal, session_policy)
        return found

    def _build_authorizer(self, principal: Principal, session_policy: Policy | None) -> Authorizer:
        key = (principal.principal_arn, session_policy.id if session_policy is not None else "")
        layers = self._layers.get(key)
        if layers is None:
            if len(self._layers) >= 10_000:
                self._layers.clear()
            layers = self._layers[key] = self._build_layers(principal, session_policy)
        identity, boundary, session, guardrails = layers
        return Authorizer(Caller.from_arn(principal.arn), identity=identity, boundary=boundary, session=session,
                          guardrails=guardrails)

    def _build_layers(self, principal: Principal, session_policy: Policy | None) -> tuple[PolicySet | None, ...]:
        """(identity, boundary, session, guardrails) of a user or role; an unknown one has no identity policies."""
        account = self.accounts.get(principal.account)
        guardrails = PolicySet.of(account.guardrails) if account is not None and account.guardrails else None
        if principal.type is PrincipalType.ACCOUNT:
            # The root user: no identity policy, boundary or session policy exists for it; the evaluator grants it
            # its own account, and only guardrails and resource-based denies limit it.
            return None, None, None, guardrails
        if principal.type is PrincipalType.USER:
            user = self.user_by_arn(principal.arn)
            if user is None or user.is_root:
                return None, None, None, guardrails
            policies = list(user.policies)
            for group_name in user.groups:
                group = self.groups.get((user.account, group_name))
                if group is not None:
                    policies.extend(group.policies)
            return PolicySet(policies), PolicySet.of(user.boundary), None, guardrails
        role = self.roles.get(principal.source_arn or "")
        if role is None:
            return None, None, None, guardrails
        return PolicySet(role.policies), PolicySet.of(role.boundary), PolicySet.of(session_policy), guardrails
