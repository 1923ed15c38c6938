"""Settings: what the middleware needs besides the directory, read from the directory file's ``[settings]``."""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError
from ._json import loads
from .authenticators._jwks import JWKSSource, JWTKey
from .authenticators._jwt import TrustedIssuer
from .authenticators._signing import SessionSigningKey
from .state._redis_url import parse_redis_url

__all__ = ["Settings", "WebIdentityProvider"]


@dataclass(frozen=True, slots=True)
class WebIdentityProvider:
    """An outside identity provider whose JWTs map to a role, as AWS's AssumeRoleWithWebIdentity does.

    The role's trust policy decides, with ``Federated: <name>`` as the principal and the token's claims as condition
    keys ``<name>:sub``, ``<name>:aud``, ... . ``tag_claims`` maps session tag names to claim names.
    """

    name: str
    issuer: TrustedIssuer
    role: str
    session_name_claim: str = "sub"
    tag_claims: Mapping[str, str] = field(default_factory=dict)
    #: The longest a token is honoured after its ``iat`` (or, without one, after this process first accepts it),
    #: whatever ``exp`` its issuer chose: a key removed from the provider stops it within this bound everywhere.
    max_token_lifetime: float = 3600.0

    def session_tags(self, claims: Mapping[str, Any]) -> dict[str, str]:
        """The session tags a token's claims give (``tag_claims``); claims that are not strings or numbers are
        skipped, so a tag never holds a structure the policy language cannot compare."""
        return {tag: str(claims[claim]) for tag, claim in self.tag_claims.items()
                if isinstance(claims.get(claim), (str, int)) and not isinstance(claims.get(claim), bool)}


#: Every key ``[settings]`` takes (docs/directory.md documents each; a test keeps the two alike).
SETTINGS_KEYS = frozenset({
    "partition", "service", "regions", "max_skew", "allow_unsigned_payload", "sigv4_verbatim_fallback",
    "s3_style_paths", "sigv4_replay_protection", "session_secret", "session_ttl", "cookie_name",
    "allowed_origins", "trusted_proxies", "web_identity", "login_max_failures", "login_lockout", "sts_max_duration",
    "session_cache_seconds", "secrets_file", "default_account", "redis_url", "allowed_hosts", "session_issuer",
    "session_signing_keys",
})


#: Declared type, range and unit of every plain setting: anything else is refused with the setting named (a string
#: "false" must never switch a security option on, "local" never become five regions).
_DECLARED: dict[str, tuple[str, float | None, float | None, str]] = {
    "partition": ("name", None, None, ""),
    "service": ("name", None, None, ""),
    "cookie_name": ("name", None, None, ""),
    "regions": ("names", None, None, ""),
    "allowed_origins": ("names", None, None, ""),
    "trusted_proxies": ("names", None, None, ""),
    "allowed_hosts": ("names", None, None, ""),
    "session_issuer": ("name", None, None, ""),
    "session_signing_keys": ("names", None, None, ""),
    "max_skew": ("number", 1, 3600, "seconds"),
    "login_lockout": ("number", 1, 86400, "seconds"),
    "session_cache_seconds": ("number", 0, 60, "seconds"),
    "session_ttl": ("integer", 60, 604800, "seconds"),
    "login_max_failures": ("integer", 1, 1000, "failures"),
    "sts_max_duration": ("integer", 900, 129600, "seconds"),
    "allow_unsigned_payload": ("boolean", None, None, ""),
    "sigv4_verbatim_fallback": ("boolean", None, None, ""),
    "s3_style_paths": ("boolean", None, None, ""),
    "sigv4_replay_protection": ("boolean", None, None, ""),
}


