"""Password hashing: round trips, the stored format (PHC strings, the earlier form still read), which hashes need
making again, bounds, malformed hashes, and no secret in any output."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import BadRequestError, ConfigurationError
from iam_middleware.authenticators._passwords import (
    MAX_PASSWORD_LENGTH,
    InvalidPasswordError,
    PasswordCost,
    PasswordHash,
    hash_password,
    needs_rehash,
    verify_dummy,
    verify_password,
)

# Cheap cost for tests: the scheme is the same, only the work factor differs.
FAST = {"n": 2**4, "r": 8, "p": 1}
passwords = st.text(min_size=1, max_size=64)


def test_round_trip_and_wrong_password() -> None:
    encoded = hash_password("correct horse battery staple", **FAST)
    assert verify_password("correct horse battery staple", encoded)
    assert not verify_password("correct horse battery stapl", encoded)
    assert not verify_password("Correct horse battery staple", encoded)


def test_encoded_form_is_a_phc_string() -> None:
    encoded = hash_password("pw", n=2**5, r=4, p=2)
    match = re.fullmatch(r"\$scrypt\$ln=5,r=4,p=2\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})", encoded)
    assert match is not None
    assert len(base64.b64decode(match.group(1) + "==")) == 16
    assert len(base64.b64decode(match.group(2) + "=")) == 32
    parsed = PasswordHash.parse(encoded)
    assert parsed.cost == PasswordCost(n=2**5, r=4, p=2) and not parsed.legacy
    assert parsed.encode() == encoded


def test_a_phc_string_made_by_hand_verifies() -> None:
    # The format read independently of our encoder: ln is log2 N, salt and key are unpadded standard base64.
    salt = bytes(range(16))
    key = hashlib.scrypt(b"pw", salt=salt, n=2**6, r=2, p=3, dklen=32)
    salt_text, key_text = (base64.b64encode(data).decode().rstrip("=") for data in (salt, key))
    assert verify_password("pw", f"$scrypt$ln=6,r=2,p=3${salt_text}${key_text}")


def test_default_cost_is_owasps_first_scrypt_setting() -> None:
    # N=2**17 needs 128 MiB, four times hashlib's default maxmem: this also shows the bound is passed.
    assert PasswordCost() == PasswordCost(n=2**17, r=8, p=1)
    encoded = hash_password("pw")
    assert encoded.startswith("$scrypt$ln=17,r=8,p=1$")
    assert verify_password("pw", encoded) and not needs_rehash(encoded)


def legacy(password: str, *, n: int = 2**4, r: int = 8, p: int = 1) -> str:
    """A hash in the earlier ``scrypt$<log2 n>$<r>$<p>$<salt>$<key>`` form (padded base64)."""
    salt = bytes(range(16))
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n.bit_length() - 1}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def test_the_earlier_form_still_verifies_and_needs_rehash() -> None:
    old = legacy("pw")
    assert verify_password("pw", old) and not verify_password("px", old)
    parsed = PasswordHash.parse(old)
    assert parsed.legacy and parsed.cost == PasswordCost(**FAST)
    assert needs_rehash(old, cost=PasswordCost(**FAST))  # the form alone is reason enough
    # Its material in the PHC form is the same hash: it verifies and, at its own cost, needs nothing.
    phc = parsed.encode()
    assert phc.startswith("$scrypt$ln=4,r=8,p=1$") and verify_password("pw", phc)
    assert not needs_rehash(phc, cost=PasswordCost(**FAST))


@pytest.mark.parametrize(("stored", "target", "expected"), [
    ({"n": 2**4}, {"n": 2**4}, False),
    ({"n": 2**5}, {"n": 2**4}, False),  # stronger than asked: kept
    ({"n": 2**4}, {"n": 2**5}, True),
    ({"n": 2**4, "r": 4}, {"n": 2**4, "r": 8}, True),
    ({"n": 2**4, "p": 1}, {"n": 2**4, "p": 2}, True),
    ({"n": 2**4, "r": 16}, {"n": 2**4, "r": 8}, False),
])
def test_needs_rehash_when_weaker_than_the_target(stored: dict[str, int], target: dict[str, int],
                                                   expected: bool) -> None:
    encoded = hash_password("pw", **stored)
    assert needs_rehash(encoded, cost=PasswordCost(**target)) is expected
    assert needs_rehash(PasswordHash.parse(encoded), cost=PasswordCost(**target)) is expected


def test_needs_rehash_defaults_to_the_cost_of_new_hashes() -> None:
    assert needs_rehash(hash_password("pw", **FAST))
    with pytest.raises(ConfigurationError):
        needs_rehash("md5$abc")


def test_salt_is_random() -> None:
    assert hash_password("same", **FAST) != hash_password("same", **FAST)


def test_parsed_hash_verifies_like_the_string() -> None:
    encoded = hash_password("pw", **FAST)
    parsed = PasswordHash.parse(encoded)
    assert verify_password("pw", parsed)
    assert not verify_password("px", parsed)


@settings(deadline=None, max_examples=25)
@given(password=passwords, other=passwords)
def test_any_password_round_trips_and_others_fail(password: str, other: str) -> None:
    encoded = hash_password(password, **FAST)
    assert verify_password(password, encoded)
    same = unicodedata.normalize("NFKC", other) == unicodedata.normalize("NFKC", password)
    assert verify_password(other, encoded) is same


def test_unicode_forms_of_one_password_verify() -> None:
    # NIST SP 800-63B: normalise, so the same password typed on another keyboard or OS still works.
    encoded = hash_password("caf\u00e9", **FAST)
    assert verify_password("cafe\u0301", encoded)


@pytest.mark.parametrize("password", ["", "x" * (MAX_PASSWORD_LENGTH + 1)])
def test_unacceptable_new_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidPasswordError) as caught:
        hash_password(password, **FAST)
    assert isinstance(caught.value, BadRequestError)
    assert caught.value.status_code == 400
    assert str(MAX_PASSWORD_LENGTH) in str(caught.value)


def test_longest_password_is_accepted_and_longer_never_verifies() -> None:
    longest = "p" * MAX_PASSWORD_LENGTH
    encoded = hash_password(longest, **FAST)
    assert verify_password(longest, encoded)
    assert not verify_password(longest + "p", encoded)
    assert not verify_password("p" * 1_000_000, encoded)


@pytest.mark.parametrize("password", [None, b"pw", 123, ""])
def test_non_passwords_never_verify(password: object) -> None:
    encoded = hash_password("pw", **FAST)
    assert verify_password(password, encoded) is False  # type: ignore[arg-type]
    assert verify_dummy(password) is False  # type: ignore[arg-type]


def _valid_parts() -> list[str]:
    return hash_password("pw", **FAST).split("$")  # "", "scrypt", "ln=4,r=8,p=1", salt, key


SALT_22, KEY_43 = "A" * 22, "A" * 43


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext",
        "bcrypt$2b$12$abc",
        "scrypt$4$8$1$c2FsdA==",
        "scrypt$4$8$1$!!!!$!!!!",
        "SCRYPT$4$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$21$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",  # n above 2**20
        "scrypt$0$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$04$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$4$0$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$4$8$99$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$4$8$1$AAAA$" + "A" * 43 + "=",  # 3-byte salt
        "scrypt$4$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",  # 3-byte key
        "scrypt$4$8$1$AAAAAAAAAAAAAAAAAAAAAA=$" + "A" * 43 + "=",  # bad padding
        "scrypt$4$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=\n",
        " scrypt$4$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        f"$scrypt$ln=4,r=8,p=1${SALT_22}",
        f"$scrypt$ln=4,r=8,p=1${SALT_22}==${KEY_43}=",  # PHC base64 has no padding
        f"$scrypt$ln=4,r=8,p=1${SALT_22[:-1]}B${KEY_43}",  # stray bits in the last character: not canonical
        f"$scrypt$ln=4,r=8,p=1${SALT_22}${KEY_43[:-1]}B",
        f"$scrypt$ln=4,r=8,p=1$A${KEY_43}",  # not base64 at all
        f"$scrypt$r=8,ln=4,p=1${SALT_22}${KEY_43}",
        f"$scrypt$ln=04,r=8,p=1${SALT_22}${KEY_43}",
        f"$scrypt$ln=4,r=8${SALT_22}${KEY_43}",
        f"$scrypt$v=1$ln=4,r=8,p=1${SALT_22}${KEY_43}",
        f"$scrypt$ln=21,r=8,p=1${SALT_22}${KEY_43}",  # N above 2**20
        f"$scrypt$ln=20,r=8,p=1${SALT_22}${KEY_43}",  # 1 GiB: a tampered hash must not exhaust memory
        f"$scrypt$ln=4,r=8,p=1${SALT_22[:4]}${KEY_43}",  # 3-byte salt
        f"$scrypt$ln=4,r=8,p=1${SALT_22}${KEY_43}\n",
        f"$SCRYPT$ln=4,r=8,p=1${SALT_22}${KEY_43}",
        f"$argon2id$v=19$m=65536,t=3,p=4${SALT_22}${KEY_43}",
    ],
)
def test_malformed_hashes_are_configuration_errors(encoded: str) -> None:
    with pytest.raises(ConfigurationError):
        PasswordHash.parse(encoded)
    with pytest.raises(ConfigurationError):
        verify_password("pw", encoded)


def test_malformed_hash_error_does_not_echo_the_hash() -> None:
    parts = _valid_parts()
    parts[4] = parts[4][:8]  # truncated key, still valid base64
    truncated = "$".join(parts)
    with pytest.raises(ConfigurationError) as caught:
        PasswordHash.parse(truncated)
    assert parts[3] not in str(caught.value)
    assert parts[4] not in str(caught.value)


@pytest.mark.parametrize(
    "cost",
    [{"n": 3}, {"n": 1}, {"n": 2**21}, {"r": 0}, {"p": 0}, {"n": 2**20, "r": 32}, {"n": 16.0}, {"r": True}],
)
def test_invalid_costs_are_refused(cost: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        PasswordCost(**cost)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        hash_password("pw", **{**FAST, **cost})  # type: ignore[arg-type]


def test_dummy_check_never_matches() -> None:
    assert verify_dummy("anything", PasswordCost(**FAST)) is False
    assert verify_dummy("x" * (MAX_PASSWORD_LENGTH + 1)) is False


def test_hash_material_never_appears_in_repr() -> None:
    encoded = hash_password("hunter2hunter2", **FAST)
    parsed = PasswordHash.parse(encoded)
    _, _, _, salt, key = encoded.split("$")
    text = repr(parsed) + str(parsed)
    assert salt not in text and key not in text and "hunter2" not in text
    assert "********" in text
