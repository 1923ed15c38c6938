"""JWTVerifier: every JWT item of docs/security.md section 1 (J1-J16), with pyjwt-built and hand-built tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from hypothesis import assume, given
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from iam_middleware._exceptions import ConfigurationError, InvalidTokenError
from iam_middleware.authenticators._jwks import VERIFIERS, JWKSSource, JWTKey
from iam_middleware.authenticators._jwt import (
    AlgorithmNotAllowedError,
    AudienceNotAllowedError,
    JWTValidationError,
    JWTVerifier,
    MalformedTokenError,
    MissingClaimError,
    TokenExpiredError,
    TokenLifetimeError,
    TokenNotYetValidError,
    TokenSignatureError,
    TokenTypeNotAllowedError,
    TrustedIssuer,
    UnknownSigningKeyError,
    UntrustedIssuerError,
)

ISS = "https://issuer.example"
AUD = "api://orders"
NOW = 1_700_000_000
SECRET = b"0123456789abcdef0123456789abcdef"  # exactly 32 bytes: the HS256 minimum
DROP = object()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid payload at NOW; DROP removes a claim."""
    payload: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "user-1", "exp": NOW + 300, "iat": NOW, "jti": "t-1"}
    payload.update(overrides)
    return {name: value for name, value in payload.items() if value is not DROP}


def hs_token(payload: dict[str, Any] | None = None, *, secret: bytes = SECRET, **headers: Any) -> str:
    return jwt.encode(claims() if payload is None else payload, secret, algorithm="HS256", headers=headers or None)


def hand_token(header: str | bytes, payload: str | bytes, *, secret: bytes | None = SECRET, alg: str = "sha256") -> str:
    """A token assembled from raw JSON text; signed with HMAC over the exact segments unless secret is None."""
    raw_h = header.encode() if isinstance(header, str) else header
    raw_p = payload.encode() if isinstance(payload, str) else payload
    signing_input = f"{b64(raw_h)}.{b64(raw_p)}"
    sig = b"" if secret is None else hmac.new(secret, signing_input.encode(), alg).digest()
    return f"{signing_input}.{b64(sig)}"


def hs_verifier(*, cache_size: int = 10_000, **issuer_options: Any) -> JWTVerifier:
    issuer_options.setdefault("keys", (JWTKey(None, ("HS256",), SECRET),))
    issuer = TrustedIssuer(ISS, issuer_options.pop("audiences", (AUD,)), **issuer_options)
    return JWTVerifier([issuer], cache_size=cache_size)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def public_pem(private: Any) -> bytes:
    return bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def expect(error: type[JWTValidationError], verifier: JWTVerifier, token: str, *, now: float = NOW) -> str:
    with pytest.raises(error) as info:
        verifier.verify(token, now=now)
    return info.value.message


# --- happy paths ------------------------------------------------------------------------------------------------


def test_hs256_token_verifies_and_exposes_its_claims() -> None:
    verified = hs_verifier().verify(hs_token(), now=NOW)
    assert verified.issuer == ISS
    assert verified.subject == "user-1"
    assert verified.token_id == "t-1"
    assert verified.expires_at == NOW + 300
    assert verified.issued_at == NOW
    assert verified.claims["aud"] == AUD
    assert verified.header["alg"] == "HS256"


@pytest.mark.parametrize("alg", ["RS256", "RS512", "PS256"])
def test_rsa_tokens_verify_with_a_pem_public_key(rsa_key: rsa.RSAPrivateKey, alg: str) -> None:
    verifier = hs_verifier(keys=(JWTKey("r1", (alg,), public_pem(rsa_key)),))
    token = jwt.encode(claims(), rsa_key, algorithm=alg, headers={"kid": "r1"})
    assert verifier.verify(token, now=NOW).subject == "user-1"


def test_es256_token_verifies_with_a_key_object(ec_key: ec.EllipticCurvePrivateKey) -> None:
    verifier = hs_verifier(keys=(JWTKey(None, ("ES256",), ec_key.public_key()),))
    assert verifier.verify(jwt.encode(claims(), ec_key, algorithm="ES256"), now=NOW).issuer == ISS


@pytest.mark.parametrize("make", [ed25519.Ed25519PrivateKey.generate, ed448.Ed448PrivateKey.generate])
def test_eddsa_tokens_verify(make: Any) -> None:
    private = make()
    verifier = hs_verifier(keys=(JWTKey(None, ("EdDSA",), public_pem(private)),))
    assert verifier.verify(jwt.encode(claims(), private, algorithm="EdDSA"), now=NOW).subject == "user-1"


