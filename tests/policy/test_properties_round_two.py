"""Rules each held by one example before, as properties: a session policy's Deny wins whatever else allows, and
``StringLike`` is case-sensitive (IAM User Guide, Condition operators: "Case-sensitive matching")."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from iam_middleware.policy import DecisionKind

from ._helpers import ACCOUNT, allow, decide, deny, doc

SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/s1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Reader"
ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]


@given(action=st.sampled_from(ACTIONS), denied=st.sampled_from([*ACTIONS, "s3:*", "*", "s3:*Object"]),
       identity=st.booleans(), boundary=st.booleans(), resource_grant=st.booleans(),
       session_allows_all=st.booleans())
def test_a_session_policy_deny_wins_whatever_else_allows(action: str, denied: str, identity: bool, boundary: bool,
                                                       resource_grant: bool, session_allows_all: bool) -> None:
    session = doc(*([allow("*", "*")] if session_allows_all else []), deny(denied, "*"))
    decision = decide(
        *([doc(allow("*", "*"))] if identity else []), principal=SESSION, action=action,
        boundary=doc(allow("*", "*")) if boundary else None, session=session,
        resource_policy=doc(allow("*", Principal={"AWS": ROLE})) if resource_grant else None,
    )
    covered = denied in ("*", "s3:*", action) or (denied == "s3:*Object" and action.endswith("Object"))
    if covered:
        assert decision.kind is DecisionKind.EXPLICITLY_DENIED
    else:
        assert decision.kind is not DecisionKind.EXPLICITLY_DENIED


@given(st.text(alphabet="abcXYZ-/", min_size=1, max_size=12))
def test_string_like_is_case_sensitive(value: str) -> None:
    for pattern, other in ((value, value.swapcase()), (value + "*", value.swapcase() + "tail")):
        policy = doc(allow(Condition={"StringLike": {"aws:username": pattern}}))
        assert decide(policy, context={"aws:username": other}).allowed is (other == pattern or (
            pattern.endswith("*") and other.startswith(pattern[:-1])))
    assert decide(doc(allow(Condition={"StringLike": {"aws:username": value}})),
                  context={"aws:username": value}).allowed
