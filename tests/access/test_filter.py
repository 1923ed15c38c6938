"""List filtering: the rows a ``resource_filter`` selects, in Python (``allows``) and as a SQLAlchemy ``WHERE`` over a
real SQLite table, are exactly the rows ``IAM.authorize`` allows, row for row (hypothesis, over generated policies
and ids); and what cannot be said exactly is refused, never widened."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, String, Table, create_engine, select
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

from iam_middleware import IAM
from iam_middleware._principal import CredentialKind, Principal
from iam_middleware.access import (
    AllOf,
    AnyOf,
    AttributeCondition,
    Glob,
    IdMatches,
    Not,
    ResourceFilter,
    UnsupportedFilter,
    Wildcard,
    resource_filter,
)
from iam_middleware.access.sqlalchemy import where

ACCOUNT = "111122223333"
ORDER = "arn:app:orders::{account}:order/{order_id}"
ACTION = "orders:GetOrder"
NOW = 1_800_000_000.0
OWNER, STATUS = "aws:ResourceTag/owner", "orders:Status"

metadata = MetaData()
orders = Table("orders", metadata, Column("id", String, primary_key=True), Column("owner", String),
               Column("status", String))


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")

    @sa_event.listens_for(engine, "connect")
    def case_sensitive(connection: Any, record: Any) -> None:
        connection.execute("PRAGMA case_sensitive_like = ON")  # IAM compares case-sensitively

    metadata.create_all(engine)
    yield engine
    engine.dispose()


def directory(statements: list[dict[str, Any]], username: str = "alice") -> tuple[IAM, Principal]:
    iam = IAM.from_dict({
        "settings": {"partition": "app", "regions": ["local"], "session_secret": "s" * 40},
        "accounts": {ACCOUNT: {}},
        "policies": {"P": {"document": {"Version": "2012-10-17", "Statement": statements}}},
        "users": {username: {"policies": ["P"], "tags": {"team": "blue"}}},
    })
    snapshot = iam.snapshot
    user = snapshot.user(username)
    assert user is not None
    return iam, snapshot.user_principal(user, CredentialKind.ACCESS_KEY)


def authorized(iam: IAM, principal: Principal, flt: ResourceFilter, row: dict[str, Any]) -> bool:
    context = {key: row[column] for key, column in ((OWNER, "owner"), (STATUS, "status")) if row[column] is not None}
    return iam.authorize(principal, ACTION, flt.resource(row["id"]), context, now=NOW).allowed


def selected(engine: Engine, rows: list[dict[str, Any]], clause: Any) -> set[str]:
    with engine.begin() as connection:
        connection.execute(orders.delete())
        if rows:
            connection.execute(orders.insert(), rows)
        return {row.id for row in connection.execute(select(orders.c.id).where(clause))}


# Worked cases ----------------------------------------------------------------------------------------------------
def test_a_principal_s_own_prefix_becomes_like_with_the_id_s_wildcard_characters_escaped(engine: Engine) -> None:
    iam, alice = directory([{"Effect": "Allow", "Action": ACTION,
                             "Resource": "arn:app:orders::111122223333:order/${aws:username}_*"}], username="a_b")
    flt = resource_filter(iam, alice, ACTION, ORDER, now=NOW)
    assert flt.expression == IdMatches("order_id", (Glob(("a_b_", Wildcard.ANY)),))
    clause = where(flt, orders.c.id)
    assert "LIKE" in str(clause) and clause.compile().params == {"id_1": "a/_b/_%"}
    rows = [{"id": i, "owner": None, "status": None} for i in ("a_b_1", "a_b_", "aXb_1", "a_bX1", "A_B_1", "a_b")]
    assert selected(engine, rows, clause) == {"a_b_1", "a_b_"}


def test_an_escaped_percent_or_slash_of_the_id_is_a_literal_one_of_the_column(engine: Engine) -> None:
    iam, alice = directory([{"Effect": "Allow", "Action": ACTION, "Resource": [
        "arn:app:orders::111122223333:order/50%25-*", "arn:app:orders::111122223333:order/x%2F*"]}])
    clause = where(resource_filter(iam, alice, ACTION, ORDER, now=NOW), orders.c.id)
    rows = [{"id": i, "owner": None, "status": None}
            for i in ("50%-off", "50%25-off", "50X-off", "500-off", "x/1", "x%1", "x%2F1", "x")]
    assert selected(engine, rows, clause) == {"50%-off", "x/1"}


def test_a_deny_on_a_prefix_is_an_exclusion(engine: Engine) -> None:
    iam, carol = directory([{"Effect": "Allow", "Action": "orders:*", "Resource": "*"},
                            {"Effect": "Deny", "Action": ACTION, "Resource": "arn:app:orders:*:*:order/archived-*"}])
    flt = resource_filter(iam, carol, ACTION, ORDER, now=NOW)
    assert flt.expression == Not(IdMatches("order_id", (Glob(("archived-", Wildcard.ANY)),)))
    rows = [{"id": i, "owner": None, "status": None} for i in ("42", "archived-7", "Archived-7")]
    assert selected(engine, rows, where(flt, orders.c.id)) == {"42", "Archived-7"}


def test_allow_all_and_deny_all_are_plain_answers() -> None:
    iam, alice = directory([{"Effect": "Allow", "Action": ACTION, "Resource": "*"}])
    assert resource_filter(iam, alice, ACTION, ORDER, now=NOW).allows_all
    assert resource_filter(iam, alice, "orders:DeleteOrder", ORDER, now=NOW).allows_none
    assert str(where(resource_filter(iam, alice, "orders:DeleteOrder", ORDER), orders.c.id)) == "false"


def test_tag_conditions_become_column_comparisons(engine: Engine) -> None:
    iam, alice = directory([
        {"Effect": "Allow", "Action": ACTION, "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}},
        {"Effect": "Allow", "Action": ACTION, "Resource": "*",
         "Condition": {"StringLike": {"orders:Status": "shared-*"}}},
        {"Effect": "Deny", "Action": ACTION, "Resource": "*",
         "Condition": {"StringEquals": {"orders:Status": "deleted"}}},
    ])
    flt = resource_filter(iam, alice, ACTION, ORDER, attributes=[OWNER, STATUS], now=NOW)
    assert isinstance(flt.expression, AllOf) and flt.attributes == (OWNER, STATUS)
    allowed, denied = flt.expression.operands
    assert isinstance(allowed, AnyOf) and isinstance(denied, Not)
    assert [(c.key, c.operator, c.values) for c in allowed.operands if isinstance(c, AttributeCondition)] == [
        (OWNER, "StringEquals", ("alice",)), (STATUS, "StringLike", (Glob(("shared-", Wildcard.ANY)),))]
    rows: list[dict[str, Any]] = [
            {"id": "1", "owner": "alice", "status": None}, {"id": "2", "owner": "bob", "status": "shared-x"},
            {"id": "3", "owner": "alice", "status": "deleted"}, {"id": "4", "owner": "bob", "status": None},
            {"id": "5", "owner": None, "status": "shared-"}, {"id": "6", "owner": "Alice", "status": "Shared-x"}]
    clause = where(flt, orders.c.id, columns={"aws:resourcetag/OWNER": orders.c.owner, STATUS: orders.c.status})
    assert selected(engine, rows, clause) == {"1", "2", "5"}
    assert {row["id"] for row in rows if authorized(iam, alice, flt, row)} == {"1", "2", "5"}
    with pytest.raises(UnsupportedFilter, match="map it to a column"):
        where(flt, orders.c.id, columns={OWNER: orders.c.owner})


def test_what_sql_cannot_say_exactly_is_refused() -> None:
    iam, alice = directory([{"Effect": "Allow", "Action": ACTION, "Resource": "arn:app:orders::111122223333:order/a?"},
                            {"Effect": "Allow", "Action": ACTION, "Resource": "*",
                             "Condition": {"NumericLessThan": {"orders:Status": "3"}}}])
    flt = resource_filter(iam, alice, ACTION, ORDER, attributes=[STATUS], now=NOW)
    assert isinstance(flt.expression, AnyOf)
    with pytest.raises(UnsupportedFilter, match="'\\?'.*ids='unreserved'"):
        where(flt, orders.c.id, columns={STATUS: orders.c.status})
    with pytest.raises(UnsupportedFilter, match="NumericLessThan on orders:Status"):
        where(flt, orders.c.id, columns={STATUS: orders.c.status}, ids="unreserved")
    iam, alice = directory([{"Effect": "Allow", "Action": ACTION, "Resource": "arn:app:orders::111122223333:order/*1"}])
    with pytest.raises(UnsupportedFilter, match="could end inside an escape"):
        where(resource_filter(iam, alice, ACTION, ORDER, now=NOW), orders.c.id)
    with pytest.raises(ValueError, match="exactly one free id"):
        resource_filter(iam, alice, ACTION, "arn:app:orders::{account}:order/{a}/{b}")
    with pytest.raises(ValueError, match="the request itself sets"):
        resource_filter(iam, alice, ACTION, ORDER, attributes=["aws:username"])


# The guarantee: row for row, over generated policies and ids --------------------------------------------------
PREFIXES = ["arn:app:orders::111122223333:order/", "arn:app:orders::111122223333:order/", "arn:app:orders:*:*:order/",
            "arn:app:orders::*:order/", "arn:app:orders::111122223333:invoice/"]
#: Pieces of the id part of a Resource entry, and stored ids that meet them (``*`` and ``?`` take what they will);
#: ids are built from the very pieces the policies use, so near misses are frequent.
PIECES: dict[str, list[str]] = {
    "*": ["", "a", "!", " ", "%", "_1", "é"], "?": ["a", "_", "!", "é", "%"], "a": ["a", "A"], "1": ["1", "!"],
    "_": ["_", "x"], "%": ["%", "!"], "%25": ["%", "%25"], "%2": ["!", " ", "%2"], "%21": ["!", "%21"],
    "%41": ["A", "%41"], "%2F": ["/", "%2F"], "%C3": ["é", "Ã"], "%A9": ["é", "©"], "%C3%A9": ["é", "%C3%A9"],
    "${aws:username}": ["alice", "a_b", "A.l-1"], "${*}": ["*", "x"], "/": ["/", ":"],
    # A wildcard beside an escape's digits or a character's UTF-8 bytes: where a translation could go wrong.
    "*1": ["!", "a1", "1"], "*%A9": ["é", "a©"], "%C3*": ["é", "Ãa"],
}
UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
ATTRIBUTE_CONDITIONS: list[dict[str, Any]] = [
    {"StringEquals": {OWNER: "${aws:username}"}}, {"StringNotEquals": {OWNER: ["a_b", "bob"]}},
    {"StringLike": {STATUS: ["open*", "_%?"]}}, {"StringNotLikeIfExists": {STATUS: "*closed"}},
    {"StringEqualsIfExists": {OWNER: "a%b"}}, {"Null": {STATUS: "true"}}, {"Null": {OWNER: "false"}},
    {"ForAnyValue:StringLike": {STATUS: "o*"}}, {"ForAllValues:StringEquals": {OWNER: "bob"}},
    {"StringEquals": {"aws:username": "alice"}},  # a known key: settled before the filter is built
]
ATTRIBUTE_VALUES = st.none() | st.sampled_from(["alice", "a_b", "bob", "a%b", "open-1", "closed", "_%x", "o", ""])
USERS = st.sampled_from(["alice", "a_b", "A.l-1"])
Tail = list[str]


@st.composite
def statements(draw: st.DrawFn) -> tuple[dict[str, Any], list[Tail]]:
    """A statement, and the id part of each of its Resource entries as pieces."""
    tails = draw(st.lists(st.lists(st.sampled_from(sorted(PIECES)), max_size=3), min_size=1, max_size=2))
    patterns = ["*" if draw(st.integers(0, 9)) == 0 else draw(st.sampled_from(PREFIXES)) + "".join(tail)
                for tail in tails]
    out: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
                           "Action": draw(st.sampled_from([ACTION, ACTION, "orders:*", "orders:Delete*"]))}
    out["NotResource" if draw(st.integers(0, 4)) == 0 else "Resource"] = patterns
    if draw(st.integers(0, 2)) == 0:
        out["Condition"] = draw(st.sampled_from(ATTRIBUTE_CONDITIONS))
    return out, tails


@st.composite
def stored_ids(draw: st.DrawFn, tails: list[Tail], unreserved: bool) -> list[str]:
    """Ids near the entries' id parts (each piece replaced by what it may match, with a character more or less
    here and there), and a few others."""
    found: set[str] = set()
    for _ in range(draw(st.integers(0 if not tails else 3, 12))):
        tail = draw(st.sampled_from(tails)) if tails else []
        text = "".join(draw(st.sampled_from(PIECES[piece])) for piece in tail)
        text += draw(st.sampled_from(["", "", "", "a", "1", "!"]))
        if unreserved:
            text = "".join(ch if ch in UNRESERVED else "_" for ch in text)
        found.add(text)
    return sorted(found)


def _check(engine: Engine, data: st.DataObject, drawn: list[tuple[dict[str, Any], list[Tail]]], username: str,
           mode: str) -> None:
    iam, principal = directory([statement for statement, _ in drawn], username)
    try:
        flt = resource_filter(iam, principal, ACTION, ORDER, attributes=[OWNER, STATUS], now=NOW)
    except UnsupportedFilter as refused:
        assert "spans the text before" in str(refused)
        event("refused by resource_filter")
        return
    ids = data.draw(stored_ids([tail for _, tails in drawn for tail in tails], mode == "unreserved"))
    rows: list[dict[str, Any]] = [
        {"id": id_value, "owner": data.draw(ATTRIBUTE_VALUES), "status": data.draw(ATTRIBUTE_VALUES)}
        for id_value in ids]
    expected = {row["id"] for row in rows if authorized(iam, principal, flt, row)}
    assert {row["id"] for row in rows if flt.allows(row["id"], {OWNER: row["owner"], STATUS: row["status"]})} \
        == expected, flt
    try:
        clause = where(flt, orders.c.id, columns={OWNER: orders.c.owner, STATUS: orders.c.status},
                       ids=mode)  # type: ignore[arg-type]
    except UnsupportedFilter as refused:
        assert mode == "any" and ("'?'" in str(refused) or "escape" in str(refused)), refused
        event("refused by where")
        return
    event(f"filter: {'all' if flt.allows_all else 'none' if flt.allows_none else 'some'}")
    if 0 < len(expected) < len(rows):
        event("rows: some allowed, some not")
    assert selected(engine, rows, clause) == expected, (flt, str(clause.compile(compile_kwargs={
        "literal_binds": True})))


@settings(max_examples=200)
@given(data=st.data(), drawn=st.lists(statements(), min_size=1, max_size=3), username=USERS)
def test_unreserved_ids_are_filtered_exactly_as_authorize_decides(
        engine: Engine, data: st.DataObject, drawn: list[tuple[dict[str, Any], list[Tail]]], username: str) -> None:
    _check(engine, data, drawn, username, "unreserved")


@settings(max_examples=200)
@given(data=st.data(), drawn=st.lists(statements(), min_size=1, max_size=3), username=USERS)
def test_any_ids_are_filtered_exactly_or_refused(
        engine: Engine, data: st.DataObject, drawn: list[tuple[dict[str, Any], list[Tail]]], username: str) -> None:
    _check(engine, data, drawn, username, "any")


# One entry at a time: the id patterns' translation, where near misses are most frequent.
@settings(max_examples=400)
@given(data=st.data(), tail=st.lists(st.sampled_from(sorted(PIECES)), min_size=1, max_size=3),
       negated=st.booleans(), username=USERS, mode=st.sampled_from(["any", "unreserved"]))
def test_each_entry_s_ids_are_filtered_exactly(engine: Engine, data: st.DataObject, tail: Tail, negated: bool,
                                               username: str, mode: str) -> None:
    entry = PREFIXES[0] + "".join(tail)
    iam, principal = directory([{"Effect": "Allow", "Action": ACTION, "NotResource" if negated else "Resource": entry}],
                               username)
    flt = resource_filter(iam, principal, ACTION, ORDER, now=NOW)
    rows: list[dict[str, Any]] = [{"id": id_value, "owner": None, "status": None}
                                  for id_value in data.draw(stored_ids([tail], mode == "unreserved"))]
    expected = {row["id"] for row in rows if authorized(iam, principal, flt, row)}
    assert {row["id"] for row in rows if flt.allows(row["id"])} == expected
    try:
        clause = where(flt, orders.c.id, ids=mode)  # type: ignore[arg-type]
    except UnsupportedFilter as refused:
        assert mode == "any" and ("'?'" in str(refused) or "escape" in str(refused)), refused
        event("refused by where")
        return
    if 0 < len(expected) < len(rows):
        event("rows: some allowed, some not")
    assert selected(engine, rows, clause) == expected, (entry, str(clause.compile(compile_kwargs={
        "literal_binds": True})))
