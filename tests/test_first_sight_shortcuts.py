"""Every shortcut of the first-sight work gives what the long way gives (docs/security.md: a shortcut never changes
a decision). Each test runs both ways over a space of inputs."""

from __future__ import annotations

import dataclasses
import hmac
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import HMACAlgorithm

from iam_middleware import IAM, CredentialKind, Principal, PrincipalType, RequestView
from iam_middleware._decisions import _merged
from iam_middleware._exceptions import BadRequestError, InvalidTokenError
from iam_middleware.authenticators._jwks import VERIFIERS
from iam_middleware.authenticators._jwt import _decode_segment, decode_payload
from iam_middleware.authenticators._sigv4 import _query
from iam_middleware.authenticators._sigv4_canonical import decode_query_component, split_query
from iam_middleware.gate import render_permission
from iam_middleware.routing import (
    MissingValueError,
    Permission,
    _checked_path,
    canonical_path,
    render,
    request_values,
)

# Paths built from the characters that matter to the checks (separators, dots, escapes, controls, non-ASCII).
_PATH_BYTES = st.binary(max_size=40) | st.lists(
    st.sampled_from([b"/", b".", b"..", b"a", b"Z", b"9", b"-", b"~", b"%", b"%2e", b"%2F", b"%41", b";", b"\\",
                     b" ", b"\x00", b"\x7f", b"\xc3\xa9", b"\xff", b":", b"@", b"+", b"?", b"#", b"//"]),
    max_size=12).map(b"".join)


def _outcome(function: object, raw: bytes) -> tuple[str, str]:
    try:
        return "ok", function(raw)  # type: ignore[operator]
    except BadRequestError as error:
        return "refused", error.code


@given(_PATH_BYTES.map(lambda raw: b"/" + raw) | _PATH_BYTES)
@settings(max_examples=3000, deadline=None)
def test_canonical_path_fast_match_agrees_with_the_checks(raw: bytes) -> None:
    fast = _outcome(canonical_path, raw)
    slow = _outcome(_checked_path, raw)
    assert fast[0] == slow[0]
    if fast[0] == "ok":
        assert fast == slow


@given(st.lists(st.tuples(st.sampled_from(["authorization", "x-a", "host", "Host", "cookie", "x-A"]),
                          st.text(max_size=5)), max_size=8),
       st.sampled_from(["authorization", "Authorization", "x-a", "X-A", "host", "HOST", "cookie", "absent"]))
def test_header_lookup_is_the_scan_it_replaces(headers: list[tuple[str, str]], name: str) -> None:
    view = RequestView("GET", b"/", headers=tuple(headers))
    scanned = [value for key, value in headers if key == name.lower()]
    assert view.header_values(name) == scanned
    assert view.header(name) == (",".join(scanned) if scanned else None)
    view.header_values(name).append("changed")  # a copy: the view's own values never change
    assert view.header_values(name) == scanned


@given(st.sampled_from(["GET", "POST", "put"]), st.binary(max_size=20), st.binary(max_size=20),
       st.lists(st.tuples(st.sampled_from(["x-a", "host", "authorization"]), st.text(max_size=5)), max_size=4),
       st.none() | st.text(max_size=8), st.sampled_from(["http", "https"]), st.binary(max_size=20),
       st.booleans())
def test_with_body_is_the_same_view_with_that_body(method: str, path: bytes, query: bytes,
                                                   headers: list[tuple[str, str]], client: str | None, scheme: str,
                                                   body: bytes, looked_up: bool) -> None:
    view = RequestView(method, path, query, tuple(headers), client, scheme)
    if looked_up:
        view.header("x-a")  # the header index exists before the body is read
    read = view.with_body(body)
    assert read == dataclasses.replace(view, body=body)
    for name in ("x-a", "host", "authorization", "absent"):
        assert read.header_values(name) == [v for k, v in headers if k == name]


