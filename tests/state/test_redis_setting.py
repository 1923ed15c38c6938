"""One setting turns shared state on: ``[settings] redis_url``. Two IAMs built from the same file then act as one,
whether it names one server, a cluster or a Sentinel-managed primary."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pyotp
import pytest

from iam_middleware import IAM, ConfigurationError, OTPError
from iam_middleware.state import MemoryStore, RedisStore

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
PASSWORD = "correct horse battery staple"


def _config(**settings: str) -> dict[str, object]:
    data = tomllib.loads((EXAMPLES / "iam.toml").read_text())
    data["settings"].update(settings)
    return data


def test_without_redis_url_state_stays_in_memory() -> None:
    assert isinstance(IAM.from_dict(_config(), base_dir=EXAMPLES).store, MemoryStore)


@pytest.mark.parametrize("url_fixture", ["redis_url", "redis_cluster_url", "redis_sentinel_url"])
def test_redis_url_from_the_environment_shares_single_use_codes(url_fixture: str, request: pytest.FixtureRequest,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    redis_url = request.getfixturevalue(url_fixture)  # one server, a cluster, a Sentinel-managed primary
    monkeypatch.setenv("IAM_TEST_REDIS", redis_url)
    first = IAM.from_dict(_config(redis_url="env:IAM_TEST_REDIS"), base_dir=EXAMPLES)
    second = IAM.from_dict(_config(redis_url="env:IAM_TEST_REDIS"), base_dir=EXAMPLES)
    assert isinstance(first.store, RedisStore) and isinstance(second.store, RedisStore)
    assert redis_url.split("@")[-1] not in repr(first.settings)  # the settings say "redis", not where
    code = pyotp.TOTP("S7OGSI66TRZN23GL34ETDX36DJYB2AJM").now()
    first.login("bob", PASSWORD, code)
    with pytest.raises(OTPError):
        second.login("bob", PASSWORD, code)  # the same code, replayed against "another process"


def test_an_unset_environment_variable_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IAM_TEST_REDIS_UNSET", raising=False)
    with pytest.raises(ConfigurationError, match="IAM_TEST_REDIS_UNSET"):
        IAM.from_dict(_config(redis_url="env:IAM_TEST_REDIS_UNSET"), base_dir=EXAMPLES)
