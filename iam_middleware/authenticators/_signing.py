"""Asymmetric keys that sign session tokens (EdDSA with Ed25519, ES256 with P-256), so that other services verify
them with the published public keys alone (docs/credentials.md, "Tokens other services can verify").

The private half stays inside ``SessionSigningKey``: ``public_jwk`` and ``verify_key`` hold the public half only,
and the ``kid`` is the RFC 7638 thumbprint of the public key, so it names the key and reveals nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import get_default_algorithms

from .._exceptions import ConfigurationError
from ._jwks import JWTKey

__all__ = ["SessionSigningKey", "thumbprint"]

_ALGORITHMS = get_default_algorithms()
# RFC 7638 §3.2: the members of the thumbprint's input, by key type.
_THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public OKP or EC JWK, base64url without padding."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class SessionSigningKey:
    """One private key that signs session tokens, with its algorithm, ``kid`` and published public JWK."""

    __slots__ = ("_private", "algorithm", "kid", "public_jwk", "verify_key")

    def __init__(self, private_key: Ed25519PrivateKey | EllipticCurvePrivateKey) -> None:
        if isinstance(private_key, Ed25519PrivateKey):
            algorithm = "EdDSA"
        elif isinstance(private_key, EllipticCurvePrivateKey) and isinstance(private_key.curve, SECP256R1):
            algorithm = "ES256"
        else:
            raise ConfigurationError("a session signing key must be Ed25519 (EdDSA) or P-256 (ES256)")
        public = private_key.public_key()
        jwk = {name: value for name, value in _ALGORITHMS[algorithm].to_jwk(public, as_dict=True).items()
               if name in ("kty", "crv", "x", "y")}
        self._private = private_key
        self.algorithm = algorithm
        self.kid = thumbprint(jwk)
        #: What ``/.well-known/jwks.json`` publishes: public members only.
        self.public_jwk: Mapping[str, str] = MappingProxyType({**jwk, "kid": self.kid, "alg": algorithm,
                                                               "use": "sig"})
        #: The public key bound to this one algorithm, for the strict verifier.
        self.verify_key = JWTKey(self.kid, (algorithm,), public)

    @classmethod
    def from_pem(cls, pem: str | bytes, *, where: str = "session signing key") -> SessionSigningKey:
        """A key from an unencrypted PEM private key; the error names ``where``, never the material."""
        data = pem.encode() if isinstance(pem, str) else pem
        if b"PUBLIC KEY-----" in data:
            raise ConfigurationError(f"{where}: a public key; give the PEM private key (the public one is derived)")
        try:
            private = load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(f"{where}: not an unencrypted PEM private key") from None
        if not isinstance(private, Ed25519PrivateKey | EllipticCurvePrivateKey):
            raise ConfigurationError(f"{where}: must be an Ed25519 (EdDSA) or P-256 (ES256) private key")
        try:
            return cls(private)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        """A compact JWS of ``claims`` with this key, its ``alg`` and ``kid``."""
        return jwt.encode(dict(claims), self._private, algorithm=self.algorithm, headers={"typ": typ, "kid": self.kid})

    def __repr__(self) -> str:
        return f"SessionSigningKey(algorithm={self.algorithm!r}, kid={self.kid!r})"
