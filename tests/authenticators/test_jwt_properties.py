"""Property tests for JWTVerifier: tampering, the validity window, and arbitrary input never escaping as a crash."""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any

import jwt
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iam_middleware.authenticators._jwks import JWTKey
from iam_middleware.authenticators._jwt import (
    JWTValidationError,
    JWTVerifier,
    TokenExpiredError,
    TokenNotYetValidError,
    TrustedIssuer,
)

ISS = "https://issuer.example"
AUD = "api://orders"
NOW = 1_700_000_000
SECRET = b"0123456789abcdef0123456789abcdef"
LEEWAY = 60

VERIFIER = JWTVerifier(
    [TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),), leeway=LEEWAY)], cache_size=0
)
CLAIMS = {"iss": ISS, "aud": AUD, "sub": "user-1", "exp": NOW + 300, "iat": NOW, "roles": ["reader", "writer"]}
TOKEN = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
EXPECTED = VERIFIER.verify(TOKEN, now=NOW)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@settings(deadline=None, max_examples=300)
@given(index=st.integers(0, len(TOKEN) - 1), mask=st.integers(1, 255))
def test_flipping_any_byte_never_verifies_to_different_claims(index: int, mask: int) -> None:
    tampered = TOKEN[:index] + chr(ord(TOKEN[index]) ^ mask) + TOKEN[index + 1 :]
    try:
        verified = VERIFIER.verify(tampered, now=NOW)
    except JWTValidationError:
        return
    # Only a change that decodes to the same bytes could get here; the claims must then be identical.
    assert verified.claims == EXPECTED.claims and verified.header == EXPECTED.header


@settings(deadline=None, max_examples=200)
@given(
    exp_offset=st.integers(-1000, 1000),
    nbf_offset=st.none() | st.integers(-1000, 1000),
    iat_offset=st.none() | st.integers(-1000, 1000),
)
def test_the_validity_window_is_exactly_exp_nbf_iat_with_leeway(
    exp_offset: int, nbf_offset: int | None, iat_offset: int | None
) -> None:
    payload: dict[str, Any] = {"iss": ISS, "aud": AUD, "exp": NOW + exp_offset}
    if nbf_offset is not None:
        payload["nbf"] = NOW + nbf_offset
    if iat_offset is not None:
        payload["iat"] = NOW + iat_offset
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    expired = not NOW < NOW + exp_offset + LEEWAY
    early = any(offset is not None and offset > LEEWAY for offset in (nbf_offset, iat_offset))
    try:
        VERIFIER.verify(token, now=NOW)
    except TokenExpiredError:
        assert expired
    except TokenNotYetValidError:
        assert early and not expired
    else:
        assert not expired and not early


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(header_extra=st.dictionaries(st.text(max_size=8), json_values, max_size=4), payload=json_values)
def test_validly_signed_arbitrary_json_is_verified_or_rejected_never_crashes(
    header_extra: dict[str, Any], payload: Any
) -> None:
    header = {**header_extra, "alg": "HS256"}
    if isinstance(payload, dict):
        payload = {**payload, "iss": ISS, "aud": AUD, "exp": NOW + 300}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    token = f"{signing_input}.{b64(hmac.digest(SECRET, signing_input.encode(), 'sha256'))}"
    try:
        verified = VERIFIER.verify(token, now=NOW)
    except JWTValidationError:
        return
    assert isinstance(payload, dict)
    assert verified.claims["iss"] == ISS and verified.expires_at == NOW + 300


@settings(deadline=None, max_examples=300)
@given(junk=st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_\-]{0,60}(\.[A-Za-z0-9_\-=+/]{0,60}){0,5}"))
def test_arbitrary_strings_are_rejected_with_a_validation_error(junk: str) -> None:
    assume(junk != TOKEN)
    try:
        VERIFIER.verify(junk, now=NOW)
    except JWTValidationError as error:
        assert error.status_code == 401 and "WWW-Authenticate" in error.headers
    else:
        raise AssertionError("an unsigned string verified")