def test_a_token_without_kid_is_tried_against_each_key_of_its_family(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = hs_verifier(
        keys=(JWTKey("old", ("RS256",), public_pem(other)), JWTKey("new", ("RS256",), public_pem(rsa_key)))
    )
    assert verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256"), now=NOW).subject == "user-1"


def test_each_issuer_is_checked_with_its_own_keys() -> None:
    other_secret = b"z" * 32
    verifier = JWTVerifier(
        [
            TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),)),
            TrustedIssuer("https://other.example", (AUD,), keys=(JWTKey(None, ("HS256",), other_secret),)),
        ]
    )
    assert verifier.verify(hs_token(claims(iss="https://other.example"), secret=other_secret), now=NOW)
    # A token naming the second issuer but signed with the first issuer's key must fail.
    expect(TokenSignatureError, verifier, hs_token(claims(iss="https://other.example")))


# --- J1: alg none -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_is_rejected_in_any_case_and_with_any_signature(alg: str, signature: str) -> None:
    unsigned = hand_token(json.dumps({"alg": alg, "typ": "JWT"}), json.dumps(claims()), secret=None)
    token = unsigned + signature
    assert expect(AlgorithmNotAllowedError, hs_verifier(), token) == "algorithm not allowed"


def test_pyjwt_built_unsigned_token_is_rejected() -> None:
    token = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    expect(AlgorithmNotAllowedError, hs_verifier(), token)


def test_a_signed_token_with_its_signature_stripped_is_rejected() -> None:
    head, body, _ = hs_token().split(".")
    expect(TokenSignatureError, hs_verifier(), f"{head}.{body}.")


def test_none_cannot_be_configured() -> None:
    with pytest.raises(ConfigurationError):
        JWTKey(None, ("none",), SECRET)


# --- J2: algorithm allow-list per key ---------------------------------------------------------------------------


def test_alg_outside_the_keys_allow_list_is_rejected_even_with_the_right_secret() -> None:
    secret = b"k" * 64
    verifier = hs_verifier(keys=(JWTKey(None, ("HS256",), secret),))
    assert verifier.verify(hs_token(secret=secret), now=NOW)
    token = jwt.encode(claims(), secret, algorithm="HS512")
    assert expect(AlgorithmNotAllowedError, verifier, token) == "algorithm not allowed"


def test_rs256_key_does_not_accept_ps256_even_when_signed_by_the_owner(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = hs_verifier(keys=(JWTKey(None, ("RS256",), public_pem(rsa_key)),))
    expect(AlgorithmNotAllowedError, verifier, jwt.encode(claims(), rsa_key, algorithm="PS256"))


@pytest.mark.parametrize("alg", ["XYZ", "", "hs256", "HS256 "])
def test_unknown_alg_names_are_rejected(alg: str) -> None:
    expect(AlgorithmNotAllowedError, hs_verifier(), hand_token(json.dumps({"alg": alg}), json.dumps(claims())))


@pytest.mark.parametrize("alg", [None, 256, ["HS256"]])
def test_missing_or_non_string_alg_is_malformed(alg: Any) -> None:
    header = {} if alg is None else {"alg": alg}
    expect(MalformedTokenError, hs_verifier(), hand_token(json.dumps(header), json.dumps(claims())))


# --- J3: HS/RS (HS/ES/EdDSA) confusion ----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["rsa_key", "ec_key", "ed_key"])
@pytest.mark.parametrize("kid", [None, "k1"])
def test_hs256_token_keyed_with_the_public_pem_is_rejected(
    request: pytest.FixtureRequest, fixture: str, kid: str | None
) -> None:
    private = request.getfixturevalue(fixture)
    alg = {"rsa_key": "RS256", "ec_key": "ES256", "ed_key": "EdDSA"}[fixture]
    pem = public_pem(private)
    verifier = hs_verifier(keys=(JWTKey("k1", (alg,), pem),))
    header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    forged = hand_token(json.dumps(header), json.dumps(claims()), secret=pem)
    expect(AlgorithmNotAllowedError, verifier, forged)


def test_hs256_token_keyed_with_the_jwk_json_is_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {"kid": "r1", "alg": "RS256", "use": "sig"}
    verifier = hs_verifier(keys=(), jwks=JWKSSource.from_dict({"keys": [jwk]}))
    for secret in (json.dumps(jwk).encode(), json.dumps(jwk, sort_keys=True).encode()):
        forged = hand_token(json.dumps({"alg": "HS256", "kid": "r1"}), json.dumps(claims()), secret=secret)
        expect(AlgorithmNotAllowedError, verifier, forged)
    # The genuine RS256 token from the same JWKS verifies.
    assert verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "r1"}), now=NOW)