def _typed(value: Any, kind: str, low: float | None, high: float | None, unit: str) -> tuple[Any, str | None]:
    """(the value, None), or (None, what is wrong with it)."""
    if kind == "boolean":
        return (value, None) if isinstance(value, bool) else (None, f"must be true or false, not {value!r}")
    if kind == "name":
        ok = isinstance(value, str) and bool(value) and value.isprintable()
        return (value, None) if ok else (None, f"must be a non-empty string, not {value!r}")
    if kind == "names":
        ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        return (tuple(value), None) if ok else (None, f"must be a list of strings, not {value!r}")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer" and not (numeric and float(value).is_integer()):
        return None, f"must be a whole number of {unit}, not {value!r}"
    if not numeric or value != value:  # NaN compares unequal to itself
        return None, f"must be a number of {unit}, not {value!r}"
    if (low is not None and value < low) or (high is not None and value > high):
        return None, f"must be between {low:g} and {high:g} {unit}, not {value!r}"
    return (int(value) if kind == "integer" else float(value)), None


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """Middleware settings. ``session_secret`` signs session tokens (or ``session_signing_keys``, which other
    services can verify); give every worker the same ones."""

    partition: str = "app"
    service: str = "app"
    regions: tuple[str, ...] = ("local",)
    max_skew: float = 300.0
    allow_unsigned_payload: bool = False
    sigv4_verbatim_fallback: bool = False
    s3_style_paths: bool = False
    #: Accept each SigV4-signed request that changes state (not GET/HEAD/OPTIONS) once (needs shared state).
    sigv4_replay_protection: bool = False
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    session_ttl: int = 3600
    cookie_name: str = "iam_session"
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    web_identity: tuple[WebIdentityProvider, ...] = ()
    login_max_failures: int = 5
    login_lockout: float = 900.0
    sts_max_duration: int = 43200
    session_cache_seconds: float = 1.0
    #: Shared state across processes and machines: a Redis URL turns it on (None: in-process memory).
    redis_url: str | None = None
    #: The ``Host`` values a SigV4 signature may cover (None: any): a request signed for one deployment is not
    #: accepted by another that shares keys, service and region.
    allowed_hosts: tuple[str, ...] | None = None
    #: The ``iss`` of this service's session tokens: what another service names as their issuer.
    session_issuer: str = "iam-middleware"
    #: Private keys that sign session tokens instead of ``session_secret`` (the first signs, all verify and are
    #: published at ``/.well-known/jwks.json``).
    session_signing_keys: tuple[SessionSigningKey, ...] = ()

    def __repr__(self) -> str:
        return (f"Settings(partition={self.partition!r}, service={self.service!r}, regions={self.regions!r}, "
                f"session_secret='********', session_issuer={self.session_issuer!r}, "
                f"session_signing_keys={[k.kid for k in self.session_signing_keys]!r}, "
                f"web_identity={[p.name for p in self.web_identity]!r}, "
                f"shared_state={'redis' if self.redis_url else 'memory'!r})")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, base_dir: Path = Path(".")) -> Settings:
        """Build settings from the ``[settings]`` table; secrets as ``env:NAME`` or the value."""
        problems: list[str] = [f"settings.{key}: unknown setting (expected one of {', '.join(sorted(SETTINGS_KEYS))})"
                               for key in sorted(set(raw) - SETTINGS_KEYS)]
        kwargs: dict[str, Any] = {}
        for name, (kind, low, high, unit) in _DECLARED.items():
            if name not in raw:
                continue
            value, problem = _typed(raw[name], kind, low, high, unit)
            if problem is not None:
                problems.append(f"settings.{name}: {problem}")
            else:
                kwargs[name] = value
        if kwargs.get("allowed_hosts") == ():
            problems.append("settings.allowed_hosts: must name at least one host (or be left out: any host)")
            del kwargs["allowed_hosts"]
        if kwargs.get("regions") == ():
            problems.append("settings.regions: must name at least one region")
            del kwargs["regions"]
        if "trusted_proxies" in kwargs:
            try:
                kwargs["trusted_proxies"] = tuple(ipaddress.ip_network(p, strict=False)
                                                  for p in kwargs["trusted_proxies"])
            except ValueError as exc:
                problems.append(f"settings.trusted_proxies: {exc}")
        if "allowed_origins" in kwargs:
            kwargs["allowed_origins"] = tuple(o.rstrip("/") for o in kwargs["allowed_origins"])
        if problems:
            raise ConfigurationError(f"invalid settings ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
        vault = _SecretsFile(raw.get("secrets_file"), base_dir)
        if "redis_url" in raw:
            kwargs["redis_url"] = _redis_url(_secret(raw["redis_url"], "settings.redis_url", vault))
        if "session_secret" in raw:
            secret = _secret(raw["session_secret"], "settings.session_secret", vault)
            if len(secret.encode()) < 32:
                raise ConfigurationError("settings.session_secret must be at least 32 bytes")
            kwargs["session_secret"] = secret.encode()
        if "session_signing_keys" in kwargs:
            kwargs["session_signing_keys"] = _signing_keys(kwargs["session_signing_keys"], vault)
        providers = []
        own_issuer = kwargs.get("session_issuer", "iam-middleware")
        for i, entry in enumerate(raw.get("web_identity", [])):
            provider = _provider(entry, f"settings.web_identity[{i}]", base_dir)
            if provider.issuer.issuer == own_issuer:  # its tokens and this service's sessions would be confused
                raise ConfigurationError(f"settings.web_identity[{i}].issuer: is this service's own session_issuer; "
                                         "give each token service its own session_issuer")
            providers.append(provider)
        kwargs["web_identity"] = tuple(providers)
        return cls(**kwargs)


class _SecretsFile:
    """The ``secrets_file`` the settings name (TOML or JSON), read on first use."""

    def __init__(self, name: Any, base_dir: Path) -> None:
        self._path = base_dir / str(name) if name else None
        self._values: Mapping[str, Any] | None = None

    def get(self, key: str, where: str) -> str:
        if self._path is None:
            raise ConfigurationError(f"{where}: secret:{key} needs settings.secrets_file")
        if self._values is None:
            try:
                text = self._path.read_bytes()
                self._values = loads(text) if self._path.suffix == ".json" else tomllib.loads(text.decode())
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"settings.secrets_file: cannot read {self._path}: {exc}") from None
        found = self._values.get(key) if isinstance(self._values, Mapping) else None
        if not isinstance(found, str) or not found:
            raise ConfigurationError(f"{where}: secret {key!r} is not in the secrets file")
        return found


