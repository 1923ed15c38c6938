"""``iam-middleware test`` and the pytest helper: the demo's worked example passes, a wrong expectation fails with
the decision's explanation, JUnit XML for CI, and malformed files stop the run (exit 2) before any case."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from iam_middleware.cli import main
from iam_middleware.policytest import Case, CaseFileError, check, collect

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy-tests"
DEMO = ROOT / "examples" / "iam.toml"


@pytest.mark.parametrize("case", collect(EXAMPLE), ids=lambda case: case.id)
def test_the_demos_policy_tests_pass_inside_a_pytest_suite(case: Case) -> None:
    check(case)


def _file(tmp_path: Path, cases: str, head: str = f'directory = "{DEMO}"\n') -> Path:
    path = tmp_path / "cases.toml"
    path.write_text(head + cases)
    return path


WRONG = '''
[[case]]
name = "alice deletes"
principal = "alice"
action = "orders:DeleteOrder"
resource = "arn:app:orders::111122223333:order/42"
expect = "Allowed"

[[case]]
name = "alice reads, by another statement"
principal = "alice"
action = "orders:GetOrder"
resource = "arn:app:orders::111122223333:order/42"
expect = "Allowed"
sid = "AllOrders"

[[case]]
name = "alice reads"
principal = "alice"
action = "orders:GetOrder"
resource = "arn:app:orders::111122223333:order/42"
expect = "Allowed"
'''


def test_a_failing_case_is_reported_with_the_decisions_explanation(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, WRONG)
    assert main(["test", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path} FF." in out
    assert "expected Allowed, got ImplicitlyDenied:\nUser: arn:app:iam::111122223333:user/alice is not authorized " \
           "to perform: orders:DeleteOrder" in out
    assert "decided by other statements than Sid 'AllOrders':" in out and "OrdersReadOnly  ReadOrders" in out
    assert out.rstrip().endswith("2 failed, 1 passed in " + out.rstrip().split(" in ")[-1])
    with pytest.raises(AssertionError, match="cases.toml::alice deletes: expected Allowed, got ImplicitlyDenied"):
        check(collect(path)[0])


def test_junit_xml_has_a_testcase_per_case_and_a_failure_for_each_failing_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(_file(tmp_path, WRONG)), str(EXAMPLE), "--format", "junit"]) == 1
    root = ElementTree.fromstring(capsys.readouterr().out)
    assert root.get("tests") == "13" and root.get("failures") == "2"
    suite = root.findall("testsuite")[0]
    failures = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failures == ["alice deletes", "alice reads, by another statement"]


def test_a_file_without_a_directory_takes_the_one_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, WRONG.rsplit("\n\n", 1)[1], head="")  # the last case ("alice reads") alone
    assert main(["test", str(path)]) == 2
    assert "no directory" in capsys.readouterr().err
    assert main(["test", str(path), "--directory", str(DEMO)]) == 0


@pytest.mark.parametrize(("case", "message"), [
    ('[[case]]\nname = "x"\nprincipal = "alice"\naction = "a:B"\nresource = "*"\nexpect = "Allowed"\nactoin = "x"\n',
     "unknown field 'actoin'"),
    ('[[case]]\nname = "x"\nprincipal = "alice"\naction = "a:B"\nresource = "*"\nexpect = "allowed"\n',
     "'expect' must be one of"),
    ('[[case]]\nname = "x"\nprincipal = "alice"\naction = "a:B"\nmethod = "GET"\nexpect = "Allowed"\n',
     "give 'action' and 'resource', or 'method' and 'path'"),
    ('[[case]]\nname = "x"\nprincipal = "alice"\naction = "a:B"\nresource = "*"\nexpect = "Denied"\nsid = "S"\n',
     "nothing decides an implicit deny"),
    ('[[case]]\nname = "x"\nprincipal = "mallory"\naction = "a:B"\nresource = "*"\nexpect = "Denied"\n',
     "no principal named 'mallory'"),
    ('[[case]]\nname = "x"\nprincipal = "alice"\naction = "a:B"\nresource = "*"\nexpect = "Denied"\n'
     'context = { "k" = { "nested" = 1 } }\n', "context key 'k' must be"),
    ('[[case]]\nname = "x"\nprincipal = "alice"\naction = "a:B"\nresource = "*"\nexpect = "Denied"\n' * 2,
     "two cases are named 'x'"),
    ("", "no cases"),
    ("[[case", "not valid TOML"),
])
def test_a_malformed_file_stops_the_run_with_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       case: str, message: str) -> None:
    path = _file(tmp_path, case)
    assert main(["test", str(path), str(EXAMPLE)]) == 2
    assert message in capsys.readouterr().err
    if "mallory" not in message:
        with pytest.raises(CaseFileError, match=re.escape(message)):
            collect(path)


def test_a_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(tmp_path / "none")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
