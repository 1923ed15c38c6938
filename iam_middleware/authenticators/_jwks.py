"""Verification keys for bearer JWTs: statically configured keys and JSON Web Key Sets (RFC 7517).

Every key is bound to one algorithm family (HS*, RS*, PS*, ES*, EdDSA) when it is built, never by the
token that names it; this is what makes HS/RS algorithm confusion impossible (RFC 8725 §2.1, §3.1).
A JWKS fetched from a URL or read from a file is cached, refreshed on an unknown ``kid`` at most once
per ``min_refresh_interval`` and otherwise every ``max_age``; a failed refresh keeps the last good set.
The caller passes the time in as ``now`` (epoch seconds); this module never reads the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey, Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import PyJWTError

from .._exceptions import ConfigurationError
from .._json import JSONError, loads

if TYPE_CHECKING:
    import httpx

__all__ = ["FetchDeferred", "FetchMode", "JWKSSource", "JWTKey", "PublicKey", "fetching"]

logger = logging.getLogger("iam_middleware.jwks")

#: A public key object from ``cryptography`` that a JWT signature can be verified with.
PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey

_PRIVATE_KEY_TYPES = (RSAPrivateKey, EllipticCurvePrivateKey, Ed25519PrivateKey, Ed448PrivateKey)

# Every algorithm a key can be bound to, by family; "none" is deliberately absent.
_FAMILY = {
    "HS256": "HS",
    "HS384": "HS",
    "HS512": "HS",
    "RS256": "RS",
    "RS384": "RS",
    "RS512": "RS",
    "PS256": "PS",
    "PS384": "PS",
    "PS512": "PS",
    "ES256": "ES",
    "ES256K": "ES",
    "ES384": "ES",
    "ES512": "ES",
    "EdDSA": "EdDSA",
}
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # the hash size, RFC 7518 §3.2
_RSA_MIN_BITS = 2048  # RFC 7518 §3.3
_KTY_OF_FAMILY = {"HS": "oct", "RS": "RSA", "PS": "RSA", "ES": "EC", "EdDSA": "OKP"}
_ALG_OF_EC_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}
_ALGORITHMS = get_default_algorithms()

_MAX_KID_LENGTH = 256
_MAX_JWKS_KEYS = 64


class _VettedSecret(bytes):
    """An HMAC secret that pyjwt's own ``prepare_key`` accepted when its (immutable) JWTKey was built (masked in
    reprs)."""

    def __repr__(self) -> str:
        return "_VettedSecret('********')"


class _SignatureVerifier(Protocol):
    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool: ...


class _HMACVerifier:
    """HS256/384/512 as pyjwt's ``HMACAlgorithm.verify`` checks them (the HMAC of the signing input, compared in
    constant time), through the standard library's one-call ``hmac.digest``: a third of the cost of building an
    ``hmac.HMAC`` object per token (tests/authenticators/test_jwt.py compares the two)."""

    __slots__ = ("_hash",)

    def __init__(self, hash_name: str) -> None:
        self._hash = hash_name

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        return hmac.compare_digest(sig, hmac.digest(key, msg, self._hash))


def _signature_verifiers() -> dict[str, _SignatureVerifier]:
    """pyjwt's algorithm objects for every algorithm a JWTKey can be bound to (never ``none``), by name. Keys are
    prepared (parsed, vetted, curve-checked) once when their JWTKey is built, so only ``verify`` runs per token."""
    verifiers: dict[str, _SignatureVerifier] = {
        alg: _ALGORITHMS[alg] for alg, family in _FAMILY.items() if family != "HS"}
    verifiers["HS256"] = _HMACVerifier("sha256")
    verifiers["HS384"] = _HMACVerifier("sha384")
    verifiers["HS512"] = _HMACVerifier("sha512")
    return verifiers


#: The signature check of each algorithm a key may be bound to.
VERIFIERS = _signature_verifiers()


def _key_label(kid: str | None) -> str:
    return f"JWTKey(kid={kid!r})" if kid is not None else "JWTKey without kid"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JWTKey:
    """One verification key bound to the algorithms of a single family.

    ``key`` is an HMAC secret (``str``/``bytes``, at least the hash size long), a PEM or OpenSSH public key,
    or a ``cryptography`` public key object. Private keys are refused: a verifier needs only the public half.
    ``algorithms`` must all come from one family; mixing families (``("HS256", "RS256")``) is exactly the
    configuration that algorithm-confusion attacks exploit, so it is a ``ConfigurationError``.
    """

    kid: str | None
    algorithms: tuple[str, ...]
    key: str | bytes | PublicKey
    _allowed: frozenset[str] = field(init=False, compare=False)
    _verify_key: bytes | PublicKey = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.kid is not None and not (isinstance(self.kid, str) and 0 < len(self.kid) <= _MAX_KID_LENGTH):
            raise ConfigurationError(f"JWTKey: kid must be None or a string of 1 to {_MAX_KID_LENGTH} characters")
        label = _key_label(self.kid)
        if isinstance(self.algorithms, str):
            raise ConfigurationError(f"{label}: algorithms must be a tuple such as ({self.algorithms!r},)")
        algorithms = tuple(self.algorithms)
        if not algorithms:
            raise ConfigurationError(f"{label}: algorithms must name at least one algorithm")
        for alg in algorithms:
            if alg not in _FAMILY:
                raise ConfigurationError(f"{label}: unsupported algorithm {alg!r}; use one of {sorted(_FAMILY)}")
        families = {_FAMILY[alg] for alg in algorithms}
        if len(families) != 1:
            raise ConfigurationError(
                f"{label}: algorithms {algorithms!r} mix families {sorted(families)}; bind each key to one family"
            )
        object.__setattr__(self, "algorithms", algorithms)
        object.__setattr__(self, "_allowed", frozenset(algorithms))
        object.__setattr__(self, "_verify_key", _load_key(label, families.pop(), algorithms, self.key))

    def __repr__(self) -> str:
        return f"JWTKey(kid={self.kid!r}, algorithms={self.algorithms!r}, key='********')"


def _load_key(label: str, family: str, algorithms: tuple[str, ...], key: object) -> bytes | PublicKey:
    """Turn configured key material into what pyjwt verifies with, refusing weak or misplaced keys."""
    if family == "HS":
        if not isinstance(key, str | bytes):
            raise ConfigurationError(f"{label}: an HMAC key must be the secret as str or bytes")
        secret = key.encode("utf-8") if isinstance(key, str) else key
        for alg in algorithms:
            if len(secret) < _HMAC_MIN_BYTES[alg]:
                raise ConfigurationError(
                    f"{label}: the HMAC secret is shorter than the {_HMAC_MIN_BYTES[alg]} bytes {alg} needs "
                    "(RFC 7518 §3.2)"
                )
        try:
            # pyjwt refuses PEM, SSH, DER and JWK-JSON material as an HMAC secret: such a "secret" is public.
            _ALGORITHMS[algorithms[0]].prepare_key(secret)
        except PyJWTError:
            raise ConfigurationError(
                f"{label}: the HMAC secret looks like a public key, certificate or JWK; use a random secret"
            ) from None
        return _VettedSecret(secret)
    if isinstance(key, _PRIVATE_KEY_TYPES):
        raise ConfigurationError(f"{label}: got a private key; configure the public key only")
    loaded: object = None
    for alg in algorithms:
        try:
            # prepare_key parses PEM/SSH and, for ES*, checks the curve matches the algorithm.
            loaded = _ALGORITHMS[alg].prepare_key(key)
        except (PyJWTError, ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(f"{label}: not a valid public key for {alg}") from None
    if isinstance(loaded, _PRIVATE_KEY_TYPES):
        raise ConfigurationError(f"{label}: got a private key; configure the public key only")
    if isinstance(loaded, RSAPublicKey) and loaded.key_size < _RSA_MIN_BITS:
        raise ConfigurationError(f"{label}: RSA keys must be at least {_RSA_MIN_BITS} bits (RFC 7518 §3.3)")
    if not isinstance(loaded, RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey):
        raise ConfigurationError(f"{label}: not a valid public key for {algorithms[0]}")
    return loaded


class _UnusableDocument(Exception):
    """A fetched JWKS document was rejected as a whole; the message names why (never its content)."""


def _algorithm_for_jwk(jwk: Mapping[str, Any]) -> str | None:
    """The one algorithm a JWK is bound to: its ``alg``, else what its kty/crv imply, else None."""
    kty = jwk.get("kty")
    if "alg" in jwk:
        alg = jwk["alg"]
        if not isinstance(alg, str) or alg not in _FAMILY or _KTY_OF_FAMILY[_FAMILY[alg]] != kty:
            return None
        return alg
    if kty == "EC":
        return _ALG_OF_EC_CURVE.get(jwk.get("crv"))  # type: ignore[arg-type]
    if kty == "OKP":
        return "EdDSA" if jwk.get("crv") in ("Ed25519", "Ed448") else None
    if kty == "RSA":
        # RS256 is the conventional default for RSA JWKs (pyjwt does the same); RS vs PS on one RSA key is
        # no confusion risk since both need the private key. A symmetric (oct) key must declare its alg.
        return "RS256"
    return None


def _key_from_jwk(jwk: object) -> JWTKey | str:
    """Build the JWTKey a JWK describes, or return why it is skipped."""
    if not isinstance(jwk, Mapping):
        return "not a JSON object"
    kid = jwk.get("kid")
    if kid is not None and not (isinstance(kid, str) and 0 < len(kid) <= _MAX_KID_LENGTH):
        return "kid is not a short string"
    if jwk.get("use", "sig") != "sig":
        return "use is not 'sig'"
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return "key_ops does not include 'verify'"
    alg = _algorithm_for_jwk(jwk)
    if alg is None:
        return "no usable alg for its kty/crv"
    if _FAMILY[alg] != "HS" and "d" in jwk:
        return "it carries private key material"
    try:
        material = _ALGORITHMS[alg].from_jwk(dict(jwk))
        return JWTKey(kid, (alg,), material)
    except (PyJWTError, ConfigurationError, ValueError, TypeError, UnsupportedAlgorithm):
        return f"not a valid {alg} key"


def _parse_jwks(document: Mapping[str, Any] | bytes, source: str) -> tuple[tuple[JWTKey, ...], frozenset[bytes]]:
    """The usable keys of a JWK Set and a fingerprint of each (to notice removed keys)."""
    if isinstance(document, bytes):
        try:
            document = loads(document)
        except JSONError as exc:  # the duplicated name is content: not named
            raise _UnusableDocument("duplicate JSON member name" if exc.member is not None
                                    else f"not valid UTF-8 JSON ({exc})") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise _UnusableDocument('not a JWK Set (an object with a "keys" array)')
    entries: list[Any] = document["keys"]
    if len(entries) > _MAX_JWKS_KEYS:
        raise _UnusableDocument(f"more than {_MAX_JWKS_KEYS} keys")
    keys: list[JWTKey] = []
    prints: set[bytes] = set()
    for entry in entries:
        key = _key_from_jwk(entry)
        if isinstance(key, str):
            kid = entry.get("kid") if isinstance(entry, Mapping) else None
            logger.info("JWKS %s: skipping key kid=%r: %s", source, kid, key)
            continue
        keys.append(key)
        prints.add(hashlib.sha256(json.dumps(entry, sort_keys=True).encode("utf-8")).digest())
    if not keys:
        raise _UnusableDocument("no usable signing keys")
    return tuple(keys), frozenset(prints)


def _read_capped(path: str, max_bytes: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _UnusableDocument(f"file larger than {max_bytes} bytes")
    return data


def _fetch_capped(client: httpx.Client, url: str, timeout: float, max_bytes: int) -> bytes:
    # identity encoding: a compressed body could inflate far past max_bytes inside one chunk.
    headers = {"Accept": "application/jwk-set+json, application/json", "Accept-Encoding": "identity"}
    with client.stream("GET", url, headers=headers, timeout=timeout) as response:
        if response.status_code != 200:
            raise _UnusableDocument(f"HTTP status {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _UnusableDocument(f"response larger than {max_bytes} bytes")
        body = bytearray()
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise _UnusableDocument(f"response larger than {max_bytes} bytes")
    return bytes(body)


#: How a JWKS load that falls due is done in the current context: ``inline`` (blocking, the default: worker threads
#: and WSGI), ``defer`` (raise ``FetchDeferred`` so an event loop can run it elsewhere) or ``skip`` (decide with
#: the keys at hand, after the deferred load ran).
FetchMode = Literal["inline", "defer", "skip"]
_FETCH_MODE: ContextVar[FetchMode] = ContextVar("iam_jwks_fetch_mode", default="inline")


@contextmanager
def fetching(mode: FetchMode) -> Iterator[None]:
    """Run the block with JWKS loads done as ``mode`` says (see ``FetchMode``)."""
    token = _FETCH_MODE.set(mode)
    try:
        yield
    finally:
        _FETCH_MODE.reset(token)


class FetchDeferred(Exception):  # noqa: N818 - a signal to the shell, not an error
    """A key set load fell due on an event loop: ``run()`` it off the loop, then decide again with ``skip``.

    Raised instead of blocking; never a refusal. Authentication has changed no state when it is raised: keys are
    chosen before any single-use or throttle bookkeeping.
    """

    def __init__(self, source: JWKSSource, now: float) -> None:
        super().__init__(f"JWKS {source._source}: load deferred off the event loop")
        self.source = source
        self.now = now

    def run(self) -> None:
        """Load the key set now (blocking; a failure keeps the last good set, as any refresh does)."""
        self.source._load(now=self.now)


class JWKSSource:
    """A JWK Set to verify tokens against: from a dict (static), a file or a URL (both refreshed).

    Build one with :meth:`from_dict`, :meth:`from_file` or :meth:`from_url`. Fetching is lazy: the first
    :meth:`keys` call loads the set; call ``refresh(now=time.time())`` at startup to fail fast instead.
    A URL fetch is blocking I/O (httpx, with a timeout and a size cap) on the calling thread, except under
    ``fetching("defer")``, where the async shells ask for it to be raised as ``FetchDeferred`` and run it in a
    worker thread, so that the event loop never waits on an identity provider.
    """

    def __init__(
        self,
        loader: Callable[[], bytes] | None,
        *,
        source: str,
        keys: tuple[JWTKey, ...] = (),
        min_refresh_interval: float = 60.0,
        max_age: float = 3600.0,
    ) -> None:
        if min_refresh_interval < 0 or max_age < min_refresh_interval:
            raise ConfigurationError(f"JWKS {source}: need 0 <= min_refresh_interval <= max_age")
        self._loader = loader
        self._source = source
        self._keys = keys
        self._fingerprints: frozenset[bytes] = frozenset()
        self._min_refresh_interval = float(min_refresh_interval)
        self._max_age = float(max_age)
        self._loaded_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self._subscribers: list[weakref.WeakMethod[Callable[[], None]]] = []

    @classmethod
    def from_dict(cls, jwks: Mapping[str, Any]) -> JWKSSource:
        """A static key set; ConfigurationError if it holds no usable key."""
        try:
            keys, _ = _parse_jwks(jwks, "dict")
        except _UnusableDocument as exc:
            raise ConfigurationError(f"JWKS dict: {exc}") from None
        return cls(None, source="dict", keys=keys)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 256 * 1024,
        min_refresh_interval: float = 60.0,
        max_age: float = 3600.0,
    ) -> JWKSSource:
        """A key set read from a JSON file, re-read on the same schedule as a URL."""
        name = os.fspath(path)
        return cls(
            lambda: _read_capped(name, max_bytes),
            source=f"file {name}",
            min_refresh_interval=min_refresh_interval,
            max_age=max_age,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
        min_refresh_interval: float = 60.0,
        max_age: float = 3600.0,
        allow_http: bool = False,
        client: httpx.Client | None = None,
    ) -> JWKSSource:
        """A key set fetched with httpx. Plain http is refused (keys could be swapped in transit) unless the
        host is loopback or ``allow_http`` is set. Redirects are not followed. ``client`` (optional, owned by
        the caller) customises TLS or proxies.
        """
        import httpx  # only a provider configured by URL fetches; importing it costs every other app start-up

        parsed = httpx.URL(url)
        loopback = parsed.host in ("localhost", "127.0.0.1", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and (loopback or allow_http)):
            raise ConfigurationError("JWKS URL must use https (or http to a loopback host, or set allow_http=True)")
        source = str(parsed.copy_with(username=None, password=None, query=None, fragment=None))

        def load() -> bytes:
            if client is not None:
                return _fetch_capped(client, url, timeout, max_bytes)
            with httpx.Client(follow_redirects=False) as own_client:
                return _fetch_capped(own_client, url, timeout, max_bytes)

        return cls(load, source=source, min_refresh_interval=min_refresh_interval, max_age=max_age)

    def __repr__(self) -> str:
        return f"JWKSSource({self._source!r}, keys={len(self._keys)})"

    def keys(self, *, now: float) -> tuple[JWTKey, ...]:
        """The current key set, refreshed first when it was never loaded or is older than ``max_age``."""
        if self._loader is not None and (self._loaded_at is None or now - self._loaded_at >= self._max_age):
            self.refresh(now=now)
        return self._keys

    def refresh(self, *, now: float) -> bool:
        """Reload now unless the last attempt was under ``min_refresh_interval`` ago.

        Returns True when a new set was loaded. A failure is logged and keeps the last good set.
        """
        if self._loader is None:
            return False
        mode = _FETCH_MODE.get()
        if mode == "inline":
            return self._load(now=now)
        if mode == "defer" and self._due(now):
            raise FetchDeferred(self, now)
        return False

    def _due(self, now: float) -> bool:
        last = self._last_attempt
        # A clock that went backwards (now < last) must not freeze refreshing.
        return last is None or not 0 <= now - last < self._min_refresh_interval

    def _load(self, *, now: float) -> bool:
        assert self._loader is not None
        with self._lock:
            if not self._due(now):
                return False
            self._last_attempt = now
            try:
                keys, prints = _parse_jwks(self._loader(), self._source)
            except Exception as exc:  # any failure keeps the last good set; the verifier then fails closed on it
                reason = str(exc) if isinstance(exc, _UnusableDocument) else type(exc).__name__
                logger.warning("JWKS %s: refresh failed (%s); keeping the last good key set", self._source, reason)
                return False
            removed = bool(self._fingerprints - prints)
            self._keys, self._fingerprints, self._loaded_at = keys, prints, now
        if removed:
            self._notify()
        return True

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call the bound method ``callback`` whenever a refresh drops a key (held weakly)."""
        self._subscribers.append(weakref.WeakMethod(callback))

    def _notify(self) -> None:
        alive = []
        for ref in self._subscribers:
            callback = ref()
            if callback is not None:
                callback()
                alive.append(ref)
        self._subscribers = alive