def test_with_an_hmac_key_configured_too_the_pem_forgery_still_fails(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = public_pem(rsa_key)
    verifier = hs_verifier(keys=(JWTKey(None, ("RS256",), pem), JWTKey(None, ("HS256",), SECRET)))
    forged = hand_token(json.dumps({"alg": "HS256"}), json.dumps(claims()), secret=pem)
    expect(TokenSignatureError, verifier, forged)


def test_public_key_material_cannot_be_configured_as_an_hmac_secret(rsa_key: rsa.RSAPrivateKey) -> None:
    jwk = RSAAlgorithm.to_jwk(rsa_key.public_key())
    for material in (public_pem(rsa_key), jwk.encode(), jwk):
        with pytest.raises(ConfigurationError, match="HMAC secret looks like"):
            JWTKey(None, ("HS256",), material)


def test_mixing_algorithm_families_on_one_key_is_a_configuration_error(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ConfigurationError, match="mix families"):
        JWTKey(None, ("RS256", "HS256"), public_pem(rsa_key))
    with pytest.raises(ConfigurationError, match="mix families"):
        JWTKey(None, ("RS256", "PS256"), public_pem(rsa_key))


# --- J4: kid ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["missing", "../../../../etc/passwd", "/dev/zero", "' OR '1'='1", "https://evil/k", ""])
def test_kid_naming_no_configured_key_is_rejected(kid: str) -> None:
    verifier = hs_verifier(keys=(JWTKey("k1", ("HS256",), SECRET),))
    assert expect(UnknownSigningKeyError, verifier, hs_token(kid=kid)) == "signing key not found"


def test_kid_selects_the_configured_key() -> None:
    other = b"o" * 32
    verifier = hs_verifier(keys=(JWTKey("k1", ("HS256",), SECRET), JWTKey("k2", ("HS256",), other)))
    assert verifier.verify(hs_token(secret=other, kid="k2"), now=NOW)
    expect(TokenSignatureError, verifier, hs_token(secret=other, kid="k1"))


@pytest.mark.parametrize("kid", [1, None, ["k1"], {"k": 1}, "k" * 257])
def test_non_string_or_long_kid_is_malformed(kid: Any) -> None:
    token = hand_token(json.dumps({"alg": "HS256", "kid": kid}), json.dumps(claims()))
    expect(MalformedTokenError, hs_verifier(), token)


# --- J5 / J6: key-carrying and critical headers -------------------------------------------------------------------


def test_embedded_jwk_signed_by_the_attacker_is_rejected() -> None:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    token = jwt.encode(claims(), attacker, algorithm="RS256", headers={"jwk": jwk})
    legit = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = hs_verifier(keys=(JWTKey(None, ("RS256",), public_pem(legit)),))
    assert "'jwk' is not accepted" in expect(MalformedTokenError, verifier, token)


@pytest.mark.parametrize(
    ("name", "value"),
    [("jku", "https://attacker.example/jwks.json"), ("x5u", "https://attacker.example/cert.pem"), ("x5c", ["MIIB"])],
)
def test_key_location_headers_are_rejected(name: str, value: Any) -> None:
    message = expect(MalformedTokenError, hs_verifier(), hs_token(**{name: value}))
    assert message == f"malformed token: header parameter '{name}' is not accepted"


@pytest.mark.parametrize("crit", [["exp"], [], "b64", ["kid"], ["b64"], [1]])
def test_any_crit_header_is_rejected(crit: Any) -> None:
    expect(MalformedTokenError, hs_verifier(), hs_token(crit=crit))


def test_unencoded_payload_option_is_rejected() -> None:
    expect(MalformedTokenError, hs_verifier(), hs_token(b64=False))


# --- J7: time claims ---------------------------------------------------------------------------------------------

LEEWAY = 60


@pytest.mark.parametrize(("exp", "ok"), [(NOW - LEEWAY + 1, True), (NOW - LEEWAY, False), (NOW - LEEWAY - 1, False)])
def test_exp_edges_of_the_leeway(exp: int, ok: bool) -> None:
    token = hs_token(claims(exp=exp, iat=exp - 100))
    if ok:
        assert hs_verifier(leeway=LEEWAY).verify(token, now=NOW).expires_at == exp
    else:
        assert expect(TokenExpiredError, hs_verifier(leeway=LEEWAY), token) == "token expired"


@pytest.mark.parametrize(("nbf", "ok"), [(NOW + LEEWAY - 1, True), (NOW + LEEWAY, True), (NOW + LEEWAY + 1, False)])
def test_nbf_edges_of_the_leeway(nbf: int, ok: bool) -> None:
    token = hs_token(claims(nbf=nbf, exp=NOW + 3600))
    if ok:
        assert hs_verifier(leeway=LEEWAY).verify(token, now=NOW)
    else:
        assert expect(TokenNotYetValidError, hs_verifier(leeway=LEEWAY), token) == "token not yet valid"


@pytest.mark.parametrize(("iat", "ok"), [(NOW + LEEWAY - 1, True), (NOW + LEEWAY + 1, False)])
def test_iat_edges_of_the_leeway(iat: int, ok: bool) -> None:
    token = hs_token(claims(iat=iat, exp=NOW + 3600))
    if ok:
        assert hs_verifier(leeway=LEEWAY).verify(token, now=NOW).issued_at == iat
    else:
        assert expect(TokenNotYetValidError, hs_verifier(leeway=LEEWAY), token) == "token issued in the future"


def test_zero_leeway_expires_exactly_at_exp() -> None:
    token = hs_token(claims(exp=NOW + 10))
    verifier = hs_verifier(leeway=0, cache_size=0)
    assert verifier.verify(token, now=NOW + 9.999)
    expect(TokenExpiredError, verifier, token, now=NOW + 10)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["9999999999", True, False, None, [NOW], {"t": NOW}])
