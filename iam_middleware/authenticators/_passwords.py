"""Password hashing with stdlib scrypt: PHC strings, constant-time checks, a dummy check for unknown users.

A hash is stored as a PHC string, ``$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<key>`` (standard base64 without
padding: the form passlib writes and reads), so the cost can be raised later without breaking stored hashes.
New hashes cost N=2**17, r=8, p=1 (docs/security.md, section 3). The earlier
``scrypt$<log2 n>$<r>$<p>$<salt>$<key>`` form is still read, and ``needs_rehash`` says which hashes to replace.
Passwords are NFKC-normalised (NIST SP 800-63B) after a length bound, so the normalisation itself cannot be used
for denial of service.
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
    "needs_rehash",
    "verify_dummy",
    "verify_password",
]

#: Longest password accepted, in code points; longer ones never verify (bounds hashing and normalisation work).
MAX_PASSWORD_LENGTH = 1024

# The cost of new hashes: the first of OWASP's scrypt settings (N=2**17, 128 MiB; docs/security.md, section 3).
_N, _R, _P = 2**17, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_LOG2_N = 20
_MAX_R = 32
_MAX_P = 16
# 256 MiB: twice the default cost, low enough that a tampered hash row cannot exhaust memory.
_MAX_MEMORY = 256 * 1024 * 1024
_NUMBER = "([1-9][0-9]?)"
_PHC = re.compile(rf"\$scrypt\$ln={_NUMBER},r={_NUMBER},p={_NUMBER}\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")
_LEGACY_B64 = r"([A-Za-z0-9+/]+={0,2})"
_LEGACY = re.compile(rf"scrypt\${_NUMBER}\${_NUMBER}\${_NUMBER}\${_LEGACY_B64}\${_LEGACY_B64}")
_MALFORMED = "malformed password hash: "


class InvalidPasswordError(BadRequestError):
    """A new password cannot be hashed: it is empty or longer than ``MAX_PASSWORD_LENGTH``."""

    code = "InvalidPassword"


@dataclass(frozen=True, slots=True)
class PasswordCost:
    """scrypt cost parameters. ``n`` must be a power of two; lower it only in tests."""

    n: int = _N
    r: int = _R
    p: int = _P

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
        # What OpenSSL's scrypt allocates (128 * r * (N + 2) for V, 128 * r * p for B) and a MiB of slack: hashlib's
        # default maxmem (32 MiB) is below what the default cost needs, and __post_init__ bounds this value.
        maxmem = 128 * self.r * (self.n + self.p + 2) + (1 << 20)
        return hashlib.scrypt(password, salt=salt, n=self.n, r=self.r, p=self.p, maxmem=maxmem, dklen=_KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    """Unpadded standard base64, canonical only (no stray bits in the last character)."""
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise ConfigurationError(_MALFORMED + "salt or key is not valid base64") from None
    if _b64(data) != text:
        raise ConfigurationError(_MALFORMED + "salt or key is not canonical base64")
    return data


def _legacy_unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ConfigurationError(_MALFORMED + "salt or key is not valid base64") from None


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PasswordHash:
    """A parsed, validated password hash. Build it with ``PasswordHash.parse`` when loading users.

    ``legacy`` is true for a hash read from the earlier ``scrypt$...`` form (``needs_rehash`` flags it).
    """

    cost: PasswordCost
    salt: bytes
    key: bytes
    legacy: bool = False

    @classmethod
    def parse(cls, encoded: str) -> PasswordHash:
        """Parse an encoded hash; ``ConfigurationError`` (naming no hash material) if it is malformed."""
        if not isinstance(encoded, str):
            raise ConfigurationError(_MALFORMED + "expected a string")
        if match := _PHC.fullmatch(encoded):
            legacy, unb64 = False, _unb64
        elif match := _LEGACY.fullmatch(encoded):
            legacy, unb64 = True, _legacy_unb64
        else:
            raise ConfigurationError(_MALFORMED + "expected '$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<key>'")
        log2_n, r, p, salt_b64, key_b64 = match.groups()
        if int(log2_n) > _MAX_LOG2_N:
            raise ConfigurationError(f"{_MALFORMED}log2 N must be at most {_MAX_LOG2_N}")
        cost = PasswordCost(n=2 ** int(log2_n), r=int(r), p=int(p))
        salt, key = unb64(salt_b64), unb64(key_b64)
        if len(salt) < _SALT_BYTES or len(key) != _KEY_BYTES:
            raise ConfigurationError(
                f"{_MALFORMED}need a salt of at least {_SALT_BYTES} bytes and a {_KEY_BYTES}-byte key"
            )
        return cls(cost=cost, salt=salt, key=key, legacy=legacy)

    def encode(self) -> str:
        """The PHC string, as stored (a legacy hash comes out in the PHC form: same salt, key and cost)."""
        cost = self.cost
        return f"$scrypt$ln={cost.n.bit_length() - 1},r={cost.r},p={cost.p}${_b64(self.salt)}${_b64(self.key)}"

    def __repr__(self) -> str:
        return f"PasswordHash(cost={self.cost!r}, salt='********', key='********', legacy={self.legacy!r})"


def _prepare(password: str) -> bytes | None:
    """The bytes to hash, or ``None`` when the password can never verify (wrong type, empty, too long)."""
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH:
        return None
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """Hash a new password with a random 16-byte salt; returns the PHC string to store. Lower the cost only in
    tests; ``InvalidPasswordError`` for an empty password or one longer than ``MAX_PASSWORD_LENGTH``."""
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


def needs_rehash(encoded: str | PasswordHash, *, cost: PasswordCost | None = None) -> bool:
    """True if ``encoded`` should be replaced by a new hash of the same password (made at the next login, the only
    time the password is known): it is in the earlier form, or its N, r or p is below ``cost`` (default: the cost
    of new hashes). A malformed ``encoded`` string raises ``ConfigurationError``."""
    parsed = encoded if isinstance(encoded, PasswordHash) else PasswordHash.parse(encoded)
    target = cost or PasswordCost()
    return parsed.legacy or parsed.cost.n < target.n or parsed.cost.r < target.r or parsed.cost.p < target.p


# A fixed random salt: the dummy check derives a key exactly as a real check does (the comparison that follows a
# real derivation costs nanoseconds), so a login for an unknown user takes as long as one for a known user.
_DUMMY_SALT = secrets.token_bytes(_SALT_BYTES)


def verify_dummy(password: str, cost: PasswordCost | None = None) -> bool:
    """Spend the same work as ``verify_password`` at ``cost`` and return False: the unknown-user path of a login."""
    prepared = _prepare(password)
    if prepared is not None:
        (cost or PasswordCost()).derive(prepared, _DUMMY_SALT)
    return False
