"""Incremental reloads: another process applies only what each revision changed (the change log), and the snapshot
it builds means exactly what a whole read of the database gives; it reads the whole directory only when the log
cannot say (settings, a log that does not reach back, a revision written by hand)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, update

from iam_middleware._principal import CredentialKind
from iam_middleware.directory import Snapshot
from iam_middleware.directory.sql import DirectoryChangeError, SQLDirectory, SQLDirectoryReloader, _changes
from iam_middleware.directory.sql import _schema as schema
from iam_middleware.directory.sql._records import bump_revision

from .conftest import DEMO

READ = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:Get*",
                                                           "Resource": "*"}]})
ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:*",
                                                          "Resource": "*"}]})


def meaning(snapshot: Snapshot) -> dict[str, Any]:
    """Everything a snapshot decides with, as plain values (policies by their documents)."""
    def docs(policies: Any) -> list[Any]:
        return [(p.id, p.document) for p in policies]

    users = {u.arn: (u.id, u.name, u.path, u.groups, dict(u.tags), docs(u.policies),
                     u.boundary.document if u.boundary else None, u.password_hash, u.active,
                     [(k.id, k.secret, k.active) for k in u.access_keys], [m.serial for m in u.mfa_devices])
             for u in snapshot.users.values()}
    return {
        "users": users,
        "keys": {k: (key.id, user.arn) for k, (key, user) in snapshot._access_keys.items()},
        "names": {n: sorted(u.arn for u in found) for n, found in snapshot._users_by_name.items()},
        "groups": {k: docs(g.policies) for k, g in snapshot.groups.items()},
        "roles": {k: (r.id, docs(r.policies), dict(r.tags), r.trust_policy.document)
                  for k, r in snapshot.roles.items()},
        "accounts": {k: (a.name, docs(a.guardrails)) for k, a in snapshot.accounts.items()},
        "policies": {k: p.document for k, p in snapshot.policies.items()},
        "version": snapshot.version,
    }


@pytest.fixture
def other(demo: SQLDirectory) -> Iterator[SQLDirectoryReloader]:
    """Another process's reloader of the demo database (its own engine), polling only when told to."""
    reloader = SQLDirectoryReloader.open(SQLDirectory(demo.url), poll_interval=3600)
    try:
        yield reloader
    finally:
        reloader.stop()
        reloader.directory.close()


def statements(directory: SQLDirectory) -> list[str]:
    """Every statement ``directory``'s engine runs from now on."""
    seen: list[str] = []
    event.listen(directory.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(" ".join(statement.split())))
    return seen


def test_a_changed_user_is_the_only_user_read(demo: SQLDirectory, other: SQLDirectoryReloader) -> None:
    before = other.iam.snapshot
    with demo.change() as draft:
        draft.tag_user("alice", {"team": "green"})
    seen = statements(other.directory)
    assert other.reload().ok and other.last_refresh == "incremental"
    after = other.iam.snapshot
    assert after.user("alice").tags["team"] == "green"  # type: ignore[union-attr]
    assert meaning(after) == meaning(demo.load().snapshot)
    # Unchanged users are the very same objects; the users table was read only where the changed ids are.
    assert after.user("bob") is before.user("bob") and after.user("alice") is not before.user("alice")
    reads = [s for s in seen if "FROM iam_users" in s]
    assert reads and all("WHERE" in s.split("FROM iam_users", 1)[1] for s in reads)
    assert not any("FROM iam_policies" in s for s in seen)  # nothing but users changed: policies not read


def test_compiled_authorizers_of_unchanged_principals_carry_over(demo: SQLDirectory,
                                                                 other: SQLDirectoryReloader) -> None:
    old = other.iam.snapshot
    alice, bob = (old.user_principal(old.user(n), CredentialKind.ACCESS_KEY)  # type: ignore[arg-type]
                  for n in ("alice", "bob"))
    bob_authorizer, alice_authorizer = old.authorizer(bob), old.authorizer(alice)
    with demo.change() as draft:
        draft.attach_user_policy("alice", "OrdersFullAccess")
    other.reload()
    new = other.iam.snapshot
    assert new.authorizer(bob) is bob_authorizer
    assert new.authorizer(alice) is not alice_authorizer


def test_a_changed_policy_reaches_every_user_holding_it(demo: SQLDirectory, other: SQLDirectoryReloader) -> None:
    with demo.change() as draft:
        draft.create_policy_version("AssumePartner", READ, set_as_default=True)  # alice holds it
        draft.put_group_policy("readers", "Extra", ALL)
    assert other.reload().ok and other.last_refresh == "incremental"
    snapshot = other.iam.snapshot
    held = [p.document for p in snapshot.user("alice").policies if p.id == "AssumePartner"]  # type: ignore[union-attr]
    assert held == [json.loads(READ)]
    assert meaning(snapshot) == meaning(demo.load().snapshot)
    # A new snapshot compiles afresh when policies changed: nothing compiled for the old documents is reused.
    assert snapshot._authorizers == {}


