"""Names are unique per account, whatever their case or path (IAM identifiers: "names must be unique within the
account ... not distinguished by case"). Two roles named alike would share one session ARN (assumed-role ARNs
carry no path) and one compiled-permissions cache entry: whichever session came first would decide for both."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from iam_middleware import IAM, ConfigurationError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def demo() -> dict[str, Any]:
    return copy.deepcopy(tomllib.loads((EXAMPLES / "iam.toml").read_text()))


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as info:
        IAM.from_dict(data, base_dir=EXAMPLES)
    return str(info.value)


def test_two_roles_with_one_name_in_different_paths_are_refused() -> None:
    data = demo()
    partner = data["roles"]["partner"]
    data["roles"]["partner"] = {**partner, "path": "/prod/"}
    data["roles"]["partner-dev"] = {**copy.deepcopy(partner), "name": "partner", "path": "/dev/"}
    message = problems(data)
    assert "roles.partner-dev" in message and "'partner' already exists" in message and "roles.partner" in message


def test_names_differing_only_in_case_are_refused() -> None:
    data = demo()
    data["users"]["Alice"] = {**copy.deepcopy(data["users"]["alice"]), "access_keys": []}
    data["groups"]["Readers"] = copy.deepcopy(data["groups"]["readers"])
    data["policies"]["ordersreadonly"] = copy.deepcopy(data["policies"]["OrdersReadOnly"])
    message = problems(data)
    assert "users.Alice" in message and "groups.Readers" in message and "policies.ordersreadonly" in message


def test_the_demo_directory_has_unique_names() -> None:
    assert IAM.from_dict(demo(), base_dir=EXAMPLES).snapshot.role("partner") is not None


def test_a_policy_that_fails_is_reported_once_not_at_every_reference() -> None:
    data = demo()
    data["policies"]["OrdersReadOnly"] = {"document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder"}]}}
    message = problems(data)
    assert "policies.OrdersReadOnly" in message and "Resource" in message
    assert "does not exist" not in message  # groups.readers attaches it: no second, misleading problem
