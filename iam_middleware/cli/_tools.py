"""Helpers for directory authors: ``hash-password`` and ``totp new`` / ``totp code``."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from .._exceptions import ConfigurationError, OTPError
from ..authenticators._passwords import hash_password
from ..authenticators._totp import TOTPDevice, TOTPVerifier, qr_svg, qr_terminal
from ..state import MemoryStore

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    hasher = commands.add_parser("hash-password", help="hash a password for the directory's password_hash")
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


def _hash(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
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
