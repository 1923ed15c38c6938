"""What the AuthZEN tests share: the demo directory (examples/iam.toml) with a policy enforcement point added, and a
client that calls the PDP in process (httpx's ASGI transport) as one of the directory's principals."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import httpx

from iam_middleware import IAM
from iam_middleware.authzen import EVALUATION_PATH
from iam_middleware.testing import session_token, sign_request

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOW = 1_800_000_000.0
BASE = "https://pdp.example"
PEP_ADDRESS = "192.0.2.10"
ACCOUNT = "111122223333"
ALICE = f"arn:app:iam::{ACCOUNT}:user/alice"
PARTNER = f"arn:app:iam::{ACCOUNT}:role/partner"

# gateway: the PEP, allowed to ask about every user and role of the account. bob and the role partner may ask about
# themselves only (a subject of type caller); alice@example.com is the spec examples' subject.
EXTRA = """
[policies.AskAboutAcme]
document = { Version = "2012-10-17", Statement = [
    { Effect = "Allow", Action = "iam:SimulatePrincipalPolicy", Resource = [
        "arn:app:iam::111122223333:user/*", "arn:app:iam::111122223333:role/*" ] },
] }

[policies.AskAboutSelf]
document = '''
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy",
                                         "Resource": "arn:app:iam::111122223333:user/${aws:username}"}]}'''

[policies.AskAboutPartner]
document = { Version = "2012-10-17", Statement = [
    { Effect = "Allow", Action = "iam:SimulatePrincipalPolicy", Resource = "arn:app:iam::111122223333:role/partner" },
] }

[policies.SpecDocuments]
document = { Version = "2012-10-17", Statement = [
    { Effect = "Allow", Action = "orders:can_read", Resource = [
        "arn:app:orders::111122223333:account/123", "arn:app:orders::111122223333:todo/1",
        "arn:app:orders::111122223333:document/*" ] },
    { Effect = "Allow", Action = "orders:read", Resource = [
        "arn:app:orders::111122223333:document/1", "arn:app:orders::111122223333:document/3" ] },
] }

[users.gateway]
policies = ["AskAboutAcme"]
access_keys = [{ id = "AKIAGATEWAY000000001", secret = "gateway/secret/0123456789abcdefghij" }]

[users."alice@example.com"]
policies = ["SpecDocuments"]

[users.bob]
policies = ["AskAboutSelf"]

[roles.partner]
policies = ["AskAboutPartner"]
"""


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s tables merged in (lists of names are extended)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def directory(extra: str = EXTRA) -> dict[str, Any]:
    """The demo directory with ``extra`` (TOML) merged in."""
    return merged(tomllib.loads((EXAMPLES / "iam.toml").read_text()), tomllib.loads(extra))


def make_iam(extra: str = EXTRA) -> IAM:
    return IAM.from_dict(directory(extra), base_dir=EXAMPLES, clock=lambda: NOW)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(PEP_ADDRESS, 40000)), base_url=BASE)


async def ask(app: Any, iam: IAM, body: Any, *, who: str | None = "gateway", path: str = EVALUATION_PATH,
              headers: dict[str, str] | None = None) -> httpx.Response:
    """POST ``body`` as JSON to ``path``, with ``who``'s session token (None: no credential)."""
    sent = {"content-type": "application/json", **(headers or {})}
    if who is not None:
        sent["authorization"] = f"Bearer {session_token(iam, who)}"
    async with client(app) as pdp:
        return await pdp.post(path, content=json.dumps(body).encode(), headers=sent)


async def ask_signed(app: Any, iam: IAM, body: bytes, *, path: str = EVALUATION_PATH, tamper: bool = False,
                     **signer: Any) -> httpx.Response:
    """POST ``body`` signed with SigV4 (``signer``: ``user=`` or ``credential=``); ``tamper`` changes the body after
    signing."""
    signed = sign_request(iam, "POST", BASE + path, headers={"content-type": "application/json"}, body=body,
                          **signer)
    async with client(app) as pdp:
        return await pdp.post(path, content=body + b" " if tamper else body, headers=dict(signed.headers))


def decisions(response: httpx.Response) -> list[bool]:
    """The decisions of an Access Evaluations answer, in order."""
    assert response.status_code == 200, response.text
    return [item["decision"] for item in response.json()["evaluations"]]