def test_a_view_with_its_body_looks_up_its_own_headers() -> None:
    view = RequestView("GET", b"/", headers=(("x-a", "1"),))
    assert view.header("x-a") == "1"
    assert view.with_body(b"").header("x-a") == "1"
    assert view == RequestView("GET", b"/", headers=(("x-a", "1"),))  # the lookup map is not part of equality
    assert "_by_name" not in repr(view)




# The decision point builds only the global keys the applicable statements read ----------------------------------

_EXAMPLE = IAM.from_file(Path(__file__).resolve().parent.parent / "examples" / "iam.toml")
_GLOBAL = ["aws:currenttime", "aws:epochtime", "aws:sourceip", "aws:securetransport", "aws:useragent", "aws:referer",
           "aws:principalarn", "aws:principaltag/team", "aws:multifactorauthage", "aws:username", "idp:sub", "x:y"]
_KEY = st.sampled_from(_GLOBAL)


@st.composite
def _principals(draw: st.DrawFn) -> Principal:
    kind = draw(st.sampled_from([PrincipalType.USER, PrincipalType.ASSUMED_ROLE]))
    return Principal(
        arn="arn:aws:iam::111122223333:user/a", type=kind, account="111122223333", name="a", id="AIDA1",
        credential_kind=draw(st.sampled_from(list(CredentialKind))),
        tags=MappingProxyType(draw(st.dictionaries(st.sampled_from(["team", "Team"]), st.text(max_size=3)))),
        mfa_present=draw(st.none() | st.booleans()), mfa_time=draw(st.none() | st.floats(0, 2e9)),
        token_issue_time=draw(st.none() | st.floats(0, 2e9)),
        # A credential's own keys may name any key, global ones included: they win over the computed ones.
        extra_context=MappingProxyType(draw(st.dictionaries(_KEY, st.text(max_size=3), max_size=3))),
    )


@given(_principals(), st.lists(st.sampled_from([("user-agent", "ua"), ("referer", "r"), ("user-agent", "u2")]),
                               max_size=3),
       st.sampled_from(["http", "https"]), st.none() | st.sampled_from(["10.0.0.1", ""]),
       st.dictionaries(_KEY, st.text(max_size=3), max_size=3), st.frozensets(_KEY, max_size=4),
       st.floats(1e9, 2e9))
@settings(max_examples=500, deadline=None)
def test_the_keys_a_decision_reads_are_those_of_the_whole_context(
        principal: Principal, headers: list[tuple[str, str]], scheme: str, source_ip: str | None,
        extra: dict[str, Any], reads: frozenset[str], now: float) -> None:
    decisions = _EXAMPLE.decisions
    request = RequestView("GET", b"/", headers=tuple(headers), client_host="127.0.0.1", scheme=scheme)
    whole = _merged(extra, decisions.context_for(principal, request, now=now, source_ip=source_ip))
    built = _merged(extra, decisions.context_for(principal, request, now=now, source_ip=source_ip, reads=reads))
    for key in reads:
        assert (key in built) == (key in whole)
        assert built.get(key) == whole.get(key)


def test_decisions_with_the_keys_read_are_the_decisions_with_every_key() -> None:
    from iam_middleware.testing import principal_for

    alice = principal_for(_EXAMPLE, "alice")
    decisions = _EXAMPLE.decisions
    request = RequestView("GET", b"/", headers=(("user-agent", "ua"),), client_host="10.1.2.3", scheme="https")
    actions = ("orders:GetOrder", "orders:DeleteOrder", "orders:ListOrders", "s3:GetObject", "sts:GetCallerIdentity")
    for action in actions:
        for resource in ("arn:app:orders::111122223333:order/42", "*"):
            for extra in ({}, {"orders:Priority": "high"}, {"aws:SourceIp": "1.2.3.4"}):
                lazy = decisions.decide(alice, action, resource, extra, now=1.7e9, request=request)
                whole = decisions.compiled(alice).decide(
                    action, resource, _merged(extra, decisions.context_for(alice, request, now=1.7e9)))
                assert lazy == whole


