"""The one translation every shell uses, from an ASGI scope or a WSGI environ to the gate's RequestView: the path
as the client sent it, never decoded twice; headers as sent; nothing that is not a header taken for one."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from iam_middleware.asgi import request_digest
from iam_middleware.interfaces import from_asgi_scope, from_wsgi_environ


def environ(**extra: Any) -> dict[str, Any]:
    base = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/orders/1", "QUERY_STRING": "",
            "REMOTE_ADDR": "198.51.100.7", "wsgi.url_scheme": "http"}
    return base | extra


def test_a_wsgi_raw_target_is_the_path_as_sent_query_dropped() -> None:
    view = from_wsgi_environ(environ(RAW_URI="/orders/%2F..%2Fadmin?x=1", PATH_INFO="/orders/../admin"))
    assert view.raw_path == b"/orders/%2F..%2Fadmin"


def test_an_absolute_form_target_gives_its_path_not_the_authority() -> None:
    view = from_wsgi_environ(environ(RAW_URI="http://evil.example/admin?x=1"))
    assert view.raw_path == b"/admin"
    assert from_wsgi_environ(environ(REQUEST_URI="http://evil.example")).raw_path == b"/"


def test_without_a_raw_target_the_decoded_path_is_quoted_again() -> None:
    # PATH_INFO is decoded: a literal '%41' in it came from '%2541' and must not read as 'A' downstream.
    view = from_wsgi_environ(environ(SCRIPT_NAME="/api", PATH_INFO="/x%41 y"))
    assert view.raw_path == b"/api/x%2541%20y"


def test_only_http_variables_and_the_two_body_headers_are_headers() -> None:
    view = from_wsgi_environ(environ(HTTP_X_TEAM="red", CONTENT_TYPE="application/json", CONTENT_LENGTH="",
                                     HTTP_CONTENT_TYPE="text/evil", SERVER_NAME="host"))
    assert dict(view.headers) == {"x-team": "red", "content-type": "application/json"}


def test_the_scheme_a_framework_knows_overrides_the_environ() -> None:
    assert from_wsgi_environ(environ(), scheme="https").scheme == "https"
    assert from_wsgi_environ(environ()).scheme == "http"


def test_an_asgi_scope_keeps_repeated_headers_in_order_and_lowercases_names() -> None:
    scope = {"type": "http", "method": "GET", "raw_path": b"/a%2Fb", "path": "/a/b", "query_string": b"q=1",
             "headers": [(b"X-Team", b"red"), (b"x-team", b"blue")], "client": ("203.0.113.9", 5)}
    view = from_asgi_scope(scope)
    assert view.raw_path == b"/a%2Fb"
    assert view.header_values("x-team") == ["red", "blue"]
    assert view.client_host == "203.0.113.9"


def test_a_websocket_handshake_is_a_get_without_a_body() -> None:
    view = from_asgi_scope({"type": "websocket", "path": "/ws", "headers": []})
    assert (view.method, view.body, view.raw_path) == ("GET", b"", b"/ws")


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_an_asgi_path_without_raw_path_decodes_back_to_itself_once(text: str) -> None:
    path = "/" + text
    view = from_asgi_scope({"type": "http", "method": "GET", "path": path, "headers": []})
    assert unquote(view.raw_path.decode("ascii")) == path


def test_the_repeat_digest_takes_any_root_path_and_method() -> None:
    scope = {"type": "http", "method": "GËT", "root_path": "/ünïcode/路径", "raw_path": b"/x", "query_string": b"",
             "scheme": "http", "client": None, "headers": []}
    first, _ = request_digest(scope, None)
    assert first != request_digest(scope | {"root_path": "/other"}, None)[0]
