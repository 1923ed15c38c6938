"""Unit tests of iam_middleware.routing: permissions and @permission/@public, template rendering and its escaping,
the rules table, and canonical_path (the gate in front of every rules-table match)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import BadRequestError, ConfigurationError
from iam_middleware.policy import Caller, PolicySet, evaluate, parse_policy
from iam_middleware.routing import (
    PUBLIC,
    MissingValueError,
    Permission,
    Public,
    Rule,
    RuleTable,
    canonical_path,
    declared,
    permission,
    public,
    render,
    render_template,
    request_values,
)

FIXED = {"account": "111122223333", "partition": "app", "region": "local"}
ORDER = "arn:{partition}:orders::{account}:order/{order_id}"


def values(**path_params: Any) -> dict[str, Any]:
    return request_values(path_params, {}, {}, FIXED)


# Permission and the decorators -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["orders", "orders:*", "orders:Get?", "a:b:c", "", 3])
def test_permission_action_is_one_concrete_action(action: Any) -> None:
    with pytest.raises(ConfigurationError, match="one concrete 'service:Action'"):
        Permission(action)


def test_permission_resource_must_be_a_non_empty_string() -> None:
    with pytest.raises(ConfigurationError, match="non-empty string"):
        Permission("orders:GetOrder", "")


@pytest.mark.parametrize("key", ["aws:SourceIp", "AWS:sourceip", "aws:PrincipalArn", "aws:MultiFactorAuthPresent",
                                 "aws:username", "aws:PrincipalTag/team", "aws:CurrentTime"])
def test_permission_context_cannot_set_keys_iam_computes(key: str) -> None:
    # A request value in one of these would let the caller choose its own address, identity or MFA state.
    with pytest.raises(ConfigurationError, match="computed by IAM"):
        Permission("orders:GetOrder", context={key: "{header.x-anything}"})


def test_permission_context_may_carry_request_tags_and_service_keys() -> None:
    context = {"aws:RequestTag/team": "{query.team}", "aws:TagKeys": "{query.keys}", "orders:Status": "{query.s}"}
    assert dict(Permission("orders:CreateOrder", context=context).context) == context


@pytest.mark.parametrize("context", [{"status": "x"}, {"orders:Status": 3}, {":x": "y"}])
def test_permission_context_keys_are_prefixed_strings(context: Any) -> None:
    with pytest.raises(ConfigurationError, match="'prefix:Name'"):
        Permission("orders:GetOrder", context=context)


def test_permission_is_immutable_and_lists_its_placeholders() -> None:
    given_context = {"orders:Team": "{header.x-team}"}
    p = Permission("orders:GetOrder", ORDER, given_context)
    given_context["orders:Other"] = "{query.x}"  # the caller's dict is copied
    assert p.placeholders() == {"partition", "account", "order_id", "header.x-team"}
    with pytest.raises(TypeError):
        p.context["orders:Team"] = "x"  # type: ignore[index]


def test_public_is_a_singleton() -> None:
    assert Public() is PUBLIC
    assert repr(PUBLIC) == "PUBLIC"


def test_decorators_declare_on_sync_and_async_functions() -> None:
    @permission("orders:GetOrder", ORDER)
    def sync_view() -> None: ...

    @public
    async def async_view() -> None: ...

    assert declared(sync_view) == Permission("orders:GetOrder", ORDER)
    assert declared(async_view) is PUBLIC
    assert declared(lambda: None) is None


def test_class_endpoints_declare_per_method_and_head_follows_get() -> None:
    @permission("orders:ListOrders")
    class Orders:
        @permission("orders:GetOrder")
        def get(self) -> None: ...

        @permission("orders:CreateOrder")
        def post(self) -> None: ...

        def delete(self) -> None: ...

    assert declared(Orders, "GET") == Permission("orders:GetOrder")
    assert declared(Orders, "HEAD") == Permission("orders:GetOrder")
    assert declared(Orders, "POST") == Permission("orders:CreateOrder")
    # A handler without its own declaration falls back to the class's.
    assert declared(Orders, "DELETE") == Permission("orders:ListOrders")


def test_declaring_one_endpoint_twice_differently_is_an_error() -> None:
    def view() -> None: ...

    permission("orders:GetOrder")(view)
    permission("orders:GetOrder")(view)  # the same declaration again is harmless
    with pytest.raises(ConfigurationError, match="declared twice"):
        public(view)


def test_a_builtin_that_cannot_carry_a_declaration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot declare"):
        public(len)


# Rendering and escaping -------------------------------------------------------------------------------------------


def test_render_fills_path_and_fixed_values() -> None:
    resource, context = render(Permission("orders:GetOrder", ORDER), values(order_id="42"))
    assert resource == "arn:app:orders::111122223333:order/42"
    assert context == {}


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("*", "%2A"),
        ("?", "%3F"),
        ("a:b", "a%3Ab"),
        ("../x", "..%2Fx"),
        ("..%2F", "..%252F"),
        ("${aws:username}", "%24%7Baws%3Ausername%7D"),
        ("a/b", "a%2Fb"),
        ("é", "%C3%A9"),
        ("a b", "a%20b"),
    ],
)
def test_substituted_values_cannot_inject_wildcards_variables_or_segments(value: str, rendered: str) -> None:
    assert render_template("order/{id}", {"id": value}) == f"order/{rendered}"


_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)


_LITERAL = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=6)


@given(parts=st.lists(st.tuples(_LITERAL, _NAME), max_size=4), tail=_LITERAL,
       given_values=st.dictionaries(_NAME, st.one_of(st.text(max_size=6), st.integers())))
def test_rendering_fills_each_placeholder_with_exactly_its_encoded_value(
        parts: list[tuple[str, str]], tail: str, given_values: dict[str, Any]) -> None:
    template = "".join(f"{literal}{{{name}}}" for literal, name in parts) + tail
    values = {**{name: f"v/{name}" for _, name in parts}, **given_values}
    # The reference: every placeholder replaced by quote(str(value), safe="-._~"), nothing else touched.
    expected = re.sub(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}", lambda m: quote(str(values[m.group(1)]), safe="-._~"),
                      template)
    assert render_template(template, values) == expected


def test_an_escaped_wildcard_matches_only_itself_in_a_policy() -> None:
    # An order whose id is "*" must not become the resource "order/*" that a policy for "order/*" names.
    own_orders = "arn:app:orders::111122223333:order/${aws:username}"
    policy = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": own_orders},
    ]})
    caller = Caller.from_arn("arn:app:iam::111122223333:user/bob")
    star = render_template(ORDER, values(order_id="*"))
    variable = render_template(ORDER, values(order_id="${aws:username}"))
    context = {"aws:username": "bob"}
    for resource in (star, variable):
        assert not evaluate(caller, "orders:GetOrder", resource, context, identity=PolicySet([policy])).allowed
    own = render_template(ORDER, values(order_id="bob"))
    assert evaluate(caller, "orders:GetOrder", own, context, identity=PolicySet([policy])).allowed


@settings(deadline=None, max_examples=200)
@given(st.text())
def test_any_value_renders_to_unreserved_characters_and_escapes_only(value: str) -> None:
    rendered = render_template("arn:app:orders::1:order/{id}", {"id": value})
    tail = rendered.removeprefix("arn:app:orders::1:order/")
    assert re.fullmatch(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})*", tail)
    assert rendered.count(":") == 5  # no ARN segment added
    assert not any(ch in tail for ch in "*?$/:{}")


def test_a_missing_value_names_itself() -> None:
    with pytest.raises(MissingValueError) as caught:
        render_template("order/{query.id}", values())
    assert caught.value.name == "query.id"
    assert isinstance(caught.value, ConfigurationError)
    with pytest.raises(MissingValueError):
        render_template("order/{id}", {"id": None})


def test_context_values_come_from_query_and_headers_unescaped() -> None:
    p = Permission("orders:GetOrder", "*", {"orders:Team": "{header.x-team}", "orders:View": "{query.view}"})
    found = request_values({}, {"view": "a:b*"}, {"X-Team": "blue/green"}, FIXED)
    # Context values are compared, never matched as patterns, so they keep their text.
    assert render(p, found) == ("*", {"orders:team": "blue/green", "orders:view": "a:b*"})


def test_a_context_key_naming_an_absent_value_is_left_out() -> None:
    # IAM treats a missing key as absent; Null and ...IfExists conditions say what that means.
    p = Permission("orders:GetOrder", "*", {"orders:Team": "{header.x-team}", "orders:View": "{query.view}"})
    assert render(p, request_values({}, {"view": "full"}, {}, FIXED)) == ("*", {"orders:view": "full"})


def test_path_parameters_win_over_fixed_values() -> None:
    assert request_values({"account": "999"}, {}, {}, FIXED)["account"] == "999"


# Rules table ------------------------------------------------------------------------------------------------------


def test_rules_match_method_and_path_first_match_wins() -> None:
    table = RuleTable([
        Rule("GET", "/orders/{order_id}", Permission("orders:GetOrder", ORDER)),
        Rule("*", "/orders/{order_id}", Permission("orders:DeleteOrder", ORDER)),
        Rule("get", "/files/{name:path}", PUBLIC),
    ])
    assert table.lookup("GET", "/orders/7") == (table.rules[0], {"order_id": "7"})
    assert table.lookup("DELETE", "/orders/7") == (table.rules[1], {"order_id": "7"})
    assert table.lookup("GET", "/files/a/b.txt") == (table.rules[2], {"name": "a/b.txt"})
    assert table.rules[2].method == "GET"
    assert table.lookup("GET", "/orders/7/items") is None
    assert table.lookup("GET", "/orders/") is None
    assert table.lookup("POST", "/files/a") is None


def test_head_is_governed_by_the_get_rule() -> None:
    table = RuleTable([Rule("GET", "/orders", Permission("orders:ListOrders"))])
    assert table.lookup("HEAD", "/orders") is not None
    assert table.for_template("HEAD", "/orders") is table.rules[0]
    assert RuleTable([Rule("HEAD", "/x", PUBLIC)]).lookup("GET", "/x") is None


def test_a_trailing_slash_is_governed_by_the_same_rule() -> None:
    # Otherwise a catch-all rule further down could govern "/admin/", which many apps serve as "/admin".
    table = RuleTable([Rule("GET", "/admin", Permission("orders:PurgeOrders")), Rule("GET", "/dir/", PUBLIC),
                       Rule("*", "/{rest:path}", PUBLIC)])
    assert table.lookup("GET", "/admin/") == (table.rules[0], {})
    assert table.lookup("GET", "/dir") == (table.rules[1], {})
    assert table.lookup("GET", "/") is None


def test_rule_parameters_never_span_segments_but_path_parameters_do() -> None:
    rule = Rule("GET", "/a/{x}/{rest:path}", PUBLIC)
    assert rule.match("GET", "/a/1/2/3") == {"x": "1", "rest": "2/3"}
    assert rule.match("GET", "/a/1") is None


def test_a_rule_permission_may_name_its_parameters_fixed_and_request_values() -> None:
    rule = Rule("GET", "/t/{tenant}/{rest:path}", Permission(
        "orders:GetOrder", "arn:{partition}:orders:{region}:{account}:{tenant}/{rest}",
        {"orders:View": "{query.view}", "orders:Team": "{header.x-team}"}))
    assert rule.match("GET", "/t/acme/a/b") == {"tenant": "acme", "rest": "a/b"}


def test_regex_characters_in_a_rule_path_are_literal() -> None:
    rule = Rule("GET", "/v1.0/(x)+", PUBLIC)
    assert rule.match("GET", "/v1.0/(x)+") == {}
    assert rule.match("GET", "/v1x0/xx") is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda: Rule("GET", "orders", PUBLIC), "must start with '/'"),
        (lambda: Rule("GET", "/a/{x}/{x}", PUBLIC), "names {x} twice"),
        (lambda: Rule("GET", "/a", "orders:GetOrder"), "Permission or PUBLIC"),  # type: ignore[arg-type]
        (lambda: RuleTable([Rule("GET", "/a", PUBLIC), Rule("get", "/a", PUBLIC)]), "twice"),
        (lambda: Rule("GET", "/orders/{order_id}", Permission("orders:GetOrder", "order/{id}")), "names {id}"),
    ],
)
def test_bad_rules_are_configuration_errors(rule: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        rule()


def test_rule_table_from_config() -> None:
    table = RuleTable.from_config([
        {"method": "GET", "path": "/orders/{order_id}", "action": "orders:GetOrder", "resource": ORDER,
         "context": {"orders:Team": "{header.x-team}"}},
        {"path": "/health", "public": True},
    ])
    assert table.rules[0].requirement == Permission("orders:GetOrder", ORDER, {"orders:Team": "{header.x-team}"})
    assert table.rules[1] == Rule("*", "/health", PUBLIC)
    assert bool(table) and not RuleTable()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"method": "GET", "action": "orders:GetOrder"}], "routes[0]: missing 'path'"),
        ([{"path": "/a"}], "routes[0]: missing 'action'"),
        ([{"path": "/a", "public": True}, {"path": "/b", "action": "orders"}], "routes[1]: permission action"),
        ([{"path": "/a", "public": True, "action": "orders:GetOrder"}], "routes[0]: a route is either public"),
        (["/a"], "routes[0]: must be a table"),
    ],
)
def test_rule_table_config_errors_say_where(entries: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        RuleTable.from_config(entries)


# canonical_path --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"/", "/"),
        (b"/orders/42", "/orders/42"),
        (b"/%61dmin", "/admin"),
        (b"/caf%C3%A9", "/café"),
        (b"/a%20b", "/a b"),
        (b"/admin%3Fx", "/admin?x"),
        (b"/a/.hidden/..x", "/a/.hidden/..x"),
        (b"/admin/", "/admin/"),
    ],
)
def test_canonical_paths_are_decoded_once(raw: bytes, path: str) -> None:
    assert canonical_path(raw) == path


@pytest.mark.parametrize(
    "raw",
    [
        b"/admin%2F", b"/a%2fb", b"/a%5Cb", b"/a%5cb", b"/a%252Fb", b"/%2561dmin", b"/a%00", b"/%2e%2e/admin",
        b"/a/%2E/b", b"/./admin", b"/public/../admin", b"/public/..;/admin", b"/a/.;x/b", b"/..", b"//admin",
        b"/admin//", b"/admin;x=1", b"/admin%3Bx", b"/admin%3b", b"/a\\b", b"/a%09b", b"/a%7F", b"/a\x00b",
        b"/%C0%AF", b"/%FF", b"/\xff", b"/caf\xe9",
        b"admin", b"",
    ],
)
def test_ambiguous_paths_are_refused(raw: bytes) -> None:
    with pytest.raises(BadRequestError) as caught:
        canonical_path(raw)
    assert caught.value.status_code == 400
    assert caught.value.code == "InvalidPath"


_SEGMENT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/"), min_size=1, max_size=8)


@settings(deadline=None, max_examples=200)
@given(st.lists(_SEGMENT, max_size=5))
def test_a_canonical_path_round_trips_and_anything_accepted_is_unambiguous(segments: list[str]) -> None:
    decoded = "/" + "/".join(segments)
    # A literal "%" travels as %25, which is refused like every encoded escape character.
    clean = all(s not in (".", "..") for s in segments) and not any(
        ord(ch) < 0x20 or ch in "\x7f\\%;" for ch in decoded)
    encoded = quote(decoded, safe="/=").encode("ascii")
    if clean:
        assert canonical_path(encoded) == decoded
    else:
        with pytest.raises(BadRequestError):
            canonical_path(encoded)


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=24))
def test_whatever_canonical_path_accepts_has_no_ambiguity_left(tail: bytes) -> None:
    try:
        path = canonical_path(b"/" + tail)
    except BadRequestError:
        return
    segments = path.split("/")[1:]
    assert "//" not in path and not any(s in (".", "..") for s in segments)
    assert not any(ord(ch) < 0x20 or ch in "\x7f\\;" for ch in path)
