"""Changes validated by what they touch: ``change()`` starts from the state this process committed last, copies only
the entities a block touches, and accepts exactly what the whole validation accepts, committing a state that means
what the whole validation of it means."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from iam_middleware._exceptions import ConfigurationError
from iam_middleware.authenticators._totp import TOTPDevice
from iam_middleware.directory import Snapshot
from iam_middleware.directory.sql import ROOT, DirectoryChangeError, SQLDirectory, ValidationError, _directory, _draft
from iam_middleware.directory.sql import _schema as schema
from iam_middleware.directory.sql._draft import DirectoryDraft, Overlay, draft_records
from iam_middleware.directory.sql._records import Records, bump_revision, read_records

from .conftest import DEMO
from .test_incremental import ALL, READ, meaning, statements

BROKEN = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "x:*", "Resource": "*"}]})
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXR"


def full_meaning(snapshot: Snapshot) -> dict[str, Any]:
    """``meaning`` with the root users and every user's MFA devices and secrets."""
    found = meaning(snapshot)
    found["roots"] = {k: (r.arn, r.password_hash, [(a.id, a.secret, a.active) for a in r.access_keys],
                          [m.serial for m in r.mfa_devices]) for k, r in snapshot.roots.items()}
    found["users"] = {arn: (*value, snapshot.users[arn].account) for arn, value in found["users"].items()}
    return found


@pytest.fixture
def writer(demo: SQLDirectory) -> SQLDirectory:
    """The demo directory imported by this process (on each backend): its state is kept, validated."""
    return demo


@pytest.fixture
def sqlite_writer(sqlite_url: str) -> Iterator[SQLDirectory]:
    """The demo directory on SQLite, for the generated test (many changes: SQLite is quick)."""
    directory = SQLDirectory(sqlite_url)
    directory.import_file(DEMO)
    try:
        yield directory
    finally:
        directory.close()


def test_an_overlay_copies_only_what_the_draft_takes() -> None:
    base: Records = {"settings": {}, "routes": [], "accounts": {}, "policies": {}, "groups": {}, "roles": {},
                     "mfa_devices": {}, "users": {"a": {"tags": {"x": "1"}}, "b": {"tags": {}}}}
    records = draft_records(base)
    users = records["users"]
    assert isinstance(users, Overlay)
    assert all(entry is base["users"][key] for key, entry in users.items())  # shared until taken
    users["a"]["tags"]["x"] = "2"           # the draft's copy
    users.get("b")                          # taken, not changed
    users["c"] = {"tags": {}}
    assert base["users"]["a"]["tags"] == {"x": "1"}
    assert users.changed() == {"a", "c"}
    del users["c"]
    users.pop("b")
    assert users.changed() == {"a", "b"}


def test_a_change_reads_and_builds_only_what_it_touches(writer: SQLDirectory) -> None:
    kept = writer._state
    assert kept is not None and kept.loaded is not None  # the import's validated state
    before = kept.loaded.snapshot
    seen = statements(writer)
    with writer.change() as draft:
        draft.create_user("dave")
        draft.add_user_to_group("readers", "dave")
        key = draft.create_access_key("dave")
    assert writer.last_check == "incremental"
    # Nothing read but the change counter: no table of the directory (what was written was seen).
    assert any(s.startswith("INSERT INTO iam_users") for s in seen)
    assert not [s for s in seen if s.startswith("SELECT") and "FROM iam_" in s and "FROM iam_revision" not in s]
    state = writer._state
    assert state is not None and state.loaded is not None
    snapshot = state.loaded.snapshot
    assert snapshot.access_key(key.access_key_id) is not None
    assert snapshot.user("alice") is before.user("alice")  # unchanged users are not built again
    assert full_meaning(snapshot) == full_meaning(writer.load().snapshot)
    with writer._reading() as connection:
        assert read_records(connection) == state.records


def test_a_problem_is_named_by_the_whole_validation(writer: SQLDirectory) -> None:
    with pytest.raises(ValidationError, match=r"users\.alice\.groups\[1\]: group 'ghost' does not exist"):
        with writer.change() as draft:
            draft.records["users"][draft._find("users", "alice", None)[0]]["groups"].append("ghost")
    assert writer.last_check == "whole"
    with writer.change() as draft:  # the refused change left the writer's state as it was
        draft.tag_user("alice", {"n": "1"})
    assert writer.last_check == "incremental"


def _alice(draft: Any) -> dict[str, Any]:
    return draft._find("users", "alice", None)[1]  # type: ignore[no-any-return]