def test_non_number_dates_are_malformed(name: str, value: Any) -> None:
    token = hs_token(claims(**{name: value}))
    assert expect(MalformedTokenError, hs_verifier(), token) == f"malformed token: '{name}' must be a JSON number"


def test_float_dates_are_numbers_and_accepted() -> None:
    assert hs_verifier().verify(hs_token(claims(exp=NOW + 300.5, iat=NOW + 0.25)), now=NOW).expires_at == NOW + 300.5


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "9" * 400])
def test_non_finite_or_huge_dates_are_rejected(literal: str) -> None:
    payload = json.dumps(claims(exp=0)).replace('"exp": 0', f'"exp": {literal}')
    expect(MalformedTokenError, hs_verifier(), hand_token('{"alg":"HS256"}', payload))


def test_max_lifetime_bounds_exp_minus_iat_and_requires_iat() -> None:
    verifier = hs_verifier(max_lifetime=3600)
    assert verifier.verify(hs_token(claims(iat=NOW, exp=NOW + 3600)), now=NOW)
    assert expect(TokenLifetimeError, verifier, hs_token(claims(iat=NOW, exp=NOW + 3601))).startswith("token lifetime")
    assert expect(MissingClaimError, verifier, hs_token(claims(iat=DROP))) == "missing required claim 'iat'"


# --- J8: required claims -----------------------------------------------------------------------------------------


def test_missing_exp_is_rejected_even_if_not_listed() -> None:
    assert expect(MissingClaimError, hs_verifier(required_claims=()), hs_token(claims(exp=DROP))) == (
        "missing required claim 'exp'"
    )


def test_configured_required_claims_are_enforced() -> None:
    verifier = hs_verifier(required_claims=("exp", "sub", "jti"))
    assert verifier.verify(hs_token(), now=NOW)
    expect(MissingClaimError, verifier, hs_token(claims(jti=DROP)))


# --- J9: audience ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aud", [AUD, [AUD], ["api://other", AUD]])
def test_audience_intersecting_the_configured_set_is_accepted(aud: Any) -> None:
    assert hs_verifier().verify(hs_token(claims(aud=aud)), now=NOW)


@pytest.mark.parametrize("aud", ["api://other", ["api://other"], [], "api://orders/", "API://ORDERS"])
def test_audience_not_matching_is_rejected(aud: Any) -> None:
    assert expect(AudienceNotAllowedError, hs_verifier(), hs_token(claims(aud=aud))) == "audience not allowed"


@pytest.mark.parametrize("aud", [1, [AUD, 1], {"aud": AUD}, None, True])
def test_audience_of_the_wrong_type_is_malformed(aud: Any) -> None:
    expect(MalformedTokenError, hs_verifier(), hs_token(claims(aud=aud)))


def test_missing_audience_is_rejected_when_audiences_are_configured() -> None:
    expect(MissingClaimError, hs_verifier(), hs_token(claims(aud=DROP)))