def test_a_deleted_user_and_its_keys_are_gone(demo: SQLDirectory, other: SQLDirectoryReloader) -> None:
    with demo.change() as draft:
        key = draft.create_access_key("carol")
    other.reload()
    assert other.iam.snapshot.access_key(key.access_key_id) is not None
    with demo.change() as draft:
        draft.create_user("erin")
        draft.delete_user("erin")
        draft.delete_access_key("carol", key.access_key_id)
        draft.update_user("bob", new_user_name="robert")
    assert other.reload().ok and other.last_refresh == "incremental"
    snapshot = other.iam.snapshot
    assert snapshot.access_key(key.access_key_id) is None and snapshot.user("erin") is None
    assert snapshot.user("bob") is None and snapshot.user("robert") is not None
    assert meaning(snapshot) == meaning(demo.load().snapshot)


def test_requests_in_flight_keep_their_snapshot(demo: SQLDirectory, other: SQLDirectoryReloader) -> None:
    with other.iam.snapshots.pin() as pinned:
        with demo.change() as draft:
            draft.tag_user("alice", {"team": "green"})
        other.reload()
        assert other.iam.snapshots.current is pinned
        assert pinned.user("alice").tags["team"] == "blue"  # type: ignore[union-attr]
    assert other.iam.snapshots.current.user("alice").tags["team"] == "green"  # type: ignore[union-attr]


def test_what_the_log_cannot_say_is_read_whole(demo: SQLDirectory, other: SQLDirectoryReloader,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with demo.change() as draft:  # settings: always whole
        draft.records["settings"]["session_ttl"] = 600
    other.reload()
    assert other.last_refresh == "full"
    with demo.engine.begin() as connection:  # a row edited by hand, the counter bumped without the log
        connection.execute(update(schema.users).where(schema.users.c.name == "bob").values(path="/staff/"))
        bump_revision(connection)
    other.reload()
    assert other.last_refresh == "full" and other.iam.snapshot.user("bob").path == "/staff/"  # type: ignore[union-attr]
    monkeypatch.setattr(_changes, "KEEP", 2)
    for team in ("a", "b", "c"):  # three revisions behind, with a log of two
        with demo.change() as draft:
            draft.tag_user("alice", {"team": team})
    other.reload()
    assert other.last_refresh == "full" and meaning(other.iam.snapshot) == meaning(demo.load().snapshot)


def test_the_log_keeps_only_the_last_revisions(demo: SQLDirectory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_changes, "KEEP", 3)
    for team in "abcde":
        with demo.change() as draft:
            draft.tag_user("alice", {"team": team})
    with demo.engine.connect() as connection:
        revisions = {r.revision for r in connection.execute(schema.changes.select())}
    assert revisions == {4, 5, 6}


def _act(draft: Any, action: tuple[str, int]) -> None:
    kind, n = action
    name = ["alice", "bob", "carol", f"u{n}"][n % 4]
    if kind == "create":
        draft.create_user(f"u{n}")
        draft.add_user_to_group("readers", f"u{n}")
    elif kind == "delete":
        for key in list(draft._user(f"u{n}", None)["access_keys"]):
            draft.delete_access_key(f"u{n}", key["id"])
        draft.remove_user_from_group("readers", f"u{n}")
        draft.delete_user(f"u{n}")
    elif kind == "tag":
        draft.tag_user(name, {"n": str(n)})
    elif kind == "key":
        draft.create_access_key(name)
    elif kind == "attach":
        draft.attach_user_policy(name, "OrdersFullAccess")
    elif kind == "inline":
        draft.put_user_policy(name, "Inline", READ if n % 2 else ALL)
    elif kind == "policy":
        policy = "OrdersFullAccess" if n % 2 else "OrdersReadOnly"  # held by users; by the group and the role
        draft.create_policy_version(policy, READ if n % 4 < 2 else ALL, set_as_default=True)
        for version in list(draft.records["policies"][policy]["versions"])[:-2]:
            draft.delete_policy_version(policy, version)
    elif kind == "role":
        draft.tag_role("partner", {"n": str(n)})
    else:
        draft.update_user(name, new_user_name=f"{name}x") if n % 4 == 3 else draft.tag_user(name, {"r": "1"})


ACTIONS = st.lists(st.tuples(st.sampled_from(["create", "delete", "tag", "key", "attach", "inline", "policy",
                                              "role", "rename"]), st.integers(0, 7)), min_size=1, max_size=4)


def test_incremental_reloads_mean_what_whole_reads_mean(sqlite_url: str) -> None:
    writer = SQLDirectory(sqlite_url)
    writer.import_file(DEMO)
    reader = SQLDirectoryReloader.open(SQLDirectory(sqlite_url), poll_interval=3600)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ACTIONS)
    def check(actions: list[tuple[str, int]]) -> None:
        for action in actions:  # one revision each; an action IAM refuses changes nothing
            try:
                with writer.change() as draft:
                    _act(draft, action)
            except DirectoryChangeError:
                pass
        reader.reload()
        assert meaning(reader.iam.snapshot) == meaning(writer.load().snapshot)

    try:
        check()
    finally:
        reader.stop()
        reader.directory.close()
        writer.close()