def _secret(value: Any, where: str, vault: _SecretsFile | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where}: a secret is a non-empty string (env:NAME, secret:KEY or the value)")
    if value.startswith("env:"):
        found = os.environ.get(value[4:])
        if not found:
            raise ConfigurationError(f"{where}: environment variable {value[4:]} is not set")
        return found
    if value.startswith("secret:") and vault is not None:
        return vault.get(value[len("secret:"):], where)
    return value


def _signing_keys(references: tuple[str, ...], vault: _SecretsFile) -> tuple[SessionSigningKey, ...]:
    """Each reference (``env:``, ``secret:`` or the PEM itself) loaded as a private key; no kid twice."""
    keys: list[SessionSigningKey] = []
    for i, reference in enumerate(references):
        where = f"settings.session_signing_keys[{i}]"
        key = SessionSigningKey.from_pem(_secret(reference, where, vault), where=where)
        if any(key.kid == other.kid for other in keys):
            raise ConfigurationError(f"{where}: the same key as an earlier entry")
        keys.append(key)
    return tuple(keys)


def _redis_url(url: str) -> str:
    """``url`` if it is one of the forms docs/operations.md lists; else refused at load, without showing the URL (it
    may hold a password)."""
    try:
        parse_redis_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"settings.redis_url: {exc}") from None
    return url


def _provider(entry: Any, where: str, base_dir: Path) -> WebIdentityProvider:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where}: must be a table")
    try:
        issuer = str(entry["issuer"])
        role = str(entry["role"])
    except KeyError as exc:
        raise ConfigurationError(f"{where}: missing {exc.args[0]!r}") from None
    for listed in ("algorithms", "audiences", "token_types"):
        if listed in entry and not (isinstance(entry[listed], list)
                                    and all(isinstance(v, str) and v for v in entry[listed])):
            raise ConfigurationError(f"{where}.{listed}: must be a list of strings, not {entry[listed]!r}")
    lifetime = entry.get("max_token_lifetime", 3600)
    if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or not 60 <= lifetime <= 7 * 86400:
        raise ConfigurationError(f"{where}.max_token_lifetime: must be a number of seconds from 60 to 604800, not "
                                 f"{lifetime!r}")
    leeway = entry.get("leeway", 60)
    if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or not 0 <= leeway <= 300:
        raise ConfigurationError(f"{where}.leeway: must be a number of seconds from 0 to 300, not {leeway!r}")
    algorithms = tuple(entry.get("algorithms", ("RS256",)))
    keys: list[JWTKey] = []
    jwks = None
    if "hmac_secret" in entry:
        keys.append(JWTKey(entry.get("kid"), algorithms, _secret(entry["hmac_secret"], f"{where}.hmac_secret")))
    if "public_key_file" in entry:
        path = base_dir / str(entry["public_key_file"])
        try:
            keys.append(JWTKey(entry.get("kid"), algorithms, path.read_bytes()))
        except OSError as exc:
            raise ConfigurationError(f"{where}.public_key_file: cannot read {path}: {exc.strerror}") from None
    if "jwks_file" in entry:
        jwks = JWKSSource.from_file(str(base_dir / str(entry["jwks_file"])))
    elif "jwks_url" in entry:
        jwks = JWKSSource.from_url(str(entry["jwks_url"]))
    trusted = TrustedIssuer(
        issuer, tuple(entry.get("audiences", ())), keys=tuple(keys), jwks=jwks,
        leeway=float(leeway), token_types=tuple(entry["token_types"]) if "token_types" in entry
        else None,
    )
    name = str(entry.get("name", issuer.removeprefix("https://").removeprefix("http://").rstrip("/")))
    return WebIdentityProvider(
        name=name, issuer=trusted, role=role, session_name_claim=str(entry.get("session_name_claim", "sub")),
        tag_claims=dict(entry.get("tag_claims", {})), max_token_lifetime=float(lifetime),
    )
