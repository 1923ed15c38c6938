"""Password hashing with stdlib scrypt: self-describing hashes, constant-time checks, a dummy check for unknown users.

The encoded form is ``scrypt$<log2 n>$<r>$<p>$<base64 salt>$<base64 key>``, so the cost can be raised later
without breaking stored hashes. Passwords are NFKC-normalised (NIST SP 800-63B) after a length bound, so the
normalisation itself cannot be used for denial of service.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

from .._exceptions import BadRequestError, ConfigurationError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "InvalidPasswordError",
    "PasswordCost",
    "PasswordHash",
    "hash_password",
    "verify_dummy",
    "verify_password",
]

#: Longest password accepted, in code points; longer ones never verify (bounds hashing and normalisation work).
MAX_PASSWORD_LENGTH = 1024

_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_LOG2_N = 20
_MAX_R = 32
_MAX_P = 16
# 256 MiB: far above any sane cost, low enough that a tampered hash row cannot exhaust memory.
_MAX_MEMORY = 256 * 1024 * 1024
_B64 = r"[A-Za-z0-9+/]+={0,2}"
_ENCODED = re.compile(rf"scrypt\$([1-9][0-9]?)\$([1-9][0-9]?)\$([1-9][0-9]?)\$({_B64})\$({_B64})")


class InvalidPasswordError(BadRequestError):
    """A new password cannot be hashed: it is empty or longer than ``MAX_PASSWORD_LENGTH``."""

    code = "InvalidPassword"


@dataclass(frozen=True, slots=True)
class PasswordCost:
    """scrypt cost parameters. ``n`` must be a power of two; lower it only in tests."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        for name in ("n", "r", "p"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"scrypt {name} must be an int, got {type(value).__name__}")
        if self.n < 2 or self.n & (self.n - 1) or self.n > 2**_MAX_LOG2_N:
            raise ConfigurationError(f"scrypt n must be a power of two between 2 and 2**{_MAX_LOG2_N}, got {self.n}")
        if not 1 <= self.r <= _MAX_R or not 1 <= self.p <= _MAX_P:
            raise ConfigurationError(f"scrypt r must be in 1..{_MAX_R} and p in 1..{_MAX_P}, got r={self.r} p={self.p}")
        if 128 * self.r * self.n > _MAX_MEMORY:
            raise ConfigurationError(f"scrypt n={self.n} r={self.r} needs more than {_MAX_MEMORY >> 20} MiB")

    def derive(self, password: bytes, salt: bytes) -> bytes:
        """The scrypt key of ``password`` under ``salt`` at this cost."""
        # hashlib's default maxmem (32 MiB) is just below what n=2**15, r=8 needs.
        maxmem = 128 * self.r * (self.n + self.p + 2) + (1 << 20)
        return hashlib.scrypt(password, salt=salt, n=self.n, r=self.r, p=self.p, maxmem=maxmem, dklen=_KEY_BYTES)


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PasswordHash:
    """A parsed, validated password hash. Build it with ``PasswordHash.parse`` when loading users."""

    cost: PasswordCost
    salt: bytes
    key: bytes

    @classmethod
    def parse(cls, encoded: str) -> PasswordHash:
        """Parse an encoded hash; ``ConfigurationError`` (naming no hash material) if it is malformed."""
        match = _ENCODED.fullmatch(encoded) if isinstance(encoded, str) else None
        if match is None:
            raise ConfigurationError("malformed password hash: expected 'scrypt$<log2 n>$<r>$<p>$<salt>$<key>'")
        log2_n, r, p, salt_b64, key_b64 = match.groups()
        if int(log2_n) > _MAX_LOG2_N:
            raise ConfigurationError(f"malformed password hash: log2 n must be at most {_MAX_LOG2_N}")
        cost = PasswordCost(n=2 ** int(log2_n), r=int(r), p=int(p))
        try:
            salt = base64.b64decode(salt_b64, validate=True)
            key = base64.b64decode(key_b64, validate=True)
        except binascii.Error:
            raise ConfigurationError("malformed password hash: salt or key is not valid base64") from None
        if len(salt) < _SALT_BYTES or len(key) != _KEY_BYTES:
            raise ConfigurationError(
                f"malformed password hash: need a salt of at least {_SALT_BYTES} bytes and a {_KEY_BYTES}-byte key"
            )
        return cls(cost=cost, salt=salt, key=key)

    def encode(self) -> str:
        """The self-describing string form, as stored."""
        salt = base64.b64encode(self.salt).decode()
        key = base64.b64encode(self.key).decode()
        return f"scrypt${self.cost.n.bit_length() - 1}${self.cost.r}${self.cost.p}${salt}${key}"

    def __repr__(self) -> str:
        return f"PasswordHash(cost={self.cost!r}, salt='********', key='********')"


def _prepare(password: str) -> bytes | None:
    """The bytes to hash, or ``None`` when the password can never verify (wrong type, empty, too long)."""
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH:
        return None
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def hash_password(password: str, *, n: int = 2**15, r: int = 8, p: int = 1) -> str:
    """Hash a new password with a random 16-byte salt; returns the encoded form to store."""
    prepared = _prepare(password)
    if prepared is None:
        raise InvalidPasswordError(f"the password must be 1 to {MAX_PASSWORD_LENGTH} characters long")
    cost = PasswordCost(n=n, r=r, p=p)
    salt = secrets.token_bytes(_SALT_BYTES)
    return PasswordHash(cost=cost, salt=salt, key=cost.derive(prepared, salt)).encode()


def verify_password(password: str, encoded: str | PasswordHash) -> bool:
    """True if ``password`` matches the hash. A malformed ``encoded`` string raises ``ConfigurationError``."""
    parsed = encoded if isinstance(encoded, PasswordHash) else PasswordHash.parse(encoded)
    prepared = _prepare(password)
    if prepared is None:
        return False
    return hmac.compare_digest(parsed.cost.derive(prepared, parsed.salt), parsed.key)


# A fixed random salt: the dummy check derives a key exactly as a real check does (the comparison that follows a
# real derivation costs nanoseconds), so a login for an unknown user takes as long as one for a known user.
_DUMMY_SALT = secrets.token_bytes(_SALT_BYTES)


def verify_dummy(password: str, cost: PasswordCost | None = None) -> bool:
    """Spend the same work as ``verify_password`` at ``cost`` and return False: the unknown-user path of a login."""
    prepared = _prepare(password)
    if prepared is not None:
        (cost or PasswordCost()).derive(prepared, _DUMMY_SALT)
    return False
