"""``iam-middleware init [DIR]``: a working starting directory for your app, refusing to overwrite anything.

Writes ``iam.toml`` (an account, an admin user with a password hash, a TOTP device and an access key, a readers
group, a role with its trust policy, a ``[[routes]]`` example, comments), ``policies/*.json`` in IAM's own JSON, and
``secrets.toml`` (the session secret, the TOTP seed and the key's secret: keep it out of version control). Prints
the admin's password and one-time-code enrollment once; they are not stored anywhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from ..authenticators._totp import new_device, provisioning_uri, qr_terminal
from ..passwords import hash_password

__all__ = ["add_parser"]

_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("init", help="write a starting directory (iam.toml, policies, secrets)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", default=".", help="where to write (default: here)")
    parser.add_argument("--account", default="111122223333", help="the account id (12 digits)")
    parser.add_argument("--admin", default="admin", help="the admin user's name")
    parser.add_argument("--service", default="api", help="your API's service name (actions are SERVICE:Action)")
    parser.add_argument("--no-qr", action="store_true", help="do not draw the enrollment QR code")
    parser.set_defaults(run=run)


def _files(args: argparse.Namespace, password_hash: str, key_id: str) -> dict[str, str]:
    service, account, admin = args.service, args.account, args.admin
    policies = {
        "policies/admin.json": {"Version": "2012-10-17", "Statement": [
            {"Sid": "Everything", "Effect": "Allow", "Action": f"{service}:*", "Resource": "*"},
            {"Sid": "AssumeTheServiceRole", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Resource": f"arn:app:iam::{account}:role/service"}]},
        "policies/readers.json": {"Version": "2012-10-17", "Statement": [
            {"Sid": "ReadItems", "Effect": "Allow", "Action": [f"{service}:Get*", f"{service}:List*"],
             "Resource": f"arn:app:{service}::{account}:item/*"}]},
        "policies/writes-need-mfa.json": {"Version": "2012-10-17", "Statement": [
            # A guardrail must allow too (as an SCP must): what identity policies grant, except the Deny below.
            {"Sid": "AllowWhatPoliciesGrant", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "NoWritesWithoutMFA", "Effect": "Deny", "Resource": "*",
             "NotAction": [f"{service}:Get*", f"{service}:List*", "sts:*"],
             "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]},
        "policies/service-trust.json": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AdminMayAssume", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:app:iam::{account}:user/{admin}"}}]},
    }
    files = {name: json.dumps(doc, indent=2) + "\n" for name, doc in policies.items()}
    files["iam.toml"] = f'''# The directory of your API: who may do what. Check it: `iam-middleware check iam.toml`.
# Secrets are named (secret:KEY) and live in secrets.toml, which stays out of version control.

[settings]
partition = "app"                       # ARNs: arn:app:iam::{account}:user/{admin}
service = "{service}"                          # SigV4 scope: <date>/local/{service}/aws4_request
regions = ["local"]
secrets_file = "secrets.toml"
session_secret = "secret:session-secret"
allowed_origins = ["http://127.0.0.1:8000", "http://localhost:8000"]   # pages that may use the session cookie

[accounts.{account}]
name = "main"
guardrails = ["WritesNeedMFA"]           # over every principal of the account, like an SCP

[policies.Admin]
file = "policies/admin.json"

[policies.Readers]
file = "policies/readers.json"

[policies.WritesNeedMFA]
file = "policies/writes-need-mfa.json"

[groups.readers]
policies = ["Readers"]

[users.{admin}]
groups = ["readers"]
policies = ["Admin"]
password_hash = "{password_hash}"
totp_secret = "secret:{admin}-totp"
access_keys = [{{ id = "{key_id}", secret = "secret:{admin}-key" }}]

[roles.service]
# Assumed by {admin} through the token service (POST /sts/AssumeRole): temporary credentials for automation.
trust_policy = {{ file = "policies/service-trust.json" }}
policies = ["Readers"]
max_session_duration = 3600

# Routes of an app you do not want to touch (Starlette, FastAPI, Flask, Django, or a gateway), by method and path.
# Routes declared in code (@permission, Authorize, @guard.permission) need no line here.
[[routes]]
path = "/health"
public = true

[[routes]]
method = "GET"
path = "/items/{{item_id}}"
action = "{service}:GetItem"
resource = "arn:app:{service}::{{account}}:item/{{item_id}}"
'''
    return files


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not _NAME.fullmatch(args.admin) or not re.fullmatch(r"\d{12}", args.account):
        parser.error("--admin takes an IAM user name and --account 12 digits")
    if not re.fullmatch(r"[a-z0-9-]{1,64}", args.service):
        parser.error("--service takes lower-case letters, digits and hyphens")
    target = Path(args.directory)
    password = secrets.token_urlsafe(18)
    device = new_device()
    key_id = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    files = _files(args, hash_password(password), key_id)
    files["secrets.toml"] = (
        "# Secrets named in iam.toml (secret:KEY). Keep this file out of version control.\n"
        f'session-secret = "{secrets.token_urlsafe(48)}"\n'
        f'{args.admin}-totp = "{device.secret}"\n'
        f'{args.admin}-key = "{secrets.token_urlsafe(30)[:40]}"\n'
    )
    existing = [name for name in files if (target / name).exists()]
    if existing:
        print(f"error: {target} already has {', '.join(sorted(existing))}; nothing was written (init never "
              "overwrites)", file=sys.stderr)
        return 1
    for name, text in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.chmod(target / "secrets.toml", 0o600)
    uri = provisioning_uri(device, args.admin, "iam-middleware")
    out = sys.stdout
    out.write(f"Wrote {target / 'iam.toml'}, {target / 'policies'}/ and {target / 'secrets.toml'} (mode 600).\n\n")
    out.write(f"User {args.admin}'s password (shown once): {password}\n")
    out.write(f"One-time codes: add this to an authenticator app (shown once):\n{uri}\n")
    if not args.no_qr:
        try:
            out.write(qr_terminal(uri))
        except ModuleNotFoundError:
            out.write("(pip install 'iam-middleware[qr]' to draw it as a QR code)\n")
    out.write("\nNext: iam-middleware check iam.toml --app your_module:app\n"
              "      add secrets.toml to .gitignore\n")
    return 0
