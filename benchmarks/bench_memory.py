"""Memory at scale: the resident size of a process serving 10,000 principals of 10 statements each, every one
compiled and decided once, with the caches filled to their bounds.

Run on demand: ``python benchmarks/bench_memory.py [--distinct]`` (about a minute on two cores). Each step runs in
this process and reports the resident set size (``VmRSS``) after it, so the table shows what each part costs:

- the interpreter with the package and the web stack imported (the baseline);
- the directory loaded and validated (10,000 users, one 10-statement inline policy each, 100 groups). By default the
  inline policies follow five templates (per-user resources through ``${aws:username}``, as per-user policies are
  usually written), so equal statements are compiled once and shared; ``--distinct`` gives every user statements of
  its own (each with a Sid naming the user), the case where nothing can be shared;
- every user's layers compiled and one decision made for each (the authorizer cache at 10,000 entries, its bound);
- 10,000 distinct outside tokens verified and mapped (the bearer-principal and verified-token caches at their
  10,000-entry bounds);
- 10,000 distinct allowed requests remembered by the middleware (the recent-decisions cache at its bound).

The goal (issue 11) is under 150 MB for the whole.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import time
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from iam_middleware import IAM, IAMMiddleware, permission
from iam_middleware._principal import CredentialKind
from iam_middleware._request import RequestView

ROOT = Path(__file__).resolve().parent.parent
USERS = 10_000
ACCOUNT = "111122223333"
SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"
SERVICES = ("orders", "invoices", "shipments", "reports", "users")


def rss_mb() -> float:
    """This process's resident set size, in MB (Linux ``/proc``)."""
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match is not None
    return int(match.group(1)) / 1024


DISTINCT = False


def statements(n: int) -> list[dict[str, Any]]:
    """Ten statements of the shapes real policies have: wildcards, variables, conditions, a deny."""
    service = SERVICES[n % len(SERVICES)]
    listed: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": f"{service}:Get*", "Resource": f"arn:app:{service}::{ACCOUNT}:item/*"},
        {"Effect": "Allow", "Action": [f"{service}:List*", f"{service}:Describe*"], "Resource": "*"},
        {"Effect": "Allow", "Action": f"{service}:Put*",
         "Resource": f"arn:app:{service}::{ACCOUNT}:item/${{aws:username}}/*"},
        {"Effect": "Allow", "Action": f"{service}:Delete*", "Resource": f"arn:app:{service}::{ACCOUNT}:item/*",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
        {"Effect": "Allow", "Action": "reports:Run", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}},
        {"Effect": "Allow", "Action": "users:GetProfile",
         "Resource": f"arn:app:users::{ACCOUNT}:user/${{aws:username}}"},
        {"Effect": "Allow", "Action": f"{service}:Tag*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": ["blue", "red"]}}},
        {"Effect": "Allow", "Action": f"{service}:Export", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
        {"Effect": "Allow", "Action": f"{service}:Count", "Resource": "*",
         "Condition": {"NumericLessThanEquals": {f"{service}:Limit": "100"}}},
        {"Effect": "Deny", "Action": f"{service}:Delete*", "Resource": f"arn:app:{service}::{ACCOUNT}:item/archived-*"},
    ]
    return [{"Sid": f"U{n}S{i}", **statement} for i, statement in enumerate(listed)] if DISTINCT else listed


def directory() -> dict[str, Any]:
    users = {
        f"u{n:05d}": {"groups": [f"g{n % 100:03d}"], "tags": {"team": ("blue", "red", "green")[n % 3]},
                      "inline": {"own": {"Version": "2012-10-17", "Statement": statements(n)}}}
        for n in range(USERS)
    }
    partner_trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "idp.example"}, "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {"idp.example:aud": "orders-api"}}}]}
    return {
        "settings": {"partition": "app", "service": "orders", "web_identity": [
            {"name": "idp.example", "issuer": "https://idp.example", "audiences": ["orders-api"],
             "algorithms": ["HS256"], "hmac_secret": SECRET, "role": "partner"}]},
        "accounts": {ACCOUNT: {"name": "acme"}},
        "groups": {f"g{n:03d}": {} for n in range(100)},
        "users": users,
        "roles": {"partner": {"trust_policy": {"document": partner_trust}, "inline": {"read": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:Get*", "Resource": "*"}]}}}},
    }


@permission("orders:GetItem", resource="arn:app:orders::{account}:item/{item_id}")
async def get_item(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def remember_requests(iam: IAM, token: str) -> int:
    """Send 10,000 distinct allowed requests through the middleware; returns the recent-decisions cache size."""
    app = IAMMiddleware(Starlette(routes=[Route("/items/{item_id}", get_item)]), iam=iam)
    app.audit()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"unexpected status {message['status']}")

    async def run() -> None:
        for n in range(USERS):
            path = f"/items/{n}"
            scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
                     "root_path": "", "scheme": "https", "client": ("127.0.0.1", 5000),
                     "headers": [(b"host", b"api.example"), (b"authorization", f"Bearer {token}".encode())]}
            await app(scope, receive, send)

    asyncio.run(run())
    return len(app._recent._entries)


def main() -> None:
    global DISTINCT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", action="store_true", help="every user's statements differ (nothing shared)")
    DISTINCT = parser.parse_args().distinct
    gc.collect()
    rows = [("interpreter, package and web stack imported", rss_mb(), "")]
    start = time.perf_counter()
    iam = IAM.from_dict(directory(), base_dir=ROOT)
    gc.collect()
    took = f"{time.perf_counter() - start:.1f} s"
    rows.append((f"directory loaded: {USERS:,} users x 10 statements", rss_mb(), took))
    now = time.time()
    view = RequestView(method="GET", raw_path=b"/", scheme="https", client_host="10.1.2.3")
    snapshot = iam.snapshot
    start = time.perf_counter()
    for user in snapshot.users.values():
        principal = snapshot.user_principal(user, CredentialKind.ACCESS_KEY)
        iam.authorize(principal, "orders:GetItem", f"arn:app:orders::{ACCOUNT}:item/1", request=view, now=now)
    gc.collect()
    rows.append(("every user compiled and decided once (authorizers: 10,000)", rss_mb(),
                 f"{time.perf_counter() - start:.1f} s"))
    tokens = [jwt.encode({"iss": "https://idp.example", "aud": "orders-api", "sub": f"p-{n}", "iat": int(now),
                          "exp": int(now) + 3600}, SECRET, algorithm="HS256") for n in range(USERS)]
    start = time.perf_counter()
    for token in tokens:
        iam.credentials.from_token(token, now=now)
    gc.collect()
    rows.append((f"{USERS:,} outside tokens verified and mapped (bearer caches full)", rss_mb(),
                 f"{time.perf_counter() - start:.1f} s"))
    start = time.perf_counter()
    remembered = remember_requests(iam, tokens[0])
    gc.collect()
    rows.append((f"{remembered:,} distinct allowed requests remembered", rss_mb(),
                 f"{time.perf_counter() - start:.1f} s"))
    print(f"{'step':66} {'RSS MB':>8} {'took':>7}")
    for name, mb, took in rows:
        print(f"{name:66} {mb:8.1f} {took:>7}")
    total = rows[-1][1]
    print(f"\nwhole process: {total:.1f} MB (goal under 150 MB: {'PASS' if total < 150 else 'MISS'}); "
          f"over the baseline: {total - rows[0][1]:.1f} MB")


if __name__ == "__main__":
    main()
