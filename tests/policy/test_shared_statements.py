"""Documents of the same text and kind are compiled once and share their statements (one template in every user's
inline policy costs one copy), and sharing never changes what a policy decides or what its explanation names."""

from __future__ import annotations

import copy
import gc
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from iam_middleware.policy import Caller, PolicyKind, PolicySet, _parse, evaluate, parse_policy

ACCOUNT = "111122223333"
TEMPLATE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Own", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:username}/*"},
    {"Sid": "NoArchive", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::home/*/archive/*"},
]}


def _user(name: str) -> Caller:
    return Caller.from_arn(f"arn:aws:iam::{ACCOUNT}:user/{name}")


def test_the_same_document_text_is_compiled_once() -> None:
    alice = parse_policy(copy.deepcopy(TEMPLATE), policy_id="user/alice/own")
    bob = parse_policy(json.dumps(TEMPLATE), policy_id="user/bob/own")
    assert all(a is b for a, b in zip(alice.statements, bob.statements, strict=True))
    assert (alice.id, bob.id) == ("user/alice/own", "user/bob/own")


def test_each_policy_explains_with_its_own_name_and_resolves_variables_per_request() -> None:
    alice = parse_policy(copy.deepcopy(TEMPLATE), policy_id="user/alice/own")
    bob = parse_policy(copy.deepcopy(TEMPLATE), policy_id="user/bob/own")
    for name, policy in (("alice", alice), ("bob", bob)):
        allowed = evaluate(_user(name), "s3:GetObject", f"arn:aws:s3:::home/{name}/a.txt", {"aws:username": name},
                           identity=PolicySet([policy]))
        assert allowed.allowed
        assert [(m.policy_id, m.sid) for m in allowed.matched] == [(f"user/{name}/own", "Own")]
        other = "bob" if name == "alice" else "alice"
        assert not evaluate(_user(name), "s3:GetObject", f"arn:aws:s3:::home/{other}/a.txt", {"aws:username": name},
                            identity=PolicySet([policy])).allowed


def test_what_changes_a_statement_is_never_shared() -> None:
    base = parse_policy(copy.deepcopy(TEMPLATE))
    changed = copy.deepcopy(TEMPLATE)
    changed["Statement"][0]["Resource"] = "arn:aws:s3:::home/*"
    reordered = {"Version": "2012-10-17", "Statement": list(reversed(copy.deepcopy(TEMPLATE["Statement"])))}
    old_version = {**copy.deepcopy(TEMPLATE), "Version": "2008-10-17"}  # ${...} is literal text there
    boundary = parse_policy(copy.deepcopy(TEMPLATE), kind=PolicyKind.BOUNDARY)
    for other in (parse_policy(changed), parse_policy(reordered), parse_policy(old_version), boundary):
        assert not any(a is b for a, b in zip(base.statements, other.statements, strict=True))
    one = TEMPLATE["Statement"][0]
    listed = parse_policy({"Version": "2012-10-17", "Statement": [one]})
    single = parse_policy({"Version": "2012-10-17", "Statement": one})
    assert listed.statements[0] is not single.statements[0]
    assert dict(single.document)["Statement"] == one and dict(listed.document)["Statement"] == [one]


def test_a_document_no_policy_holds_is_let_go() -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::let-go-once/*"}]}
    digest = _parse._key(doc, PolicyKind.IDENTITY)
    policy = parse_policy(doc)
    assert digest in _parse._SHARED
    del policy
    gc.collect()
    assert digest not in _parse._SHARED


def test_the_document_reads_as_written_and_cannot_be_changed() -> None:
    policy = parse_policy(copy.deepcopy(TEMPLATE))
    assert dict(policy.document) == TEMPLATE and json.loads(json.dumps(dict(policy.document))) == TEMPLATE
    assert not hasattr(policy.document, "__setitem__")


_names = st.sampled_from(["alice", "bob", "carol"])
_statement = st.fixed_dictionaries({
    "Effect": st.sampled_from(["Allow", "Deny"]),
    "Action": st.sampled_from(["s3:GetObject", "s3:*", "s3:Get*", ["s3:PutObject", "s3:GetObject"]]),
    "Resource": st.sampled_from(["*", "arn:aws:s3:::home/${aws:username}/*", "arn:aws:s3:::home/alice/*"]),
}, optional={"Condition": st.sampled_from([{"Bool": {"aws:SecureTransport": "true"}},
                                            {"StringEquals": {"aws:username": "bob"}}])})


@given(st.lists(st.lists(_statement, min_size=1, max_size=4), min_size=1, max_size=4), _names, _names,
       st.booleans())
def test_shared_statements_decide_as_freshly_parsed_ones(documents: list[list[dict[str, Any]]], caller: str,
                                                          owner: str, secure: bool) -> None:
    texts = [json.dumps({"Version": "2012-10-17", "Statement": statements}) for statements in documents]
    shared = [parse_policy(text, policy_id=f"p{i}") for i, text in enumerate(texts)]
    fresh = [_parse_alone(text, f"p{i}") for i, text in enumerate(texts)]
    context = {"aws:username": caller, "aws:SecureTransport": secure}
    resource = f"arn:aws:s3:::home/{owner}/x"
    a = evaluate(_user(caller), "s3:GetObject", resource, context, identity=PolicySet(shared))
    b = evaluate(_user(caller), "s3:GetObject", resource, context, identity=PolicySet(fresh))
    assert (a.kind, a.message, [(m.policy_id, m.index) for m in a.matched]) == (
        b.kind, b.message, [(m.policy_id, m.index) for m in b.matched])


def _parse_alone(text: str, policy_id: str) -> Any:
    """A parse that shares nothing with earlier ones."""
    saved = dict(_parse._SHARED)
    _parse._SHARED.clear()
    try:
        return parse_policy(text, policy_id=policy_id)
    finally:
        _parse._SHARED.clear()
        _parse._SHARED.update(saved)
