"""Password hashes for the directory's ``password_hash``: make one, check one, and tell when one should be made again.

A hash is a PHC string, ``$scrypt$ln=17,r=8,p=1$<salt>$<key>`` (scrypt from the standard library at N=2**17, r=8,
p=1; salt and key in base64 without padding), the form passlib also reads. Hashes of the earlier
``scrypt$15$8$1$...`` form still verify; ``needs_rehash`` is true for them and for any hash below the cost of new
ones, and ``IAM(on_password_rehash=...)`` receives the replacement at the user's next login (docs/security.md,
section 3). ``iam-middleware hash-password`` prints a new hash from the command line.

Usage::

    encoded = hash_password("correct horse battery staple")
    verify_password("correct horse battery staple", encoded)   # True
    needs_rehash(encoded)                                       # False
"""

from __future__ import annotations

from .authenticators._passwords import (
    InvalidPasswordError,
    PasswordCost,
    hash_password,
    needs_rehash,
    verify_password,
)

__all__ = ["InvalidPasswordError", "PasswordCost", "hash_password", "needs_rehash", "verify_password"]
