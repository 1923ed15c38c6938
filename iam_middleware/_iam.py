"""IAM: the object users construct, from a directory file or a dict; it composes the parts that decide.

Each responsibility is its own small object, named by an attribute (docs/gate.md, "The parts of IAM"):
``snapshots`` (the snapshot in force, pinning, reloads), ``authenticators`` (the ordered chain that turns a request
into a Principal), ``credentials`` (the verifiers and what they remember), ``decisions`` (the one ``decide``) and
``logins`` (password + TOTP). ``authenticate``, ``authorize`` and ``login`` are the library's short forms of the
parts' own methods. Any failure is an ``IAMError`` that renders itself (401/403/400/503).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._authn import Authenticator, AuthenticatorChain, BearerAuthenticator, CookieAuthenticator, SigV4Authenticator
from ._credentials import CredentialResolver
from ._decisions import UNSET, DecisionPoint, _Unset
from ._exceptions import ConfigurationError
from ._logins import Logins
from ._principal import Principal
from ._request import RequestView
from ._settings import Settings
from ._snapshots import SnapshotHandle
from .authenticators._sessions import IssuedSession
from .directory import Snapshot, directory_from_dict, load_directory
from .directory._audit import directory_warnings
from .directory._load import _read_mapping
from .policy import Decision, Policy
from .routing import RuleTable
from .state import MemoryStore, StateStore

__all__ = ["IAM"]

logger = logging.getLogger("iam_middleware")


class IAM:
    """The directory, the settings and the state store, validated whole, and the parts that decide with them.

    ``snapshots`` is the ``SnapshotHandle`` (the snapshot in force, the one pinned for a request, the reloaders'
    refresh hooks); ``authenticators`` the ``AuthenticatorChain`` (custom authenticators go first);
    ``credentials`` the ``CredentialResolver`` (SigV4, session tokens, outside JWTs, temporary credentials, and
    the caches of verified ones); ``decisions`` the ``DecisionPoint`` (``decide``: the one entry to a decision);
    ``logins`` the password + TOTP ``Logins``.

    ``on_password_rehash(user_arn, new_hash)``, if given, receives a new hash of a user's password after a login
    whose stored hash is in the earlier form or below the current cost (``iam_middleware.passwords.needs_rehash``),
    to store where the directory comes from; the directory file itself is never written. Without it, such a login
    logs a warning, once per user, that the hash should be made again.
    """

    def __init__(
        self,
        directory: Snapshot,
        *,
        settings: Settings | None = None,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        source: str | os.PathLike[str] | None = None,
        rules: RuleTable | None = None,
        authenticators: list[Authenticator] | None = None,
        on_password_rehash: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings or Settings(partition=directory.partition)
        #: The directory file's ``[[routes]]`` rules table: what routes of an app whose code is not touched require.
        self.rules = rules or RuleTable()
        self.store: StateStore = store if store is not None else _default_store(self.settings)
        self.clock = clock
        self.source = Path(source) if source is not None else None
        self.snapshots = SnapshotHandle(directory, clock=clock)
        self.decisions = DecisionPoint(self.snapshots, self.settings, clock=clock)
        self.credentials = CredentialResolver(self.snapshots, self.settings, self.store, self.decisions, clock=clock)
        self.logins = Logins(self.snapshots, self.settings, self.store, self.credentials.sessions, clock=clock,
                             on_password_rehash=on_password_rehash)
        #: Last use of passwords and access keys (``GetAccessKeyLastUsed``, the credential report).
        self.last_used = self.logins.last_used
        for warning in directory_warnings(directory):  # root users with access keys or without MFA
            logger.warning("directory: %s", warning)
        self.authenticators = AuthenticatorChain(
            authenticators if authenticators is not None
            else (SigV4Authenticator(self.credentials, last_used=self.last_used), BearerAuthenticator(self.credentials),
                  CookieAuthenticator(self.credentials)),
            snapshots=self.snapshots, clock=clock)

    def __repr__(self) -> str:
        return f"IAM(snapshot={self.snapshots.in_force!r}, settings={self.settings!r})"

    # Construction ----------------------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, store: StateStore | None = None,
                  clock: Callable[[], float] = time.time,
                  on_password_rehash: Callable[[str, str], None] | None = None) -> IAM:
        """Load ``iam.toml`` (or ``.json``): the directory plus its ``[settings]``. Raises ConfigurationError."""
        file = Path(path)
        problems: list[str] = []
        try:
            snapshot = load_directory(file)
        except ConfigurationError as exc:
            problems.append(str(exc))
        try:
            data = _read_mapping(file)
            settings = Settings.from_mapping(data.get("settings") or {}, base_dir=file.parent)
        except (OSError, ValueError) as exc:  # a settings problem is reported with the directory's, not instead
            problems.append(f"{file}: {exc}")
        if problems:
            raise ConfigurationError("\n".join(dict.fromkeys(problems)))
        return cls(snapshot, settings=settings, store=store, clock=clock, source=file, rules=_rules(data, str(file)),
                   on_password_rehash=on_password_rehash)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, store: StateStore | None = None,
                  clock: Callable[[], float] = time.time, base_dir: str | os.PathLike[str] = ".",
                  on_password_rehash: Callable[[str, str], None] | None = None) -> IAM:
        """Build from the parsed form of the directory file (tests, applications that keep config in code)."""
        problems: list[str] = []
        try:
            snapshot = directory_from_dict(data, base_dir=base_dir)
        except ConfigurationError as exc:
            problems.append(str(exc))
        try:
            settings = Settings.from_mapping(data.get("settings") or {}, base_dir=Path(base_dir))
        except ConfigurationError as exc:
            problems.append(f"<dict>: {exc}")
        if problems:
            raise ConfigurationError("\n".join(problems))
        return cls(snapshot, settings=settings, store=store, clock=clock, rules=_rules(data, "<dict>"),
                   on_password_rehash=on_password_rehash)

    # Short forms of the parts' methods -----------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The directory snapshot this request is decided on (``snapshots.current``)."""
        return self.snapshots.current

    @contextmanager
    def pin(self) -> Iterator[Snapshot]:
        """Decide everything inside the block on today's snapshot, even if a reload swaps it meanwhile
        (``snapshots.pin``; the shells pin each request)."""
        with self.snapshots.pin() as snapshot:
            yield snapshot

    def authenticate(self, request: RequestView, *, now: float | None = None,
                     authenticators: Sequence[Authenticator] | None = None) -> Principal | None:
        """The principal a request proves, or None without a credential (``authenticators.authenticate``). Raises
        AuthenticationError (401) for a credential that is present but bad."""
        return self.authenticators.authenticate(request, now=now, authenticators=authenticators)

    def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
        request: RequestView | None = None,
        resource_policy: Policy | None = None,
        resource_account: str | None = None,
        source_ip: str | None | _Unset = UNSET,
    ) -> Decision:
        """Decide ``action`` on ``resource`` for ``principal`` (``decisions.decide``): the global keys from the
        clock, ``request`` and the principal, ``context`` added to them. Never raises: a failure is a deny that
        says so."""
        return self.decisions.decide(principal, action, resource, context, now=now, request=request,
                                     source_ip=source_ip, resource_policy=resource_policy,
                                     resource_account=resource_account)

    def login(self, username: str, password: str, code: str, *, now: float | None = None,
              source_ip: str | None = None) -> IssuedSession:
        """Password + TOTP login (``logins.login``); returns a session usable as a bearer token or cookie."""
        return self.logins.login(username, password, code, now=now, source_ip=source_ip)


def _rules(data: Mapping[str, Any], source: str) -> RuleTable:
    """The ``[[routes]]`` rules table of a directory file (method, path template -> action, resource, context)."""
    entries = data.get("routes") or []
    if not isinstance(entries, list):
        raise ConfigurationError(f"{source}: routes must be an array of tables ([[routes]])")
    try:
        return RuleTable.from_config(entries)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def _default_store(settings: Settings) -> StateStore:
    """Redis when ``settings.redis_url`` names one (the one setting that turns shared state on), else memory."""
    if settings.redis_url is None:
        return MemoryStore()
    try:
        from .state._redis import RedisStore
    except ModuleNotFoundError:
        raise ConfigurationError("settings.redis_url needs the redis extra: pip install 'iam-middleware[redis]'"
                                 ) from None
    return RedisStore(settings.redis_url)
