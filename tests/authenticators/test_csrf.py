"""CSRF defence for cookie sessions: the method x credential x origin matrix, spoofing tricks, configuration."""

from __future__ import annotations

import pytest

from iam_middleware._exceptions import AccessDeniedError, ConfigurationError
from iam_middleware._request import RequestView
from iam_middleware.authenticators._csrf import CSRFError, CSRFGuard, check_csrf

ALLOWED = ("https://app.example.com", "http://localhost:8080")
COOKIE = "iam_session"
HOST = "api.example.com"
SESSION_COOKIE = ("cookie", f"theme=dark; {COOKIE}=eyJhbGciOi.eyJzdWIi.c2ln")


def request(method: str = "POST", *headers: tuple[str, str], scheme: str = "https") -> RequestView:
    return RequestView(method=method, raw_path=b"/things", headers=(("host", HOST), *headers), scheme=scheme)


def allowed(req: RequestView) -> bool:
    try:
        check_csrf(req, allowed_origins=ALLOWED, cookie_name=COOKIE)
    except CSRFError:
        return False
    return True


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_pass_even_cross_site(method: str) -> None:
    assert allowed(request(method, SESSION_COOKIE, ("origin", "https://evil.example")))


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PROPFIND", "get", "post"])
@pytest.mark.parametrize(
    ("origin_headers", "expected"),
    [
        ([("origin", "https://app.example.com")], True),
        ([("origin", "http://localhost:8080")], True),
        ([("origin", "https://api.example.com")], True),  # the service's own origin
        ([("origin", "https://API.Example.com:443")], True),  # same origin, spelled differently
        ([("origin", "https://evil.example")], False),
        ([("origin", "null")], False),
        ([("origin", "")], False),
        ([("origin", "http://app.example.com")], False),  # other scheme
        ([("origin", "https://app.example.com:8443")], False),  # other port
        ([("origin", "https://app.example.com.evil.example")], False),
        ([("origin", "https://evil-app.example.com")], False),
        ([("origin", "https://app.example.com"), ("origin", "https://evil.example")], False),
        ([("origin", "https://evil.example"), ("referer", "https://app.example.com/form")], False),  # Origin wins
        ([("referer", "https://app.example.com/form?x=1")], True),
        ([("referer", "https://api.example.com/")], True),
        ([("referer", "https://evil.example/https://app.example.com")], False),
        ([("referer", "https://app.example.com@evil.example/")], False),
        ([("referer", "https://evil.example/?r=https://app.example.com")], False),
        ([("referer", "/relative/path")], False),
        ([("referer", "javascript:alert(1)")], False),
        ([], False),  # neither header
    ],
)
def test_unsafe_methods_with_the_session_cookie(
    method: str, origin_headers: list[tuple[str, str]], expected: bool
) -> None:
    assert allowed(request(method, SESSION_COOKIE, *origin_headers)) is expected


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_bearer_requests_need_no_check(method: str) -> None:
    bearer = ("authorization", "Bearer eyJhbGciOi.eyJzdWIi.c2ln")
    assert allowed(request(method, bearer, ("origin", "https://evil.example")))
    assert allowed(request(method, bearer))


def test_no_cookie_at_all_needs_no_check() -> None:
    assert allowed(request("POST", ("cookie", "theme=dark"), ("origin", "https://evil.example")))
    assert allowed(request("POST", ("cookie", f"{COOKIE}="), ("origin", "https://evil.example")))  # emptied


def test_cookie_plus_bearer_is_still_checked() -> None:
    # Which credential the authenticator picked is unknown here: the cookie's presence decides (fail closed).
    bearer = ("authorization", "Bearer eyJhbGciOi.eyJzdWIi.c2ln")
    assert not allowed(request("POST", bearer, SESSION_COOKIE, ("origin", "https://evil.example")))


def test_cookie_with_a_similar_name_is_not_the_session() -> None:
    assert allowed(request("POST", ("cookie", f"x{COOKIE}=1; {COOKIE}x=2"), ("origin", "https://evil.example")))


def test_session_cookie_in_a_second_cookie_header_is_found() -> None:
    req = request("POST", ("cookie", "theme=dark"), ("cookie", f"{COOKIE}=abc"), ("origin", "https://evil.example"))
    assert not allowed(req)


def test_own_origin_follows_the_request_scheme() -> None:
    assert allowed(request("POST", SESSION_COOKIE, ("origin", "http://api.example.com"), scheme="http"))
    assert not allowed(request("POST", SESSION_COOKIE, ("origin", "http://api.example.com"), scheme="https"))


def test_ambiguous_host_gives_no_own_origin() -> None:
    req = RequestView(
        method="POST",
        raw_path=b"/",
        headers=(("host", HOST), ("host", "evil.example"), SESSION_COOKIE, ("origin", "https://evil.example")),
        scheme="https",
    )
    assert not allowed(req)


def test_error_is_a_403_with_a_stable_code_and_no_echo() -> None:
    with pytest.raises(CSRFError) as caught:
        check_csrf(
            request("POST", SESSION_COOKIE, ("origin", "https://evil.example")),
            allowed_origins=ALLOWED,
            cookie_name=COOKIE,
        )
    error = caught.value
    assert isinstance(error, AccessDeniedError)
    assert (error.status_code, error.code) == (403, "CSRFCheckFailed")
    assert "evil.example" not in str(error) and "eyJ" not in str(error)


def test_guard_validates_once_and_checks_many() -> None:
    guard = CSRFGuard(allowed_origins=["https://APP.example.com/"], cookie_name=COOKIE)
    guard.check(request("POST", SESSION_COOKIE, ("origin", "https://app.example.com")))
    with pytest.raises(CSRFError):
        guard.check(request("POST", SESSION_COOKIE, ("origin", "https://evil.example")))


def test_ipv6_origins() -> None:
    guard = CSRFGuard(allowed_origins=["https://[2001:db8::1]:8443"], cookie_name=COOKIE)
    guard.check(request("POST", SESSION_COOKIE, ("origin", "https://[2001:DB8::1]:8443")))
    with pytest.raises(CSRFError):
        guard.check(request("POST", SESSION_COOKIE, ("origin", "https://[2001:db8::2]:8443")))


@pytest.mark.parametrize(
    "origins",
    [
        "https://app.example.com",  # one string, not a collection
        ["app.example.com"],
        ["ftp://app.example.com"],
        ["https://app.example.com/path"],
        ["https://app.example.com?x=1"],
        ["https://app.example.com#frag"],
        ["https://user@app.example.com"],
        ["https://app.example.com:99999"],
        ["null"],
        [""],
        [None],
    ],
)
def test_invalid_allowed_origins_are_configuration_errors(origins: object) -> None:
    with pytest.raises(ConfigurationError):
        CSRFGuard(allowed_origins=origins, cookie_name=COOKIE)  # type: ignore[arg-type]


def test_cookie_name_is_required() -> None:
    with pytest.raises(ConfigurationError):
        CSRFGuard(allowed_origins=ALLOWED, cookie_name="")
