"""Batch ``simulate`` against an independent evaluator: N cases, each with policies of its own (so compiling them
dominates), decided by ``iam-middleware simulate`` and by the npm package ``@cloud-copilot/iam-simulate`` on the
same input, in the same run. Reports both times and the ratio (target: ours at most 0.5x theirs), and how many
decisions agree.

    npm install --prefix /tmp/iamsim @cloud-copilot/iam-simulate     # once; node is on the machine
    python benchmarks/bench_simulate.py [--cases 3000] [--node-prefix /tmp/iamsim]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from iam_middleware.cli._simulate import simulate_lines

HERE = Path(__file__).resolve().parent
ACCOUNT = "111122223333"
REQUESTS = [
    ("s3:GetObject", "arn:aws:s3:::reports/2026/q1.csv"),
    ("s3:PutObject", "arn:aws:s3:::reports/alice/draft.txt"),
    ("s3:ListBucket", "arn:aws:s3:::reports"),
    ("dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"),
]
ACTIONS = ["s3:GetObject", "s3:Get*", "s3:*", "s3:PutObject", "s3:List*", "dynamodb:GetItem", "dynamodb:*", "*",
           "s3:*Object"]
RESOURCES = ["*", "arn:aws:s3:::reports/*", "arn:aws:s3:::reports", "arn:aws:s3:::reports/${aws:username}/*",
             "arn:aws:s3:::*/2026/*", f"arn:aws:dynamodb:*:{ACCOUNT}:table/*", "arn:aws:s3:::other/*"]
CONDITIONS = [
    None,
    {"StringEquals": {"aws:username": "alice"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"StringLike": {"aws:username": "a*"}},
]


def _statement(rng: random.Random) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": rng.choice(["Allow", "Allow", "Allow", "Deny"]),
                                 "Action": rng.sample(ACTIONS, rng.randint(1, 3)),
                                 "Resource": rng.sample(RESOURCES, rng.randint(1, 2))}
    condition = rng.choice(CONDITIONS)
    if condition is not None:
        statement["Condition"] = condition
    return statement


def cases(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        action, resource = rng.choice(REQUESTS)
        policies = [{"Version": "2012-10-17", "Statement": [_statement(rng) for _ in range(rng.randint(1, 4))]}
                    for _ in range(rng.randint(1, 2))]
        context = {"aws:username": rng.choice(["alice", "bob"]), "aws:SourceIp": rng.choice(["10.1.2.3", "192.0.2.9"]),
                   "aws:SecureTransport": rng.choice(["true", "false"])}
        out.append({"id": f"c{i}", "principal": f"arn:aws:iam::{ACCOUNT}:user/{context['aws:username']}",
                    "action": action, "resource": resource, "context": context, "identity_policies": policies})
    return out


def ours(batch: list[dict[str, Any]]) -> tuple[float, list[str]]:
    lines = [json.dumps(case) for case in batch]
    start = time.perf_counter()
    decisions = [result["decision"] for result in simulate_lines(lines)]
    return time.perf_counter() - start, decisions


def theirs(batch: list[dict[str, Any]], prefix: Path) -> tuple[float, list[str]] | None:
    node = shutil.which("node")
    if node is None or not (prefix / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
        return None
    simulations = [{
        "request": {"principal": case["principal"], "action": case["action"],
                    "resource": {"resource": case["resource"], "accountId": ACCOUNT},
                    "contextVariables": case["context"]},
        "identityPolicies": [{"name": f"p{i}", "policy": p} for i, p in enumerate(case["identity_policies"])],
        "serviceControlPolicies": [], "resourceControlPolicies": [],
    } for case in batch]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(simulations, handle)
    result = subprocess.run([node, str(HERE / "node" / "simulate.mjs"), handle.name], capture_output=True, text=True,
                            cwd=prefix, check=True, timeout=900)
    Path(handle.name).unlink()
    report = json.loads(result.stdout)
    return float(report["seconds"]), list(report["decisions"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--node-prefix", type=Path, default=Path("/tmp/iamsim"))
    args = parser.parse_args()
    batch = cases(args.cases)
    mine, decisions = ours(batch)
    print(f"iam-middleware simulate: {args.cases} cases in {mine:.3f} s ({mine / args.cases * 1e6:.0f} µs per case)")
    other = theirs(batch, args.node_prefix)
    if other is None:
        print("the node evaluator is not installed (see the module docstring): no ratio")
        return
    seconds, their_decisions = other
    normalized = ["Allowed" if d == "Allowed" else "Denied" for d in decisions]
    theirs_normalized = ["Allowed" if d == "Allowed" else "Denied" for d in their_decisions]
    agree = sum(1 for a, b in zip(normalized, theirs_normalized, strict=True) if a == b)
    print(f"@cloud-copilot/iam-simulate: {seconds:.3f} s ({seconds / args.cases * 1e6:.0f} µs per case)")
    print(f"ratio ours/theirs: {mine / seconds:.2f}x (target <= 0.5x); allow/deny agree on {agree} of {args.cases}")


if __name__ == "__main__":
    main()
