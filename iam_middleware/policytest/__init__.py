"""Policy tests: TOML files of cases (principal, action and resource or method and path, context, expected
decision, optionally the deciding Sid), run by ``iam-middleware test`` or inside a pytest suite:

```python
import pytest
from iam_middleware.policytest import check, collect

@pytest.mark.parametrize("case", collect("policy-tests"), ids=lambda case: case.id)
def test_policy(case):
    check(case)
```

The file format is described in ``_cases``; docs/access.md has a worked example for the demo's directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ._cases import Case, CaseFile, CaseFileError, read_case_file
from ._run import Result, Runner

__all__ = ["Case", "CaseFile", "CaseFileError", "Result", "Runner", "case_files", "check", "collect"]

_RUNNER = Runner()


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.toml`` files among ``paths``, folders searched recursively, in a stable order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob("*.toml")))
        elif path.is_file():
            found.append(path)
        else:
            raise CaseFileError(f"{path}: no such file or folder")
    return found


def collect(*paths: str | Path) -> list[Case]:
    """Every case of the files under ``paths`` (read and checked now, so a malformed file fails collection)."""
    return [case for path in case_files(paths) for case in read_case_file(path).cases]


def check(case: Case) -> Result:
    """Decide ``case``; raise AssertionError with the decision's explanation unless it came out as expected."""
    result = _RUNNER.run(CaseFile(case.file, case.directory, case.app, (case,)))[0]
    if not result.passed:
        raise AssertionError(f"{case.id}: {result.detail}")
    return result