REFUSED: dict[str, tuple[Callable[[Any], object], str]] = {
    "a name taken whatever its case": (lambda d: d.create_user("erin") and d._find("users", "erin", None)[1].update(
        name="ALICE"), "a user named '(alice|ALICE)' already exists"),
    "another user's access key": (lambda d: _alice(d)["access_keys"].append(
        {"id": "AKIADEMOBOB000000001", "secret": "s", "active": True, "created": 0}), "also belongs to alice"),
    "a root user's access key": (lambda d: (d.create_access_key(ROOT), _alice(d)["access_keys"].append(
        dict(d.records["accounts"]["111122223333"]["root"]["access_keys"][0])))[0], "root.access_keys: key .* also "
                                                                                   "belongs to alice"),
    "a group that does not exist": (lambda d: _alice(d)["groups"].append("ghost"), "group 'ghost' does not exist"),
    "a deleted policy still attached": (lambda d: d.records["policies"].pop("AssumePartner"),
                                        "policy 'AssumePartner' does not exist"),
    "a deleted group with members": (lambda d: d.records["groups"].pop("readers"), "group 'readers' does not exist"),
    "a boundary that does not exist": (lambda d: _alice(d).update(boundary="Ghost"), "policy 'Ghost' does not exist"),
    "a role's id": (lambda d: d.records["users"].update({next(iter(d.records["roles"])): {
        **json.loads(json.dumps(_alice(d))), "name": "twin", "access_keys": []}}), "an id is AIDA"),
    "an MFA serial number taken": (lambda d: d.create_virtual_mfa_device("dave") and d.update_user(
        "alice", new_user_name="dave"), "MFA device arn:app:iam::111122223333:mfa/dave is also"),
    "a secret that cannot be read": (lambda d: _alice(d)["access_keys"][0].update(secret="env:IAM_TEST_NEVER_SET"),
                                     "environment variable IAM_TEST_NEVER_SET is not set"),
    "a policy document broken": (lambda d: d.records["policies"]["OrdersReadOnly"]["versions"]["v1"].update(
        document=BROKEN), r"policies\.OrdersReadOnly"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_whole_validation_refuses_is_refused(writer: SQLDirectory, case: str) -> None:
    edit, message = REFUSED[case]
    revision = writer.revision()
    with pytest.raises(ValidationError, match=message):
        with writer.change() as draft:
            edit(draft)
    assert writer.revision() == revision


def test_another_writers_commits_are_caught_up_through_the_log(writer: SQLDirectory) -> None:
    other = SQLDirectory(writer.url)
    try:
        with other.change() as draft:
            draft.create_user("erin")
        with other.change() as draft:
            draft.create_group("ops")
            draft.add_user_to_group("ops", "erin")
    finally:
        other.close()
    seen = statements(writer)
    with writer.change() as draft:
        draft.tag_user("erin", {"n": "1"})  # erin exists: the writer caught up with the other's commits
    assert writer.last_check == "incremental"
    assert not any("FROM iam_users" in s and "WHERE" not in s.split("FROM iam_users", 1)[1] for s in seen)
    state = writer._state
    assert state is not None and state.loaded is not None
    with writer._reading() as connection:
        assert read_records(connection) == state.records
    assert full_meaning(state.loaded.snapshot) == full_meaning(writer.load().snapshot)


def test_a_revision_written_past_change_is_read_whole(writer: SQLDirectory) -> None:
    with writer.engine.begin() as connection:  # a row edited by hand, the counter bumped
        connection.execute(update(schema.users).where(schema.users.c.name == "bob").values(path="nope"))
        bump_revision(connection)
    with pytest.raises(ValidationError, match="a path starts and ends with '/'"):
        with writer.change() as draft:
            draft.tag_user("alice", {"n": "2"})
    assert writer.last_check == "whole"


def test_the_draft_used_after_its_block_changes_nothing_kept(writer: SQLDirectory) -> None:
    with writer.change() as draft:
        draft.tag_user("alice", {"n": "1"})
    draft.tag_user("alice", {"n": "2"})
    state = writer._state
    assert state is not None
    assert [e["tags"]["n"] for e in state.records["users"].values() if e["name"] == "alice"] == ["1"]


# Generated changes ---------------------------------------------------------------------------------------------
USERS = ["alice", "bob", "carol", "dave", "Dave", "erin"]
GROUPS = ["readers", "ops", "Ops"]
POLICIES = ["OrdersReadOnly", "AssumePartner", "P1", "p1", "AcmeGuardrail"]


def _pick(entries: dict[str, Any], n: int) -> str | None:
    keys = sorted(entries)
    return keys[n % len(keys)] if keys else None


def _user(draft: Any, n: int) -> dict[str, Any] | None:
    """A user's record, the draft's own copy."""
    unique = _pick(draft.records["users"], n)
    return None if unique is None else draft.records["users"][unique]  # type: ignore[no-any-return]


def _raw(draft: Any, kind: str, n: int) -> None:
    """Edits past IAM's actions (what only a bug or a hand could do): states the validation must refuse, or not."""
    records = draft.records
    user = _user(draft, n)
    other = _user(draft, n + 1)
    if kind == "raw_group" and user is not None:
        user["groups"].append(["ghost", "readers", "ops"][n % 3])
    elif kind == "raw_name" and user is not None and other is not None:
        user["name"] = other["name"].upper() if n % 2 else other["name"] + "x"
    elif kind == "raw_key" and user is not None and other is not None and other["access_keys"]:
        user["access_keys"].append(dict(other["access_keys"][0]))
    elif kind == "raw_boundary" and user is not None:
        user["boundary"] = POLICIES[n % len(POLICIES)] if n % 3 else "Ghost"
    elif kind == "raw_totp" and user is not None:
        user["totp_secret"] = SEED
    elif kind == "raw_role_id" and user is not None:
        role = _pick(records["roles"], n)
        if role is not None:
            records["users"][role] = {**json.loads(json.dumps(user)), "name": "twin", "access_keys": []}
    elif kind == "raw_document":
        policy = _pick(records["policies"], n)
        if policy is not None:
            entry = records["policies"][policy]
            entry["versions"][entry["default_version"]]["document"] = BROKEN if n % 2 else READ
    elif kind == "raw_del_policy":
        policy = _pick(records["policies"], n)
        if policy is not None:
            del records["policies"][policy]
    elif kind == "raw_del_group":
        group = _pick(records["groups"], n)
        if group is not None:
            del records["groups"][group]
    elif kind == "raw_secret" and user is not None and user["access_keys"]:
        user["access_keys"][0]["secret"] = "env:IAM_TEST_NEVER_SET" if n % 2 else "plain-secret"
    elif kind == "raw_account" and user is not None:
        user["account"] = "999999999999"
    elif kind == "raw_device" and user is not None:
        records["mfa_devices"][f"{user['account']}:mfa{user['path']}{user['name']}"] = {
            "account": user["account"], "name": user["name"], "path": user["path"], "seed": SEED,
            "holder": None, "enabled": None, "created": 0}
    elif kind == "raw_id" and user is not None:
        records["users"]["AIDABAD"] = {**json.loads(json.dumps(user)), "name": "bad", "access_keys": []}


def _act(draft: Any, kind: str, n: int) -> None:
    name, other = USERS[n % len(USERS)], USERS[(n + 1) % len(USERS)]
    group, policy = GROUPS[n % len(GROUPS)], POLICIES[n % len(POLICIES)]
    actions: dict[str, Callable[[], object]] = {
        "create_user": lambda: draft.create_user(name),
        "delete_user": lambda: draft.delete_user(name),
        "rename": lambda: draft.update_user(name, new_user_name=other),
        "path": lambda: draft.update_user(name, new_path="/p/"),
        "tag": lambda: draft.tag_user(name, {"n": str(n)}),
        "join": lambda: draft.add_user_to_group(group, name),
        "leave": lambda: draft.remove_user_from_group(group, name),
        "create_group": lambda: draft.create_group(group),
        "delete_group": lambda: draft.delete_group(group),
        "group_policy": lambda: draft.attach_group_policy(group, policy),
        "create_policy": lambda: draft.create_policy(policy, READ),
        "policy_version": lambda: draft.create_policy_version(policy, ALL if n % 2 else READ, set_as_default=True),
        "delete_policy": lambda: draft.delete_policy(policy),
        "attach": lambda: draft.attach_user_policy(name, policy),
        "detach": lambda: draft.detach_user_policy(name, policy),
        "boundary": lambda: draft.put_user_permissions_boundary(name, policy),
        "inline": lambda: draft.put_user_policy(name, "Inline", READ if n % 2 else ALL),
        "key": lambda: draft.create_access_key(name),
        "root_key": lambda: draft.create_access_key(ROOT),
        "role": lambda: draft.create_role(f"r{n % 2}", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
        "delete_role": lambda: draft.delete_role(f"r{n % 2}"),
        "device": lambda: draft.create_virtual_mfa_device(name),
        "enable": lambda: draft.enable_mfa_device(name, SEED, *_codes(draft.now)),
    }
    if kind in actions:
        actions[kind]()
    else:
        _raw(draft, kind, n)


def _codes(now: int) -> tuple[str, str]:
    device = TOTPDevice(SEED)
    step = device.step_at(now)
    return device.code_at((step - 1) * device.period), device.code_at(step * device.period)


IAM_ACTIONS = st.sampled_from([
    "create_user", "delete_user", "rename", "path", "tag", "join", "leave", "create_group", "delete_group",
    "group_policy", "create_policy", "policy_version", "delete_policy", "attach", "detach", "boundary", "inline",
    "key", "root_key", "role", "delete_role", "device", "enable"])
RAW_EDITS = st.sampled_from([
    "raw_group", "raw_name", "raw_key", "raw_boundary", "raw_totp", "raw_role_id", "raw_document", "raw_del_policy",
    "raw_del_group", "raw_secret", "raw_account", "raw_device", "raw_id"])
# IAM's actions three times as often as edits past them: most blocks are valid, many are not.
BLOCK = st.lists(st.tuples(st.one_of(*[IAM_ACTIONS] * 3, RAW_EDITS), st.integers(0, 11)), min_size=1, max_size=3)


def test_the_incremental_check_accepts_exactly_what_the_whole_validation_accepts(
        sqlite_writer: SQLDirectory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated blocks of IAM's actions and of edits past them, on SQLite (the check does not read the database):
    where the check applies (no settings, routes or accounts changed) it accepts exactly the blocks the whole
    validation accepts, with the same snapshot; what is committed and kept is what a whole read gives. Two writers
    take turns: each catches up with the other's commits through the change log, checked the same way."""
    writers = [sqlite_writer, SQLDirectory(sqlite_writer.url)]
    seen = {"incremental": 0, "refused": 0, "declined": 0, "caught up": 0}
    caught_up = SQLDirectory._caught_up

    def counted(self: SQLDirectory, *args: Any) -> Any:
        found = caught_up(self, *args)
        seen["caught up"] += found is not None and found.loaded is not None
        return found

    monkeypatch.setattr(SQLDirectory, "_caught_up", counted)
    real = _directory.check_change

    def compared(base: Any, before: Records, after: Records, changed: Any, revision: int, **kwargs: Any) -> Any:
        found = real(base, before, after, changed, revision, **kwargs)
        try:
            whole: Any = sqlite_writer._validate(after, revision)
        except ConfigurationError:
            whole = None
        if not {"settings", "routes", "accounts"} & changed.keys():
            # Where the check applies, it refuses exactly what the whole validation refuses.
            assert (found is None) == (whole is None), (changed, whole)
        if found is not None:
            seen["incremental"] += 1
            assert whole is not None
            assert full_meaning(found.snapshot) == full_meaning(whole.snapshot)
        else:
            seen["refused" if whole is None else "declined"] += 1
        return found

    monkeypatch.setattr(_directory, "check_change", compared)
    # Random ids, keys and seeds from one seeded generator, and one clock: a block gives the same records whether
    # the draft finds users through the snapshot's indexes (change()) or by reading every entry.
    rng = random.Random()
    monkeypatch.setattr(_draft, "_random", lambda prefix, length: prefix + "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(length)))
    monkeypatch.setattr(_draft, "secrets", SimpleNamespace(token_bytes=rng.randbytes))
    monkeypatch.setattr(_draft, "new_device", lambda: TOTPDevice(base64.b32encode(rng.randbytes(20)).decode()))
    for writer in writers:
        writer.clock = lambda: 1_800_000_000.0

    def run(draft: Any, block: list[tuple[str, int]]) -> list[str | None]:
        outcomes: list[str | None] = []
        for kind, n in block:
            try:
                _act(draft, kind, n)
                outcomes.append(None)
            except DirectoryChangeError as exc:
                outcomes.append(exc.code)  # IAM refuses the action: the block goes on
        return outcomes

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.sampled_from([0, 0, 1]), BLOCK), min_size=1, max_size=4))
    def check(blocks: list[tuple[int, list[tuple[str, int]]]]) -> None:
        for chosen, block in blocks:
            writer = writers[chosen]
            revision = writer.revision()
            seed = rng.random()
            rng.seed(seed)
            plain = DirectoryDraft(writer.records(), now=int(writer.clock()))  # no snapshot: every entry read
            expected = run(plain, block)
            rng.seed(seed)
            try:
                with writer.change() as draft:
                    assert run(draft, block) == expected
            except ValidationError:
                assert writer.revision() == revision
                continue
            if writer.revision() == revision:
                continue  # IAM refused every action: nothing to commit
            assert writer.records() == plain.records
            state = writer._state
            assert state is not None and state.loaded is not None
            assert state.revision == writer.revision()
            with writer._reading() as connection:
                assert read_records(connection) == state.records  # what is kept is what was committed
            assert full_meaning(state.loaded.snapshot) == full_meaning(writer.load().snapshot)

    try:
        check()
    finally:
        writers[1].close()
    # The test can fail both ways: generated changes were accepted by what they touch, and refused.
    assert seen["incremental"] > 0 and seen["refused"] > 0 and seen["caught up"] > 0, seen