# The JWT steps ---------------------------------------------------------------------------------------------------


@given(st.sampled_from([("HS256", HMACAlgorithm.SHA256), ("HS384", HMACAlgorithm.SHA384),
                        ("HS512", HMACAlgorithm.SHA512)]),
       st.binary(min_size=1, max_size=80), st.binary(max_size=200), st.booleans(), st.binary(max_size=70))
def test_hmac_verification_is_pyjwts(alg: tuple[str, Any], key: bytes, message: bytes, genuine: bool,
                                     other: bytes) -> None:
    name, hash_alg = alg
    signature = hmac.new(key, message, hash_alg).digest() if genuine else other
    assert VERIFIERS[name].verify(message, key, signature) is HMACAlgorithm(hash_alg).verify(message, key, signature)


_SEGMENTS = st.sampled_from(["eyJhIjoxfQ", "eyJhIjoxLCJhIjoyfQ", "e30", "W10", "eyJhIjoxfR", "e", "",
                             "eyJ4Ijoi4oKsIn0"])


@given(st.lists(_SEGMENTS, min_size=1, max_size=6))
def test_the_remembered_payload_is_the_decoded_one(segments: list[str]) -> None:
    for segment in segments:  # a run of tokens, repeats included: each answer is the segment's own
        try:
            expected: Any = _decode_segment(segment, "payload")
        except InvalidTokenError as error:
            expected = ("refused", str(error))
        try:
            got: Any = decode_payload(segment)
        except InvalidTokenError as error:
            got = ("refused", str(error))
        assert got == expected


# The resource of a permission without request values -------------------------------------------------------------

_PIECES = st.sampled_from(["arn:app:orders::", "{account}", ":order/", "{order_id}", "{region}", "{partition}",
                           "{missing}", "/", "*", "{query.team}", "{header.x-team}"])


@given(st.lists(_PIECES, min_size=1, max_size=6).map("".join),
       st.dictionaries(st.sampled_from(["order_id", "account", "region", "other"]),
                       st.text(max_size=4) | st.integers(), max_size=3),
       st.booleans())
@settings(max_examples=400, deadline=None)
def test_the_plain_resource_shortcut_renders_what_render_does(template: str, params: dict[str, Any],
                                                              with_context: bool) -> None:
    from iam_middleware.testing import principal_for

    alice = principal_for(_EXAMPLE, "alice")
    settings_ = _EXAMPLE.settings
    context = {"orders:Team": "{order_id}"} if with_context else {}
    requirement = Permission("orders:GetOrder", resource=template, context=context)
    request = RequestView("GET", b"/", query_string=b"team=red", headers=(("x-team", "blue"),))
    fixed = {"account": alice.account, "partition": settings_.partition, "region": settings_.regions[0]}
    try:
        expected: Any = render(requirement, request_values(params, {"team": "red"}, {"x-team": "blue"}, fixed))
    except MissingValueError as error:
        expected = ("missing", error.name)
    try:
        got: Any = render_permission(_EXAMPLE, request, requirement, params, alice)
    except MissingValueError as error:
        got = ("missing", error.name)
    except BadRequestError:  # the long way's own refusal of an absent request value
        return
    assert got == expected


# SigV4 splits the query once per request ----------------------------------------------------------------------------


@given(st.lists(st.sampled_from([b"a=1", b"X-Amz-Signature=x", b"X-Amz-%41lgorithm=y", b"b", b"=", b"c=%zz",
                                 b"X-Amz-Credential=k", b"d+e=f"]), max_size=6).map(b"&".join))
def test_the_query_split_once_is_the_query_split(query: bytes) -> None:
    view = RequestView("GET", b"/", query_string=query)
    pairs = split_query(query)
    assert _query(view) == (pairs, [decode_query_component(key) for key, _ in pairs])
    assert _query(view) is _query(view)
    assert _query(view.with_body(b"")) == _query(view)
