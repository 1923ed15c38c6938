"""Real ``curl --aws-sigv4`` as the client: a loopback server records the raw request, the verifier checks it.

curl 7.88 signs the path and the query verbatim (docs/security.md section 2b), so some requests verify only with
``verbatim_fallback``; these tests show both sides.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from iam_middleware._request import RequestView
from iam_middleware.authenticators._sigv4 import (
    InvalidSecurityTokenError,
    SignatureDoesNotMatchError,
    SigningCredential,
    SigV4Verifier,
)

CURL = shutil.which("curl")
if CURL is None and not os.environ.get("CI"):
    pytest.skip("curl is not installed", allow_module_level=True)

KEY_ID = "AKIDCURLEXAMPLE"
SECRET = "curl/secret+KEY/0000000000000000000000"
TEMP_KEY_ID = "ASIACURLEXAMPLE"
TEMP_SECRET = "curl/temporary+secret/000000000000000000"
TOKEN = "FwoGZXIvYXdzEXAMPLE/curl+session=token=="
DIRECTORY = {
    KEY_ID: SigningCredential(KEY_ID, SECRET),
    TEMP_KEY_ID: SigningCredential(TEMP_KEY_ID, TEMP_SECRET, session_token=TOKEN),
}


def _curl_version() -> tuple[int, int]:
    assert CURL is not None, "curl must be installed in CI"
    first_line = subprocess.run([CURL, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"curl (\d+)\.(\d+)", first_line)
    assert match is not None
    return int(match[1]), int(match[2])


# curl 8 changed its canonicalization (curl/curl#7600 and later); the verbatim behaviour was observed on 7.88.
SIGNS_VERBATIM = _curl_version() < (8, 0)


class RecordingServer:
    """A one-thread HTTP/1.1 server on loopback that keeps each raw request and answers 200."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                while length is not None and len(body) < int(length[1]):
                    body += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self._socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        self._socket.close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    yield recording
    recording.close()


def parse_raw_request(raw: bytes) -> RequestView:
    """What an ASGI server hands over: raw path and query bytes, lower-cased names, values without outer spaces."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *header_lines = head.split(b"\r\n")
    method, target, _ = request_line.split(b" ")
    raw_path, _, query = target.partition(b"?")
    headers = []
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    return RequestView(
        method=method.decode("ascii"), raw_path=raw_path, query_string=query, headers=tuple(headers), body=body
    )


def curl(server: RecordingServer, target: str, *args: str, user: str = f"{KEY_ID}:{SECRET}") -> RequestView:
    assert CURL is not None
    url = f"http://127.0.0.1:{server.port}{target}"
    command = [CURL, "-sS", "-o", "/dev/null", "--aws-sigv4", "aws:amz:us-east-1:svc", "--user", user, *args, url]
    subprocess.run(command, check=True, timeout=30)
    return parse_raw_request(server.requests[-1])


def verifier(*, verbatim_fallback: bool = False, s3_style_paths: bool = False) -> SigV4Verifier:
    return SigV4Verifier(
        service="svc",
        regions=["us-east-1"],
        lookup=DIRECTORY.get,
        verbatim_fallback=verbatim_fallback,
        s3_style_paths=s3_style_paths,
    )


def test_get_with_a_sorted_query_verifies_without_fallback(server: RecordingServer) -> None:
    view = curl(server, "/a/b?a=1&b=2")
    assert view.query_string == b"a=1&b=2"
    verified = verifier().verify(view, now=time.time())
    assert verified.access_key_id == KEY_ID
    assert verified.signed_headers == ("host", "x-amz-date")


def test_get_with_an_unsorted_query_needs_the_verbatim_fallback(server: RecordingServer) -> None:
    view = curl(server, "/a/b?z=1&a=2")
    assert view.query_string == b"z=1&a=2"
    if SIGNS_VERBATIM:
        with pytest.raises(SignatureDoesNotMatchError):
            verifier().verify(view, now=time.time())
    verifier(verbatim_fallback=True).verify(view, now=time.time())


def test_post_with_a_body_verifies_and_binds_the_body(server: RecordingServer) -> None:
    view = curl(server, "/items", "--data-binary", '{"name": "x"}', "-H", "Content-Type: application/json")
    assert view.body == b'{"name": "x"}'
    verified = verifier().verify(view, now=time.time())
    assert "content-type" in verified.signed_headers
    with pytest.raises(SignatureDoesNotMatchError):
        verifier(verbatim_fallback=True).verify(dataclasses.replace(view, body=b'{"name": "y"}'), now=time.time())


def test_form_post_verifies(server: RecordingServer) -> None:
    view = curl(server, "/form", "-d", "x=1&y=2")
    verifier().verify(view, now=time.time())


def test_a_path_with_an_encoded_space_needs_the_fallback_or_s3_rules(server: RecordingServer) -> None:
    view = curl(server, "/a/b%20c/d")
    assert view.raw_path == b"/a/b%20c/d"
    if SIGNS_VERBATIM:
        with pytest.raises(SignatureDoesNotMatchError):
            verifier().verify(view, now=time.time())
    verifier(verbatim_fallback=True).verify(view, now=time.time())
    verifier(s3_style_paths=True).verify(view, now=time.time())


def test_path_as_is_with_dot_segments_verifies_only_verbatim(server: RecordingServer) -> None:
    view = curl(server, "/a/../b//c", "--path-as-is")
    assert view.raw_path == b"/a/../b//c"
    if SIGNS_VERBATIM:
        with pytest.raises(SignatureDoesNotMatchError):
            verifier().verify(view, now=time.time())
    verifier(verbatim_fallback=True).verify(view, now=time.time())


def test_the_fallback_never_tries_a_verbatim_path_that_could_be_another_requests_canonical_path(
    server: RecordingServer,
) -> None:
    # "/a%2520b" verbatim equals the canonical (double-encoded) path of "/a%20b": a different resource.
    view = curl(server, "/a%2520b")
    with pytest.raises(SignatureDoesNotMatchError):
        verifier(verbatim_fallback=True).verify(view, now=time.time())


def test_temporary_key_with_its_token_header(server: RecordingServer) -> None:
    view = curl(server, "/t", "-H", f"X-Amz-Security-Token: {TOKEN}", user=f"{TEMP_KEY_ID}:{TEMP_SECRET}")
    verified = verifier().verify(view, now=time.time())
    assert "x-amz-security-token" in verified.signed_headers
    assert verified.credential.session_token is not None


def test_temporary_key_with_a_wrong_token_is_rejected(server: RecordingServer) -> None:
    view = curl(server, "/t", "-H", "X-Amz-Security-Token: forged", user=f"{TEMP_KEY_ID}:{TEMP_SECRET}")
    with pytest.raises(InvalidSecurityTokenError):
        verifier().verify(view, now=time.time())


def test_wrong_secret_is_rejected(server: RecordingServer) -> None:
    view = curl(server, "/a/b?z=1&a=2", user=f"{KEY_ID}:not-the-secret")
    with pytest.raises(SignatureDoesNotMatchError):
        verifier(verbatim_fallback=True).verify(view, now=time.time())


def test_custom_headers_are_signed_with_their_whitespace_collapsed(server: RecordingServer) -> None:
    view = curl(server, "/h", "-H", "X-Custom:   a   b  ", "-H", "X-Amz-Meta-Tag: t")
    verified = verifier().verify(view, now=time.time())
    assert verified.signed_headers == ("host", "x-amz-date", "x-amz-meta-tag", "x-custom")
