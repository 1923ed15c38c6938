"""The access report (``iam-middleware access``) and its diff on a generated directory: 200 principals (160 users in
groups, with tags, own policies and some permissions boundaries; 38 roles; 2 web-identity providers' roles) against
100 routes in ``[[routes]]`` over ten services, with MFA, IP, tag, time and ``${aws:username}`` conditions, a
guardrail, and Deny statements on archived ids.

    python benchmarks/bench_access.py [--principals 200] [--routes 100] [--keep DIR]

Prints the wall time of the whole ``access`` command (loading the directory included, output to a string), of
``access diff`` between the directory and a changed copy, and how the cells came out. Target (issue 14): the report
under 5 s, the diff under 10 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from iam_middleware.cli import main

ACCOUNT = "111122223333"
SERVICES = ["orders", "invoices", "customers", "shipments", "products", "payments", "reports", "tickets", "teams",
            "audits"]
VERBS = [("GET", "/{s}/{{id}}", "Get{S}", True), ("GET", "/{s}", "List{S}s", False),
         ("POST", "/{s}", "Create{S}", False), ("PUT", "/{s}/{{id}}", "Update{S}", True),
         ("DELETE", "/{s}/{{id}}", "Delete{S}", True), ("GET", "/{s}/{{id}}/history", "Get{S}History", True),
         ("POST", "/{s}/{{id}}/archive", "Archive{S}", True), ("GET", "/{s}/{{id}}/owner", "Get{S}Owner", True),
         ("POST", "/{s}/{{id}}/approve", "Approve{S}", True), ("GET", "/{s}/search", "Search{S}s", False)]
TEAMS = ["blue", "red", "green", "gold"]


def _policies(rng: random.Random, widen: bool) -> dict[str, Any]:
    policies: dict[str, Any] = {}
    for service in SERVICES:
        arn = f"arn:app:{service}::{ACCOUNT}:item"
        read = [f"{service}:Get*", f"{service}:List*", f"{service}:Search*"]
        if widen and service == "orders":
            read.append(f"{service}:Delete*")  # the change under review: readers of orders may delete them
        policies[f"{service}-read"] = [{"Sid": "Read", "Effect": "Allow", "Action": read, "Resource": "*"}]
        policies[f"{service}-write"] = [
            {"Sid": "WriteWithMFA", "Effect": "Allow", "Action": [f"{service}:Create*", f"{service}:Update*",
                                                                  f"{service}:Delete*", f"{service}:Archive*"],
             "Resource": f"{arn}/*",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"},
                           "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}},
            {"Sid": "KeepArchived", "Effect": "Deny", "Action": f"{service}:Delete*",
             "Resource": f"arn:app:{service}:*:*:item/archived-*"}]
        policies[f"{service}-own"] = [
            {"Sid": "OwnItems", "Effect": "Allow", "Action": f"{service}:*",
             "Resource": f"{arn}/${{aws:username}}-*"}]
        policies[f"{service}-team"] = [
            {"Sid": "TeamApprovals", "Effect": "Allow", "Action": f"{service}:Approve*", "Resource": f"{arn}/*",
             "Condition": {"StringEquals": {"aws:PrincipalTag/team": rng.sample(TEAMS, 2)},
                           "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}}]
    policies["Guardrail"] = [
        {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoOldWrites", "Effect": "Deny", "Action": ["*:Delete*", "*:Archive*"], "Resource": "*",
         "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}}}]
    return policies


def directory(principals: int, routes: int, *, widen: bool = False, seed: int = 7) -> str:
    """The directory file's text: ``principals`` in all (2 web identities, a fifth of the rest roles); ``widen``
    makes the change the diff is timed on."""
    rng = random.Random(seed)
    policies = _policies(rng, widen)
    lines = ['[settings]', 'partition = "app"', 'service = "orders"', 'regions = ["local"]',
             'session_secret = "bench-session-secret-0123456789abcdef0123456789"', ""]
    for n in range(2):
        lines += ["[[settings.web_identity]]", f'name = "idp{n}.example"', f'issuer = "https://idp{n}.example"',
                  'audiences = ["api"]', 'algorithms = ["HS256"]',
                  f'hmac_secret = "bench-idp-secret-{n}-0123456789abcdef0123456789"', f'role = "role{n}"',
                  'tag_claims = { team = "team" }', ""]
    lines += [f"[accounts.{ACCOUNT}]", 'guardrails = ["Guardrail"]', ""]
    for name, statements in policies.items():
        document = json.dumps({"Version": "2012-10-17", "Statement": statements})
        lines += [f'[policies."{name}"]', f"document = {json.dumps(document)}", ""]
    for g, service in enumerate(SERVICES):
        lines += [f"[groups.g{g}]", f'policies = ["{service}-read", "{service}-team"]', ""]
    roles = (principals - 2) // 5
    for u in range(principals - 2 - roles):
        service = SERVICES[u % len(SERVICES)]
        groups = sorted({f"g{rng.randrange(len(SERVICES))}" for _ in range(rng.randint(1, 3))})
        own = [f"{service}-write"] + ([f"{service}-own"] if u % 3 == 0 else [])
        lines += [f"[users.user{u}]", f"groups = {json.dumps(groups)}", f"policies = {json.dumps(own)}",
                  f'tags = {{ team = "{rng.choice(TEAMS)}" }}']
        if u % 7 == 0:
            boundary = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": [f"{service}:*", f"{SERVICES[(u + 1) % 10]}:Get*"], "Resource": "*"}]}
            lines.append(f"boundary = {{ document = {json.dumps(json.dumps(boundary))} }}")
        lines.append("")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:app:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
    for r in range(roles):
        service = SERVICES[r % len(SERVICES)]
        chosen = [f"{service}-read", f"{service}-write", f"{SERVICES[(r + 3) % 10]}-read"]
        lines += [f"[roles.role{r}]", f"policies = {json.dumps(chosen)}",
                  f"trust_policy = {{ document = {json.dumps(json.dumps(trust))} }}", ""]
    for n in range(routes):
        method, path, action, has_id = VERBS[n % len(VERBS)]
        service = SERVICES[(n // len(VERBS)) % len(SERVICES)]
        suffix = "" if n < len(VERBS) * len(SERVICES) else f"/v{n}"
        resource = f"arn:app:{service}::{{account}}:item/" + ("{id}" if has_id else "*")
        lines += ["[[routes]]", f'method = "{method}"',
                  f'path = "{suffix}{path.format(s=service)}"',
                  f'action = "{service}:{action.format(S=service.title().rstrip("s"))}"',
                  f'resource = "{resource}"', ""]
    return "\n".join(lines)


def _timed(argv: list[str]) -> tuple[float, str, int]:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return time.perf_counter() - start, out.getvalue(), status


def run(principals: int, routes: int, keep: str | None) -> None:
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-access-"))
    folder.mkdir(parents=True, exist_ok=True)
    old = folder / "iam.toml"
    old.write_text(directory(principals, routes))
    new = folder / "iam-new.toml"
    new.write_text(directory(principals, routes, widen=True))
    seconds, text, status = _timed(["access", "--directory", str(old), "--format", "json"])
    report = json.loads(text)
    outcomes = Counter(cell["outcome"] for cell in report["cells"])
    print(f"directory: {folder}  principals: {len(report['principals'])}  routes: {len(report['routes'])}  "
          f"cells: {len(report['cells'])}")
    print("outcomes: " + ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())))
    table_seconds, _, _ = _timed(["access", "--directory", str(old)])
    print(f"access --format json: {seconds:.2f} s (exit {status}); table: {table_seconds:.2f} s  (target < 5 s)")
    diff_seconds, diff_text, diff_status = _timed(["access", "diff", str(old), str(new), "--format", "json"])
    findings = json.loads(diff_text)["findings"]
    kinds = Counter(finding["kind"] for finding in findings)
    print(f"access diff: {diff_seconds:.2f} s (exit {diff_status}; findings: "
          + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) + ")  (target < 10 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--principals", type=int, default=200)
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--keep", metavar="DIR", help="write the generated directories here and keep them")
    args = parser.parse_args()
    run(args.principals, args.routes, args.keep)
