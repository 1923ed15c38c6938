"""JWKSSource: JWK binding rules, file and URL sources (a real loopback HTTP server), rotation and failure."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from iam_middleware._exceptions import ConfigurationError
from iam_middleware.authenticators._jwks import JWKSSource, JWTKey
from iam_middleware.authenticators._jwt import (
    AlgorithmNotAllowedError,
    JWTVerifier,
    MalformedTokenError,
    TokenSignatureError,
    TrustedIssuer,
    UnknownSigningKeyError,
)

ISS = "https://issuer.example"
AUD = "api://orders"
NOW = 1_700_000_000


def claims() -> dict[str, Any]:
    return {"iss": ISS, "aud": AUD, "sub": "user-1", "exp": NOW + 100_000, "iat": NOW}


@pytest.fixture(scope="module")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def rsa_jwk(private: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    return RSAAlgorithm.to_jwk(private.public_key(), as_dict=True) | {"kid": kid, "alg": "RS256", "use": "sig"} | extra


def rs_token(private: rsa.RSAPrivateKey, kid: str | None, alg: str = "RS256") -> str:
    return jwt.encode(claims(), private, algorithm=alg, headers={"kid": kid} if kid else None)


def verifier_for(source: JWKSSource, *, cache_size: int = 0) -> JWTVerifier:
    return JWTVerifier([TrustedIssuer(ISS, (AUD,), jwks=source)], cache_size=cache_size)


# --- a real loopback JWKS server -------------------------------------------------------------------------------------


@dataclass
class JWKSServer:
    url: str
    body: bytes = b'{"keys": []}'
    status: int = 200
    chunked: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)

    def serve(self, document: Any) -> None:
        self.body, self.status = json.dumps(document).encode(), 200

    @property
    def hits(self) -> int:
        return len(self.paths)


@contextlib.contextmanager
def jwks_server() -> Iterator[JWKSServer]:
    """A ThreadingHTTPServer on 127.0.0.1 serving ``state.body``; every request path is recorded."""
    state = JWKSServer(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.paths.append(self.path)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            for name, value in state.extra_headers.items():
                self.send_header(name, value)
            if state.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(state.body), 4096):
                    piece = state.body[start : start + 4096]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/.well-known/jwks.json"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server() -> Iterator[JWKSServer]:
    with jwks_server() as state:
        yield state


# --- JWK binding rules -----------------------------------------------------------------------------------------------


def test_a_dict_jwks_verifies_tokens_by_kid(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    source = JWKSSource.from_dict({"keys": [rsa_jwk(rsa_keys[0], "a"), rsa_jwk(rsa_keys[1], "b")]})
    verifier = verifier_for(source)
    assert verifier.verify(rs_token(rsa_keys[1], "b"), now=NOW).subject == "user-1"
    with pytest.raises(TokenSignatureError):
        verifier.verify(rs_token(rsa_keys[1], "a"), now=NOW)
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify(rs_token(rsa_keys[1], "c"), now=NOW)


def test_jwk_algorithm_comes_from_alg_or_kty_and_crv(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    ec_key, ed_key = ec.generate_private_key(ec.SECP384R1()), ed25519.Ed25519PrivateKey.generate()
    rsa_no_alg = rsa_jwk(rsa_keys[0], "r")
    del rsa_no_alg["alg"]
    ec_no_alg = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True) | {"kid": "e"}
    ed_no_alg = OKPAlgorithm.to_jwk(ed_key.public_key(), as_dict=True) | {"kid": "o"}
    ps = rsa_jwk(rsa_keys[1], "p", alg="PS256")
    source = JWKSSource.from_dict({"keys": [rsa_no_alg, ec_no_alg, ed_no_alg, ps]})
    assert {(key.kid, key.algorithms) for key in source.keys(now=NOW)} == {
        ("r", ("RS256",)),
        ("e", ("ES384",)),
        ("o", ("EdDSA",)),
        ("p", ("PS256",)),
    }
    verifier = verifier_for(source)
    assert verifier.verify(jwt.encode(claims(), ec_key, algorithm="ES384", headers={"kid": "e"}), now=NOW)
    assert verifier.verify(jwt.encode(claims(), ed_key, algorithm="EdDSA", headers={"kid": "o"}), now=NOW)
    with pytest.raises(AlgorithmNotAllowedError):  # bound to PS256 by its alg, so RS256 is refused
        verifier.verify(rs_token(rsa_keys[1], "p"), now=NOW)


def test_unusable_jwks_are_skipped(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private = RSAAlgorithm.to_jwk(rsa_keys[1], as_dict=True) | {"kid": "private", "alg": "RS256"}
    del private["key_ops"]
    skipped = [
        rsa_jwk(rsa_keys[1], "enc", use="enc"),
        rsa_jwk(rsa_keys[1], "ops", key_ops=["encrypt"]),
        rsa_jwk(rsa_keys[1], "mismatch", alg="ES256"),
        rsa_jwk(rsa_keys[1], "none", alg="none"),
        rsa_jwk(rsa_keys[1], "unknown", alg="RSA-OAEP"),
        rsa_jwk(small, "small"),
        private,
        {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "oct-no-alg"},
        {"kty": "oct", "k": "c2hvcnQ", "kid": "oct-short", "alg": "HS256"},
        {"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA", "kid": "bad-curve"},
        {"kty": "RSA", "kid": "no-material"},
        {"kty": "RSA", "kid": 7, "alg": "RS256"},
        "not-an-object",
    ]
    source = JWKSSource.from_dict({"keys": [*skipped, rsa_jwk(rsa_keys[0], "good")]})
    assert [key.kid for key in source.keys(now=NOW)] == ["good"]
    with pytest.raises(ConfigurationError, match="no usable signing keys"):
        JWKSSource.from_dict({"keys": skipped})


def test_a_symmetric_jwk_with_alg_is_usable() -> None:
    secret = b"k" * 32
    jwk = {"kty": "oct", "k": jwt.utils.base64url_encode(secret).decode(), "kid": "h", "alg": "HS256"}
    verifier = verifier_for(JWKSSource.from_dict({"keys": [jwk]}))
    assert verifier.verify(jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "h"}), now=NOW)


@pytest.mark.parametrize("document", [{}, {"keys": {}}, {"keys": "x"}, {"keys": [{"kty": "RSA"}] * 65}])
def test_a_dict_that_is_not_a_usable_jwk_set_is_a_configuration_error(document: Any) -> None:
    with pytest.raises(ConfigurationError):
        JWKSSource.from_dict(document)


# --- header attacks against a JWKS-backed verifier -------------------------------------------------------------------


def test_jku_pointing_at_a_live_server_is_rejected_without_fetching(
    server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.serve({"keys": [rsa_jwk(attacker, "evil")]})
    verifier = verifier_for(JWKSSource.from_dict({"keys": [rsa_jwk(rsa_keys[0], "a")]}))
    token = jwt.encode(claims(), attacker, algorithm="RS256", headers={"kid": "evil", "jku": server.url})
    with pytest.raises(MalformedTokenError):
        verifier.verify(token, now=NOW)
    assert server.hits == 0


def test_kid_is_never_used_as_a_url_or_path(server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    server.serve({"keys": [rsa_jwk(rsa_keys[0], "a")]})
    verifier = verifier_for(JWKSSource.from_url(server.url))
    for kid in (server.url, "../../../etc/passwd", "/.well-known/other"):
        with pytest.raises(UnknownSigningKeyError):
            verifier.verify(rs_token(rsa_keys[0], kid), now=NOW)
    assert set(server.paths) == {"/.well-known/jwks.json"}


# --- URL source: lazy load, rotation, rate limit, failures -----------------------------------------------------------


def test_url_source_loads_lazily_and_refreshes_on_unknown_kid_once_per_interval(
    server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    old, new = rsa_keys
    server.serve({"keys": [rsa_jwk(old, "old")]})
    verifier = verifier_for(JWKSSource.from_url(server.url, min_refresh_interval=60, max_age=3600))
    assert server.hits == 0
    assert verifier.verify(rs_token(old, "old"), now=NOW)
    assert server.hits == 1

    server.serve({"keys": [rsa_jwk(old, "old"), rsa_jwk(new, "new")]})
    with pytest.raises(UnknownSigningKeyError):  # unknown kid, but the last attempt was 0 s ago: no refetch
        verifier.verify(rs_token(new, "new"), now=NOW + 59)
    assert server.hits == 1
    assert verifier.verify(rs_token(new, "new"), now=NOW + 60)  # rotation picked up
    assert server.hits == 2
    for offset in range(61, 70):  # a flood of unknown kids costs at most one fetch per interval
        with pytest.raises(UnknownSigningKeyError):
            verifier.verify(rs_token(new, f"bogus-{offset}"), now=NOW + offset)
    assert server.hits == 2
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify(rs_token(new, "bogus"), now=NOW + 121)
    assert server.hits == 3


def test_url_source_refreshes_after_max_age(server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    server.serve({"keys": [rsa_jwk(rsa_keys[0], "a")]})
    verifier = verifier_for(JWKSSource.from_url(server.url, min_refresh_interval=10, max_age=300))
    verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW)
    verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW + 299)
    assert server.hits == 1
    verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW + 300)
    assert server.hits == 2


@pytest.mark.parametrize(
    "break_server",
    [
        lambda s: setattr(s, "status", 500),
        lambda s: setattr(s, "status", 404),
        lambda s: setattr(s, "body", b"<html>maintenance</html>"),
        lambda s: setattr(s, "body", b'{"keys": [], "keys": []}'),
        lambda s: setattr(s, "body", b'{"keys": []}'),
        lambda s: setattr(s, "body", b'{"keys": [], "n": NaN}'),
        lambda s: setattr(s, "body", b"x" * 300_000),
    ],
)
def test_a_failed_refresh_keeps_the_last_good_key_set(
    server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey], break_server: Any
) -> None:
    server.serve({"keys": [rsa_jwk(rsa_keys[0], "a")]})
    source = JWKSSource.from_url(server.url, min_refresh_interval=0, max_age=10)
    verifier = verifier_for(source)
    assert verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW)
    break_server(server)
    assert source.refresh(now=NOW + 20) is False
    assert verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW + 30)  # stale but last good
    assert server.hits == 3


def test_an_unreachable_server_keeps_the_last_good_key_set(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    with jwks_server() as live:
        live.serve({"keys": [rsa_jwk(rsa_keys[0], "a")]})
        source = JWKSSource.from_url(live.url, min_refresh_interval=0, max_age=10, timeout=2)
        verifier = verifier_for(source)
        assert verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW)
    # The server is gone now: connections are refused.
    assert source.refresh(now=NOW + 20) is False
    assert verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW + 30)


def test_without_any_good_key_set_every_token_is_rejected(
    server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    server.status = 503
    verifier = verifier_for(JWKSSource.from_url(server.url))
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW)
    with pytest.raises(AlgorithmNotAllowedError):  # no kid: no key at all can verify it
        verifier.verify(rs_token(rsa_keys[0], None), now=NOW)


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_jwks_response_is_refused(
    server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey], chunked: bool, caplog: pytest.LogCaptureFixture
) -> None:
    padding = "x" * 20_000
    server.serve({"keys": [rsa_jwk(rsa_keys[0], "a")], "padding": padding})
    server.chunked = chunked
    source = JWKSSource.from_url(server.url, max_bytes=16_384)
    with caplog.at_level(logging.WARNING, logger="iam_middleware.jwks"):
        assert source.refresh(now=NOW) is False
    assert "response larger than 16384 bytes" in caplog.text
    assert source.keys(now=NOW) == ()
    big_enough = JWKSSource.from_url(server.url, max_bytes=32_768)
    assert big_enough.refresh(now=NOW) is True


def test_redirects_are_not_followed(server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    server.status = 302
    server.extra_headers["Location"] = "http://127.0.0.1:9/elsewhere"
    assert JWKSSource.from_url(server.url).refresh(now=NOW) is False


def test_a_caller_supplied_client_is_used(server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    server.serve({"keys": [rsa_jwk(rsa_keys[0], "a")]})
    with httpx.Client(headers={"X-Probe": "1"}) as client:
        source = JWKSSource.from_url(server.url, client=client)
        assert verifier_for(source).verify(rs_token(rsa_keys[0], "a"), now=NOW)
    assert server.hits == 1


def test_a_refresh_that_removes_a_key_drops_cached_verifications(
    server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    old, new = rsa_keys
    server.serve({"keys": [rsa_jwk(old, "old")]})
    verifier = verifier_for(JWKSSource.from_url(server.url, min_refresh_interval=60), cache_size=100)
    token = rs_token(old, "old")
    first = verifier.verify(token, now=NOW)
    assert verifier.verify(token, now=NOW + 1) is first
    server.serve({"keys": [rsa_jwk(new, "new")]})  # "old" was revoked at the IdP
    assert verifier.verify(rs_token(new, "new"), now=NOW + 60)
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify(token, now=NOW + 61)


def test_adding_a_key_keeps_cached_verifications(server: JWKSServer, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    old, new = rsa_keys
    server.serve({"keys": [rsa_jwk(old, "old")]})
    verifier = verifier_for(JWKSSource.from_url(server.url, min_refresh_interval=60), cache_size=100)
    token = rs_token(old, "old")
    first = verifier.verify(token, now=NOW)
    server.serve({"keys": [rsa_jwk(old, "old"), rsa_jwk(new, "new")]})
    assert verifier.verify(rs_token(new, "new"), now=NOW + 60)
    assert verifier.verify(token, now=NOW + 61) is first


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://idp.example/jwks.json", {}),
        ("ftp://idp.example/jwks.json", {}),
        ("file:///etc/jwks.json", {"allow_http": True}),
    ],
)
def test_insecure_jwks_urls_are_refused(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JWKSSource.from_url(url, **options)


def test_https_and_explicitly_allowed_http_urls_are_accepted() -> None:
    assert repr(JWKSSource.from_url("https://user:pw@idp.example/jwks.json?x=secret")) == (
        "JWKSSource('https://idp.example/jwks.json', keys=0)"
    )
    JWKSSource.from_url("http://keycloak:8080/certs", allow_http=True)


@pytest.mark.parametrize(("interval", "age"), [(-1, 10), (60, 30)])
def test_refresh_schedule_must_be_consistent(interval: float, age: float) -> None:
    with pytest.raises(ConfigurationError):
        JWKSSource.from_url("https://idp.example/jwks.json", min_refresh_interval=interval, max_age=age)


# --- file source -----------------------------------------------------------------------------------------------------


def test_file_source_rereads_on_rotation_and_survives_a_broken_file(
    tmp_path: Path, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    old, new = rsa_keys
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk(old, "old")]}))
    verifier = verifier_for(JWKSSource.from_file(path, min_refresh_interval=30))
    assert verifier.verify(rs_token(old, "old"), now=NOW)
    path.write_text(json.dumps({"keys": [rsa_jwk(new, "new")]}))
    assert verifier.verify(rs_token(new, "new"), now=NOW + 30)
    path.write_text("{not json")
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify(rs_token(old, "gone"), now=NOW + 60)
    assert verifier.verify(rs_token(new, "new"), now=NOW + 61)
    path.unlink()
    with pytest.raises(UnknownSigningKeyError):
        verifier.verify(rs_token(old, "gone"), now=NOW + 120)
    assert verifier.verify(rs_token(new, "new"), now=NOW + 121)


def test_an_oversized_file_is_refused(tmp_path: Path, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk(rsa_keys[0], "a")], "pad": "x" * 5000}))
    assert JWKSSource.from_file(path, max_bytes=4096).refresh(now=NOW) is False
    assert JWKSSource.from_file(path, max_bytes=8192).refresh(now=NOW) is True


def test_a_static_source_never_refreshes(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    source = JWKSSource.from_dict({"keys": [rsa_jwk(rsa_keys[0], "a")]})
    assert source.refresh(now=NOW) is False
    assert [key.kid for key in source.keys(now=NOW + 10**9)] == ["a"]


def test_static_keys_and_jwks_combine_under_one_issuer(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    secret = b"s" * 32
    issuer = TrustedIssuer(
        ISS,
        (AUD,),
        keys=(JWTKey("static", ("HS256",), secret),),
        jwks=JWKSSource.from_dict({"keys": [rsa_jwk(rsa_keys[0], "a")]}),
    )
    verifier = JWTVerifier([issuer])
    assert verifier.verify(jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "static"}), now=NOW)
    assert verifier.verify(rs_token(rsa_keys[0], "a"), now=NOW)
