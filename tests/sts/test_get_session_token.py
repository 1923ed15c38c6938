"""GetSessionToken: a request signed with a long-term key (real botocore SigV4) plus a TOTP code -> ASIA credentials
that carry MFA, used in turn by botocore with X-Amz-Security-Token."""

from __future__ import annotations

import pytest

from iam_middleware._exceptions import SignatureError
from iam_middleware._iam import IAM
from iam_middleware._principal import CredentialKind, PrincipalType
from iam_middleware.state import MemoryStore, StateUnavailableError

from ._support import ALICE, ALICE_KEY, START, Client, Clock, code, credentials_of, demo_data, make_iam, signed_view


def get_session_token(client: Client, iam: IAM, **extra: object) -> tuple[str, str, str]:
    body = {"code": code(iam, "alice", iam.clock()), **extra}
    return credentials_of(client.signed("/GetSessionToken", body))


def test_signed_call_with_a_code_returns_temporary_credentials_with_mfa(client: Client, iam: IAM) -> None:
    response = client.signed("/GetSessionToken", {"code": code(iam, "alice", START)})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"Credentials"}
    creds = body["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert creds["Expiration"] == "2026-01-15T13:00:00Z"  # the default hour
    # The new credentials work with botocore, the session token in X-Amz-Security-Token.
    key = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    view = signed_view("GET", "https://api.example/orders", key=key)
    assert ("x-amz-security-token", creds["SessionToken"]) in view.headers
    principal = iam.authenticate(view)
    assert principal is not None
    assert principal.arn == ALICE and principal.type is PrincipalType.USER
    assert principal.credential_kind is CredentialKind.TEMPORARY_ACCESS_KEY
    assert principal.mfa_present is True and principal.mfa_time == START
    keys = principal.context_keys(START + 120)
    assert keys["aws:MultiFactorAuthPresent"] == "true" and keys["aws:MultiFactorAuthAge"] == "120"


def test_the_credentials_expire_after_the_duration(client: Client, iam: IAM, clock: Clock) -> None:
    key = get_session_token(client, iam, duration=900)
    clock.tick(899)
    assert iam.authenticate(signed_view("GET", "https://api.example/orders", key=key)) is not None
    clock.tick(1)
    with pytest.raises(SignatureError):
        iam.authenticate(signed_view("GET", "https://api.example/orders", key=key))


@pytest.mark.parametrize("duration", [899, 43201, 900.5, True, "3600"])
def test_duration_out_of_bounds_or_not_whole_seconds_is_a_bad_request(client: Client, iam: IAM,
                                                                     duration: object) -> None:
    response = client.signed("/GetSessionToken", {"code": code(iam, "alice", START), "duration": duration})
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"


def test_the_longest_duration_is_the_configured_maximum(client: Client, iam: IAM) -> None:
    response = client.signed("/GetSessionToken", {"code": code(iam, "alice", START), "duration": 43200})
    assert response.json()["Credentials"]["Expiration"] == "2026-01-16T00:00:00Z"


def test_a_wrong_code_is_refused_counted_and_locks_out(client: Client, iam: IAM, clock: Clock) -> None:
    wrong = client.signed("/GetSessionToken", {"code": "000000" if code(iam, "alice", START) != "000000"
                                               else "111111"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "InvalidOTP"
    # The failure is counted: a guess right after it is refused without being checked.
    locked = client.signed("/GetSessionToken", {"code": code(iam, "alice", START)})
    assert locked.status_code == 401 and locked.json()["error"] == "LockedOut"
    assert "retry-after" in locked.headers
    clock.tick(60)
    assert client.signed("/GetSessionToken", {"code": code(iam, "alice", clock.now)}).status_code == 200


def test_a_code_works_once_across_login_and_get_session_token(client: Client, iam: IAM) -> None:
    otp = code(iam, "alice", START)
    assert client.signed("/GetSessionToken", {"code": otp}).status_code == 200
    replay = client.signed("/GetSessionToken", {"code": otp})
    assert replay.status_code == 401 and replay.json()["error"] == "OTPAlreadyUsed"


def test_malformed_code_is_refused(client: Client) -> None:
    response = client.signed("/GetSessionToken", {"code": "12a456"})
    assert response.status_code == 401
    assert response.json()["error"] == "MalformedOTP"
    assert "12a456" not in response.text


def test_only_a_long_term_key_may_call_it(client: Client, iam: IAM, clock: Clock) -> None:
    temporary = get_session_token(client, iam)
    clock.tick(30)
    with_temporary = client.signed("/GetSessionToken", {"code": code(iam, "alice", clock.now)}, key=temporary)
    assert with_temporary.status_code == 403
    assert with_temporary.json()["error"] == "InvalidCredentialKind"
    session = client.token("bob")
    with_session = client.post("/GetSessionToken", {"code": "123456"}, headers={"authorization": f"Bearer {session}"})
    assert with_session.status_code == 403
    assert with_session.json()["error"] == "InvalidCredentialKind"


def test_without_a_credential_or_with_a_bad_signature_it_is_401(client: Client) -> None:
    anonymous = client.post("/GetSessionToken", {"code": "123456"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "MissingAuthenticationToken"
    forged = client.signed("/GetSessionToken", {"code": "123456"}, key=(ALICE_KEY[0], "not the secret"))
    assert forged.status_code == 401
    assert forged.json()["error"] == "SignatureDoesNotMatch"
    assert forged.headers["www-authenticate"] == "AWS4-HMAC-SHA256"
    wrong_service = client.signed("/GetSessionToken", {"code": "123456"}, service="s3")
    assert wrong_service.status_code == 401


def test_a_user_without_a_totp_device_is_told_so(clock: Clock) -> None:
    data = demo_data()
    del data["users"]["carol"]["totp_secret"]
    iam = make_iam(clock, data)
    response = Client(iam).signed("/GetSessionToken", {"code": "123456"},
                                  key=("AKIADEMOCAROL0000001", "demo/carol/je7MtGbClwBF/2Zp9Utk/h3yCo8nvb"))
    assert response.status_code == 403
    assert response.json()["error"] == "NoMFADevice"


def test_an_explicit_deny_switches_it_off(clock: Clock) -> None:
    data = demo_data()
    data["users"]["alice"]["inline"] = {"NoSTS": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "sts:GetSessionToken", "Resource": "*"}]}}
    iam = make_iam(clock, data)
    response = Client(iam).signed("/GetSessionToken", {"code": code(iam, "alice", START)})
    assert response.status_code == 403
    assert "sts:GetSessionToken" in response.json()["message"]


class WritesFail(MemoryStore):
    """A store whose writes fail the way they do when the Redis connection is lost."""

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        raise StateUnavailableError("connection refused")


def test_shared_state_down_is_503_and_issues_nothing(clock: Clock) -> None:
    iam = make_iam(clock, store=WritesFail())
    response = Client(iam).signed("/GetSessionToken", {"code": code(iam, "alice", START)})
    assert response.status_code == 503
    assert response.json()["error"] == "ServiceUnavailable"
    assert "retry-after" in response.headers
