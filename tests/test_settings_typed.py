"""Settings are validated, not coerced: every setting has a declared type and range, anything else is refused with
the setting named, and every problem of the file (settings and directory alike) is reported at once."""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from iam_middleware import IAM, AuthenticationError, ConfigurationError, RequestView, Settings
from iam_middleware.testing import sign_request

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def settings_problems(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping(raw)
    return str(info.value)


@pytest.mark.parametrize(("key", "value"), [
    ("allow_unsigned_payload", "false"), ("sigv4_replay_protection", "no"), ("s3_style_paths", 1),
    ("sigv4_verbatim_fallback", "true"), ("regions", "local"), ("regions", []), ("regions", ["local", 3]),
    ("session_ttl", "1h"), ("session_ttl", 10), ("session_ttl", 3600.5), ("session_ttl", True),
    ("max_skew", math.nan), ("max_skew", -1), ("login_max_failures", 0), ("login_lockout", "15m"),
    ("sts_max_duration", 60), ("session_cache_seconds", 3600), ("partition", ""), ("service", 7),
    ("allowed_origins", "http://a.example"), ("trusted_proxies", ["not-a-network"]),
])
def test_a_value_of_the_wrong_type_or_range_is_refused_with_its_setting_named(key: str, value: Any) -> None:
    assert f"settings.{key}:" in settings_problems({key: value})


def test_a_string_false_never_switches_a_security_option_on() -> None:
    for key in ("allow_unsigned_payload", "sigv4_replay_protection", "sigv4_verbatim_fallback", "s3_style_paths"):
        with pytest.raises(ConfigurationError):
            Settings.from_mapping({key: "false"})
        assert getattr(Settings.from_mapping({key: False}), key) is False
        assert getattr(Settings.from_mapping({key: True}), key) is True


def test_well_typed_values_are_taken_as_given() -> None:
    settings = Settings.from_mapping({"regions": ["eu-west-1", "local"], "session_ttl": 7200, "max_skew": 60,
                                      "login_lockout": 30.5, "allowed_origins": ["https://app.example/"]})
    assert settings.regions == ("eu-west-1", "local") and settings.session_ttl == 7200 and settings.max_skew == 60.0
    assert settings.login_lockout == 30.5 and settings.allowed_origins == ("https://app.example",)


def test_every_problem_is_reported_at_once_settings_and_directory_alike() -> None:
    data = copy.deepcopy(tomllib.loads((EXAMPLES / "iam.toml").read_text()))
    data["settings"].update(regions="local", session_ttl="1h", allow_unsigned_payload="false", poll_interval=2)
    data["users"]["alice"]["groups"] = ["nobody"]
    with pytest.raises(ConfigurationError) as info:
        IAM.from_dict(data, base_dir=EXAMPLES)
    message = str(info.value)
    for place in ("settings.regions", "settings.session_ttl", "settings.allow_unsigned_payload",
                  "settings.poll_interval", "users.alice.groups[0]"):
        assert place in message, place


@pytest.mark.parametrize(("key", "value"), [("algorithms", "RS256"), ("audiences", "orders-api"),
                                            ("leeway", "60"), ("leeway", 3600)])
def test_identity_provider_fields_are_typed_too(key: str, value: Any) -> None:
    provider = {"issuer": "https://idp.example", "role": "partner", "hmac_secret": "x" * 32, "algorithms": ["HS256"],
                key: value}
    assert f"web_identity[0].{key}" in settings_problems({"web_identity": [provider]})


def test_allowed_hosts_binds_signatures_to_this_deployment() -> None:

    data = copy.deepcopy(tomllib.loads((EXAMPLES / "iam.toml").read_text()))
    data["settings"]["allowed_hosts"] = ["api.example.com"]
    iam = IAM.from_dict(data, base_dir=EXAMPLES)
    for host, allowed in (("api.example.com", True), ("staging.example.com", False)):
        signed = sign_request(iam, "GET", f"https://{host}/orders/1", user="alice")
        headers = {"host": host, **{k.lower(): v for k, v in signed.headers.items()}}
        view = RequestView("GET", b"/orders/1", headers=tuple(headers.items()), scheme="https", body=b"")
        if allowed:
            assert iam.authenticate(view) is not None
        else:
            with pytest.raises(AuthenticationError) as refused:
                iam.authenticate(view)
            assert "Host" in refused.value.message
    assert "settings.allowed_hosts" in settings_problems({"allowed_hosts": []})