def test_token_with_audience_is_rejected_when_none_configured() -> None:
    verifier = hs_verifier(audiences=())
    assert verifier.verify(hs_token(claims(aud=DROP)), now=NOW)
    expect(AudienceNotAllowedError, verifier, hs_token())


# --- J10: issuer -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [
        "https://issuer.exampl",
        "https://issuer.example.evil",
        "https://issuer.example/",
        "HTTPS://issuer.example",
        " https://issuer.example",
        "https://issuer",
        "",
    ],
)
def test_issuer_must_match_exactly(iss: str) -> None:
    assert expect(UntrustedIssuerError, hs_verifier(), hs_token(claims(iss=iss))) == "issuer not trusted"


def test_missing_or_non_string_issuer_is_rejected() -> None:
    expect(MissingClaimError, hs_verifier(), hs_token(claims(iss=DROP)))
    token = hand_token('{"alg":"HS256"}', json.dumps(claims(iss=[ISS])))  # pyjwt refuses to build this one
    expect(MalformedTokenError, hs_verifier(), token)


# --- J11: token type ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "ok"),
    [
        ("at+jwt", True),
        ("AT+JWT", True),
        ("application/at+jwt", True),
        ("JWT", False),
        (None, False),
        ("", False),
        (1, False),
    ],
)
def test_token_type_allow_list(typ: Any, ok: bool) -> None:
    verifier = hs_verifier(token_types=("at+jwt",))
    header = {"alg": "HS256"} | ({} if typ is None else {"typ": typ})
    token = hand_token(json.dumps(header), json.dumps(claims()))
    if ok:
        assert verifier.verify(token, now=NOW)
    else:
        assert expect(TokenTypeNotAllowedError, verifier, token) == "token type not allowed"


# --- J12: weak keys ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "length"), [("HS256", 31), ("HS384", 47), ("HS512", 63)])
def test_hmac_secret_shorter_than_the_hash_is_refused(alg: str, length: int) -> None:
    JWTKey(None, (alg,), b"x" * (length + 1))
    with pytest.raises(ConfigurationError, match=f"{length + 1} bytes {alg} needs"):
        JWTKey(None, (alg,), b"x" * length)


def test_a_key_allowing_hs512_needs_a_64_byte_secret() -> None:
    with pytest.raises(ConfigurationError):
        JWTKey(None, ("HS256", "HS512"), b"x" * 32)


def test_rsa_keys_under_2048_bits_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigurationError, match="2048"):
        JWTKey(None, ("RS256",), public_pem(small))


def test_private_keys_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for material in (rsa_key, pem):
        with pytest.raises(ConfigurationError, match="private key"):
            JWTKey(None, ("RS256",), material)  # type: ignore[arg-type]


def test_es_key_must_match_the_curve_of_its_algorithm(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ConfigurationError):
        JWTKey(None, ("ES384",), ec_key.public_key())


# --- J13: size, segments, base64url, JSON shape ------------------------------------------------------------------


def test_oversized_tokens_are_refused_before_parsing() -> None:
    huge = hs_token(claims(pad="A" * (1024 * 1024)))
    assert expect(MalformedTokenError, hs_verifier(), huge) == "malformed token: token too large"
    assert expect(MalformedTokenError, hs_verifier(), "a" * (1024 * 1024)) == "malformed token: token too large"


@pytest.mark.parametrize("segments", [1, 2, 4, 5])
def test_only_three_segments_are_accepted(segments: int) -> None:
    parts = hs_token().split(".")
    token = ".".join((parts * 2)[:segments])
    assert expect(MalformedTokenError, hs_verifier(), token).endswith(f"got {segments}")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h, p, s: f"{h}=.{p}.{s}",  # padding
        lambda h, p, s: f"{h}.{p}==.{s}",
        lambda h, p, s: f"{h}.{p[:-1]}!.{s}",  # alphabet
        lambda h, p, s: f"{h}.{p}+/.{s}",  # standard (not url-safe) alphabet
        lambda h, p, s: f"{h}.{p}A.{s}",  # length 1 mod 4
        lambda h, p, s: f".{p}.{s}",  # empty header
        lambda h, p, s: f"{h}..{s}",  # empty payload
        lambda h, p, s: f"{h}.{p}.{s}\n",
        lambda h, p, s: f" {h}.{p}.{s}",
        lambda h, p, s: f"{h}.{p}.{s[:-1]}\u0410",  # non-ASCII
    ],
)
def test_broken_base64url_is_malformed(mangle: Any) -> None:
    token = mangle(*hs_token().split("."))
    expect(MalformedTokenError, hs_verifier(), token)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(segment=st.sampled_from([0, 1, 2]), bits=st.integers(1, 15), jti=st.text(max_size=6))
