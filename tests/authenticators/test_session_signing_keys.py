"""Session tokens signed with an asymmetric key (EdDSA, ES256): kid is the RFC 7638 thumbprint, the first key signs
and every key verifies (rotation), only public members are published, the private key never shows in a repr or an
error, and no HS256 token verifies once signing keys are set (not even one keyed with the published public key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from iam_middleware import ConfigurationError
from iam_middleware._settings import Settings
from iam_middleware.authenticators._sessions import SESSION_TYP, SessionSignatureError, SessionTokens
from iam_middleware.authenticators._signing import SessionSigningKey, thumbprint
from iam_middleware.state import MemoryStore

NOW = float(int(time.time()))
ARN = "arn:app:iam::111122223333:user/alice"


def pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: SessionSigningKey) -> bytes:
    public = key.verify_key.key
    assert isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def tokens(*keys: SessionSigningKey) -> SessionTokens:
    return SessionTokens(b"s" * 32, store=MemoryStore(), issuer="https://sts.example", signing_keys=keys)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_kid_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 public key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    private = ed25519.Ed25519PrivateKey.from_private_bytes(
        base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="))
    assert SessionSigningKey(private).kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize(("private", "alg"), [(ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
                                              (ec.generate_private_key(ec.SECP256R1()), "ES256")])
def test_a_signed_session_verifies_and_carries_alg_and_kid(private: object, alg: str) -> None:
    key = SessionSigningKey.from_pem(pem(private))  # type: ignore[arg-type]
    sessions = tokens(key)
    issued = sessions.issue(ARN, now=NOW, mfa_time=NOW)
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": alg, "typ": SESSION_TYP, "kid": key.kid}
    assert sessions.verify(issued.token, now=NOW + 1).principal_arn == ARN
    # Anyone with the published key alone verifies it.
    published = jwt.PyJWK(dict(sessions.jwks()["keys"][0]))
    assert jwt.decode(issued.token, published.key, algorithms=[alg])["sub"] == ARN


def test_the_first_key_signs_and_every_key_verifies() -> None:
    old, new = (SessionSigningKey(ed25519.Ed25519PrivateKey.generate()) for _ in range(2))
    before = tokens(old).issue(ARN, now=NOW, mfa_time=NOW).token
    rotated = tokens(new, old)
    rotated._store = tokens(old)._store  # the same records: only the keys changed
    issued = rotated.issue(ARN, now=NOW, mfa_time=NOW)
    assert jwt.get_unverified_header(issued.token)["kid"] == new.kid
    assert rotated.verify(issued.token, now=NOW).principal_arn == ARN
    assert [k["kid"] for k in rotated.jwks()["keys"]] == [new.kid, old.kid]
    with pytest.raises(SessionSignatureError):
        tokens(new).verify(before, now=NOW)  # the old key removed: its tokens no longer verify


def test_only_public_members_are_published() -> None:
    key = SessionSigningKey(ec.generate_private_key(ec.SECP256R1()))
    (jwk,) = tokens(key).jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert jwk["use"] == "sig" and jwk["alg"] == "ES256"
    assert tokens().jwks() == {"keys": []}  # HS256: nothing to publish, never the secret


@pytest.mark.parametrize("with_kid", [True, False])
def test_an_hs256_token_keyed_with_the_public_key_is_refused(with_kid: bool) -> None:
    key = SessionSigningKey(ed25519.Ed25519PrivateKey.generate())
    sessions = tokens(key)
    good = sessions.issue(ARN, now=NOW, mfa_time=NOW).token
    claims = jwt.decode(good, options={"verify_signature": False})
    header = {"alg": "HS256", "typ": SESSION_TYP, **({"kid": key.kid} if with_kid else {})}
    for secret in (public_pem(key), json.dumps(dict(key.public_jwk)).encode(), b"s" * 32):
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(SessionSignatureError):
            sessions.verify(f"{signing_input}.{b64(mac)}", now=NOW)


def test_no_private_material_in_reprs_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    text = pem(private)
    monkeypatch.setenv("SESSION_KEY", text)
    settings = Settings.from_mapping({"session_signing_keys": ["env:SESSION_KEY"], "session_issuer": "https://a"})
    (key,) = settings.session_signing_keys
    body = text.splitlines()[1]
    for shown in (repr(key), repr(settings), repr(tokens(key)), repr(key.verify_key), json.dumps(tokens(key).jwks())):
        assert body not in shown and "PRIVATE" not in shown
    assert key.kid in repr(settings)
    broken = text.replace(body, body[:10] + "A" + body[11:])
    monkeypatch.setenv("SESSION_KEY", broken)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_mapping({"session_signing_keys": ["env:SESSION_KEY"]})
    assert body[:20] not in str(caught.value) and "session_signing_keys[0]" in str(caught.value)


@pytest.mark.parametrize(("value", "message"), [
    ("not a key", "not an unencrypted PEM private key"),
    (pem(rsa.generate_private_key(65537, 2048)), r"Ed25519 \(EdDSA\) or P-256 \(ES256\)"),
    (pem(ec.generate_private_key(ec.SECP384R1())), r"Ed25519 \(EdDSA\) or P-256 \(ES256\)"),
    ("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", "a public key"),
])
def test_unusable_keys_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_mapping({"session_signing_keys": [value]})


def test_the_same_key_twice_and_a_provider_named_as_our_own_issuer_are_refused() -> None:
    text = pem(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ConfigurationError, match="the same key as an earlier entry"):
        Settings.from_mapping({"session_signing_keys": [text, text]})
    with pytest.raises(ConfigurationError, match="own session_issuer"):
        Settings.from_mapping({"session_issuer": "https://sts.example", "web_identity": [
            {"issuer": "https://sts.example", "role": "r", "jwks_url": "https://sts.example/jwks.json"}]})
    assert Settings.from_mapping({}).session_issuer == "iam-middleware"
