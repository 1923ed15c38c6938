"""Helpers for directory authors: ``hash-password``, ``totp new`` / ``totp code``, ``keys new`` and ``token mint``."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
import time
from typing import Any

from .._exceptions import ConfigurationError, OTPError
from ..authenticators._totp import TOTPDevice, TOTPVerifier, qr_svg, qr_terminal
from ..passwords import hash_password
from ..state import MemoryStore

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    hasher = commands.add_parser("hash-password",
                                 help="hash a password for the directory's password_hash (a $scrypt$ PHC string)")
    hasher.add_argument("--stdin", action="store_true", help="read the password from standard input")
    hasher.set_defaults(run=_hash)

    totp = commands.add_parser("totp", help="TOTP devices: make a seed, show the current code")
    actions = totp.add_subparsers(dest="totp_command", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="a new 160-bit seed, its otpauth:// URI and a QR code")
    new.add_argument("--account", default="user", help="the account name shown in the authenticator app")
    new.add_argument("--issuer", default="iam-middleware")
    new.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    new.add_argument("--svg", metavar="FILE", help="also write the QR code as an SVG image")
    new.add_argument("--confirm", action="store_true",
                     help="ask for the first code from the authenticator app and print the seed only once it verifies "
                          "(a device is activated only after one valid code)")
    new.set_defaults(run=_totp_new)
    code = actions.add_parser("code", help="the current code of a seed (for demos and tests)")
    code.add_argument("secret", help="base32 seed")
    code.set_defaults(run=_totp_code)

    keys = commands.add_parser("keys", help="access keys: make a new one for a user")
    key_actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new_key = key_actions.add_parser("new", help="a new access key id and secret, with the lines to paste")
    new_key.add_argument("user", help="the user the key is for")
    new_key.set_defaults(run=_keys_new)

    token = commands.add_parser("token", help="JWTs of a configured identity provider, for tests")
    token_actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    mint = token_actions.add_parser("mint", help="a test JWT of a configured provider (its HMAC key, or --key)")
    mint.add_argument("--directory", required=True, metavar="FILE", help="the directory file naming the provider")
    mint.add_argument("--provider", help="the provider's name (default: the only one)")
    mint.add_argument("--sub", default="tester", help="the token's subject")
    mint.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE", help="an extra claim")
    mint.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    mint.add_argument("--key", metavar="PEM", help="the private key (PEM file) of a provider configured with "
                      "public keys (public_key_file, jwks_file, jwks_url)")
    mint.add_argument("--algorithm", help="the signing algorithm with --key (default: the provider's first)")
    mint.add_argument("--kid", help="the key id to put in the header with --key")
    mint.set_defaults(run=_token_mint)


def _hash(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("error: empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def _totp_new(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    verifier = TOTPVerifier(MemoryStore())
    pending = verifier.begin_enrollment(now=time.time())
    uri = pending.provisioning_uri(args.account, args.issuer)
    print(uri)
    try:
        if not args.no_qr:
            print(qr_terminal(uri))
        if args.svg:
            with open(args.svg, "w", encoding="utf-8") as handle:
                handle.write(qr_svg(uri))
    except ModuleNotFoundError as exc:
        print(f"(no QR code: {exc})", file=sys.stderr)
    device = pending.device
    if args.confirm:
        code = input("First code from the authenticator app: ").strip()
        try:
            device = verifier.confirm_enrollment(args.account, pending, code, now=time.time())
        except OTPError as exc:
            print(f"error: the device is not activated: {exc.message}", file=sys.stderr)
            return 1
        print("Verified: the device is active.")
    print(f"totp_secret = \"{device.secret}\"   # keep it secret: env:NAME or secret:KEY in real directories")
    return 0


def _totp_code(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        device = TOTPDevice(args.secret)
    except ConfigurationError as exc:
        parser.error(str(exc))
    print(device.code_at(time.time()))
    return 0


def _keys_new(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # AWS's shape: a 20-character id starting AKIA, a 40-character secret, both from the CSPRNG.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret = secrets.token_urlsafe(30)[:40]
    name = f"{args.user}-{key_id[-4:].lower()}"
    print(f"# In the directory file, under [users.{args.user}] (the secret stays out of version control):")
    print(f'access_keys = [{{ id = "{key_id}", secret = "secret:{name}" }}]')
    print("# In the secrets file that [settings] secrets_file names (TOML):")
    print(f'{name} = "{secret}"')
    return 0


def _token_mint(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .._iam import IAM
    from ..testing import web_identity_token

    try:
        iam = IAM.from_file(args.directory)
        claims = dict(_claim(text) for text in args.claim)
        key = _private_key(args.key) if args.key else None
        algorithm = args.algorithm or (_algorithm_for(key) if key is not None else None)
        print(web_identity_token(iam, provider=args.provider, subject=args.sub, claims=claims, ttl=args.ttl,
                                 key=key, algorithm=algorithm, kid=args.kid))
    except (ConfigurationError, LookupError, ValueError, OSError, TypeError) as exc:
        print(f"error: {str(exc).replace('pass key=', 'give its private key with --key PEM')}", file=sys.stderr)
        return 1
    return 0


def _claim(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--claim takes NAME=VALUE, not {text!r}")
    return name, value


def _algorithm_for(key: Any) -> str:
    """The usual JWS algorithm of a private key's type (``--algorithm`` chooses another)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}.get(key.curve.key_size, "ES256")
    return "RS256"


def _private_key(path: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    with open(path, "rb") as handle:
        return load_pem_private_key(handle.read(), password=None)