def test_non_canonical_base64_trailing_bits_are_malformed_in_every_segment(segment: int, bits: int,
                                                                            jti: str) -> None:
    token = hs_token(claims(jti=jti))
    assert hs_verifier().verify(token, now=NOW)
    parts = token.split(".")
    part = parts[segment]
    unused = {2: 0x0F, 3: 0x03}.get(len(part) % 4)
    assume(unused is not None and bits & unused)
    # The same bytes, spelled with other unused bits in the last character: one token, two spellings.
    parts[segment] = part[:-1] + _ALPHABET[_ALPHABET.index(part[-1]) ^ (bits & unused)]
    assert expect(MalformedTokenError, hs_verifier(), ".".join(parts)) == (
        "malformed token: segments must be canonical base64url")


@pytest.mark.parametrize("value", ["[]", '"text"', "1", "null", "true", "[{}]"])
@pytest.mark.parametrize("where", ["header", "payload"])
def test_non_object_header_or_payload_is_malformed(value: str, where: str) -> None:
    header, payload = ('{"alg":"HS256"}', json.dumps(claims()))
    token = hand_token(value, payload) if where == "header" else hand_token(header, value)
    assert expect(MalformedTokenError, hs_verifier(), token) == f"malformed token: {where} is not a JSON object"


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe{}", b'{"alg":"HS256"', b"{'alg':'HS256'}", "{}".encode("utf-16"), b"", b'{"alg":"HS256"}x', b"{} {}"],
)
def test_non_utf8_or_invalid_json_header_is_malformed(raw: bytes) -> None:
    expect(MalformedTokenError, hs_verifier(), hand_token(raw, json.dumps(claims())))


def test_deeply_nested_json_is_rejected_without_crashing() -> None:
    payload = json.dumps(claims())[:-1] + ', "deep": ' + "[" * 3000 + "]" * 3000 + "}"
    expect(
        MalformedTokenError,
        JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),))], max_token_bytes=16384),
        hand_token('{"alg":"HS256"}', payload),
    )


# --- J14: duplicate member names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        ('{"alg":"HS256","alg":"none"}', None),
        ('{"alg":"HS256","kid":"a","kid":"b"}', None),
        (None, '{"iss":"https://evil.example","iss":"https://issuer.example","aud":"api://orders","exp":1700000300}'),
        (None, '{"iss":"https://issuer.example","aud":"api://orders","exp":1700000300,"sub":"a","sub":"admin"}'),
        (None, '{"iss":"https://issuer.example","aud":"api://orders","exp":1700000300,"x":{"r":1,"r":2}}'),
        (None, '{"iss":"https://issuer.example","aud":"api://orders","exp":1700000300,"x":[{"r":1,"r":2}]}'),
    ],
)
def test_duplicate_member_names_are_rejected(header: str | None, payload: str | None) -> None:
    token = hand_token(header or '{"alg":"HS256"}', payload or json.dumps(claims()))
    assert "duplicate member name" in expect(MalformedTokenError, hs_verifier(), token)


# --- J15: subject and token id ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sub", "jti"])
@pytest.mark.parametrize("value", [123, None, ["user-1"], {"id": 1}, True])
def test_non_string_sub_and_jti_are_malformed(name: str, value: Any) -> None:
    expect(MalformedTokenError, hs_verifier(), hs_token(claims(**{name: value})))


def test_lone_surrogate_in_sub_is_malformed() -> None:
    payload = json.dumps(claims(sub="PLACEHOLDER")).replace("PLACEHOLDER", "\\ud800")
    expect(MalformedTokenError, hs_verifier(), hand_token('{"alg":"HS256"}', payload))


def test_non_ascii_subject_round_trips() -> None:
    assert hs_verifier().verify(hs_token(claims(sub="użytkownik-é")), now=NOW).subject == "użytkownik-é"


# --- J16: the signature covers the bytes as received -------------------------------------------------------------


def test_signature_binds_the_received_bytes_not_the_claims() -> None:
    spaced = json.dumps(claims(), indent=1)
    token = hand_token('{ "alg" : "HS256" }', spaced)
    assert hs_verifier().verify(token, now=NOW).claims == claims()
    # Same claims re-serialized compactly, original signature kept: must not verify.
    head, _, sig = token.split(".")
    compact = b64(json.dumps(claims(), separators=(",", ":")).encode())
    expect(TokenSignatureError, hs_verifier(), f"{head}.{compact}.{sig}")


def test_signature_from_another_token_does_not_transfer() -> None:
    a, b = hs_token(claims(sub="alice")), hs_token(claims(sub="admin"), secret=b"q" * 32)
    expect(TokenSignatureError, hs_verifier(), ".".join(b.split(".")[:2] + a.split(".")[2:]))


# --- errors: status, headers, no leaks, fail closed ---------------------------------------------------------------

_RFC6750_DESCRIPTION = re.compile(r'Bearer error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]*"')


@pytest.mark.parametrize(
    "token",
    [
        "x" * 9000,
        "Zm9vYmFy.YmF6cXV4",
        hs_token(claims(exp=NOW - 1000)),
        hs_token(claims(iss="https://evil.example")),
        hs_token(claims(aud="nope")),
        hs_token(secret=b"w" * 32),
        hs_token(kid="nope-" + SECRET.decode()),
        hs_token(claims(sub=SECRET.decode(), exp="soon")),
    ],
)
def test_every_rejection_is_a_401_with_an_rfc6750_challenge_and_no_secret(token: str) -> None:
    verifier = JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(JWTKey("k", ("HS256",), SECRET),))])
    with pytest.raises(InvalidTokenError) as info:
        verifier.verify(token, now=NOW)
    error = info.value
    assert error.status_code == 401
    assert _RFC6750_DESCRIPTION.fullmatch(error.headers["WWW-Authenticate"])
    rendered = f"{error} {error!r} {error.headers}"
    assert SECRET.decode() not in rendered
    assert token not in rendered and token.split(".")[0] not in rendered


@pytest.mark.parametrize("token", [None, b"a.b.c", 12, ["a", "b", "c"]])
def test_non_string_tokens_fail_closed(token: Any) -> None:
    with pytest.raises(JWTValidationError):
        hs_verifier().verify(token, now=NOW)


def test_an_unexpected_internal_failure_ends_as_invalid_token() -> None:
    with pytest.raises(JWTValidationError) as info:
        hs_verifier().verify(hs_token(), now="not-a-time")  # type: ignore[arg-type]
    assert info.value.message == "token could not be verified"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_nan_clock_rejects_instead_of_accepting() -> None:
    expect(TokenExpiredError, hs_verifier(cache_size=0), hs_token(), now=float("nan"))


# --- claims are read-only ----------------------------------------------------------------------------------------


def test_claims_and_header_are_read_only_all_the_way_down() -> None:
    token = hs_token(claims(groups=["a", ["b"]], realm={"roles": ["x"]}))
    verified = hs_verifier().verify(token, now=NOW)
    with pytest.raises(TypeError):
        verified.claims["sub"] = "admin"  # type: ignore[index]
    with pytest.raises(TypeError):
        verified.header["alg"] = "none"  # type: ignore[index]
    assert verified.claims["groups"] == ("a", ("b",))
    with pytest.raises(TypeError):
        verified.claims["realm"]["roles"] = ()
    assert verified.claims["realm"]["roles"] == ("x",)


# --- cache -------------------------------------------------------------------------------------------------------


def test_a_repeat_verification_is_served_from_the_cache() -> None:
    verifier, token = hs_verifier(), hs_token()
    assert verifier.verify(token, now=NOW) is verifier.verify(token, now=NOW + 1)


def test_the_cache_never_serves_at_or_past_exp() -> None:
    verifier, token = hs_verifier(leeway=0), hs_token(claims(exp=NOW + 10))
    first = verifier.verify(token, now=NOW)
    assert verifier.verify(token, now=NOW + 9.5) is first
    expect(TokenExpiredError, verifier, token, now=NOW + 10)
    expect(TokenExpiredError, verifier, token, now=NOW + 10_000)


def test_the_cache_never_serves_before_the_token_is_valid() -> None:
    verifier, token = hs_verifier(leeway=0), hs_token(claims(nbf=NOW, exp=NOW + 100))
    verifier.verify(token, now=NOW + 1)
    expect(TokenNotYetValidError, verifier, token, now=NOW - 1)


def test_invalidate_drops_every_cached_verification() -> None:
    verifier, token = hs_verifier(), hs_token()
    first = verifier.verify(token, now=NOW)
    verifier.invalidate()
    second = verifier.verify(token, now=NOW)
    assert second is not first and second == first


def test_cache_size_zero_disables_caching_and_the_cache_is_bounded() -> None:
    off, token = hs_verifier(cache_size=0), hs_token()
    assert off.verify(token, now=NOW) is not off.verify(token, now=NOW)
    bounded = JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),))], cache_size=2)
    tokens = [hs_token(claims(jti=f"t-{n}")) for n in range(3)]
    results = [bounded.verify(t, now=NOW) for t in tokens]
    assert bounded.verify(tokens[2], now=NOW) is results[2]
    assert bounded.verify(tokens[0], now=NOW) is not results[0]  # the oldest entry was evicted


def test_a_cached_token_is_still_rejected_for_a_different_verifier() -> None:
    token = hs_token()
    hs_verifier().verify(token, now=NOW)
    strict = hs_verifier(audiences=("api://other",))
    expect(AudienceNotAllowedError, strict, token)


# --- configuration -----------------------------------------------------------------------------------------------


def test_reprs_mask_the_secret() -> None:
    key = JWTKey("k1", ("HS256",), SECRET)
    text = repr(key) + repr(key._verify_key) + repr(JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(key,))]))
    assert SECRET.decode() not in text and "k1" in text and "HS256" in text


def test_whitespace_around_json_is_allowed() -> None:
    assert hs_verifier().verify(hand_token(' {"alg":"HS256"}\n', "\t" + json.dumps(claims()) + " "), now=NOW)


@pytest.mark.parametrize(
    "build",
    [
        lambda: JWTKey(None, "HS256", SECRET),  # type: ignore[arg-type]
        lambda: JWTKey(None, (), SECRET),
        lambda: JWTKey("", ("HS256",), SECRET),
        lambda: JWTKey(None, ("HS256",), 12345),  # type: ignore[arg-type]
        lambda: TrustedIssuer(ISS, AUD, keys=(JWTKey(None, ("HS256",), SECRET),)),  # type: ignore[arg-type]
        lambda: TrustedIssuer(ISS, (AUD,)),
        lambda: TrustedIssuer(ISS, ("",), keys=(JWTKey(None, ("HS256",), SECRET),)),
        lambda: TrustedIssuer(ISS, (AUD,), keys=(SECRET,)),  # type: ignore[arg-type]
        lambda: TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),), required_claims=("",)),
        lambda: JWTVerifier([object()]),  # type: ignore[list-item]
        lambda: TrustedIssuer("", (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),)),
        lambda: TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),), leeway=301),
        lambda: TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),), leeway=-1),
        lambda: TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),), max_lifetime=0),
        lambda: TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),), token_types=()),
        lambda: JWTVerifier([]),
        lambda: JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),))] * 2),
        lambda: JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),))], cache_size=-1),
        lambda: JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("HS256",), SECRET),))], max_token_bytes=10),
    ],
)
def test_invalid_configuration_is_refused_at_startup(build: Any) -> None:
    with pytest.raises(ConfigurationError):
        build()


def test_one_hmac_key_can_allow_several_hash_sizes() -> None:
    secret = b"s" * 64
    verifier = hs_verifier(keys=(JWTKey(None, ("HS384", "HS512"), secret),))
    for alg, digest in (("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
        token = hand_token(json.dumps({"alg": alg}), json.dumps(claims()), secret=secret, alg=digest().name)
        assert verifier.verify(token, now=NOW).header["alg"] == alg


def test_the_signature_check_knows_no_none_and_keeps_each_key_to_its_family(rsa_key: rsa.RSAPrivateKey) -> None:
    assert "none" not in VERIFIERS and {alg.lower() for alg in VERIFIERS} >= {"hs256", "rs256", "es256", "eddsa"}
    pem = public_pem(rsa_key)
    # HS/RS confusion: the public key used as an HMAC secret never verifies, whatever the header says.
    verifier = JWTVerifier([TrustedIssuer(ISS, (AUD,), keys=(JWTKey(None, ("RS256",), pem),))])
    forged = hand_token(json.dumps({"alg": "HS256"}), json.dumps(claims()), secret=pem)
    expect(AlgorithmNotAllowedError, verifier, forged)
    expect(AlgorithmNotAllowedError, verifier, jwt.encode(claims(), None, algorithm="none"))  # type: ignore[arg-type]


def test_concurrent_verification_with_a_tiny_cache_is_safe() -> None:
    verifier = hs_verifier(cache_size=8)
    tokens = [hs_token(claims(jti=f"t-{n}")) for n in range(64)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for round_ in range(5):
                for n in range(64):
                    token = tokens[(n + offset + round_) % 64]
                    assert verifier.verify(token, now=NOW).token_id == f"t-{(n + offset + round_) % 64}"
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
