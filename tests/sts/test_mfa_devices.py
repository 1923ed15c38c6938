"""Several MFA devices per user at the token service: login takes a code of any enabled device; GetSessionToken and
AssumeRole check the code of the device ``SerialNumber`` names, and only that one, as AWS STS does (JSON operations
and, through the real boto3 client, the Query API); a device enabled for nobody (deactivated) counts for nothing;
a code is spent on its own device only; the login throttle counts one failure per attempt, however many devices."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from iam_middleware._iam import IAM
from iam_middleware.authenticators._totp import TOTPDevice

from ._boto import boto_sts
from ._support import ACCOUNT, ALICE, ALICE_KEY, PARTNER, PASSWORD, Client, Clock, demo_data, make_iam

ALICE_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the demo's totp_secret of alice: serial …:mfa/alice
PHONE = "KRSXG5CTMVRXEZLUKN2XAZLSMVRXI5DF"  # alice's phone
KEY = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"  # alice's hardware-style key, under a path
OLD = "ONSWG4TFORZWC3DUMFRGGZDFMZTWQ2LK"  # a device taken back from alice: enabled for nobody
MFA = f"arn:app:iam::{ACCOUNT}:mfa"
OWN, PHONE_SERIAL, KEY_SERIAL, OLD_SERIAL = f"{MFA}/alice", f"{MFA}/alice-phone", f"{MFA}/hw/alice-key", f"{MFA}/old"
UNKNOWN_SERIAL = ("MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA serial "
                  "number is valid and associated with this user.")


def directory(*, own_device: bool = True) -> dict[str, Any]:
    """The demo, alice with two more devices (three with her ``totp_secret``, unless ``own_device`` is False) and a
    third device that was hers, deactivated (an account's device enabled for nobody); alice may tag nothing."""
    data = demo_data()
    alice = data["users"]["alice"]
    if not own_device:
        del alice["totp_secret"]
    alice["mfa_devices"] = [{"name": "alice-phone", "secret": PHONE},
                            {"name": "alice-key", "path": "/hw/", "secret": KEY}]
    data["accounts"][ACCOUNT]["mfa_devices"] = [{"name": "old", "secret": OLD}]
    return data


def code_of(seed: str, now: float) -> str:
    return TOTPDevice(seed).code_at(now)


def wrong_code(now: float) -> str:
    """A code no device of alice's (nor the deactivated one) takes now, one step either side included."""
    seeds = (ALICE_SEED, PHONE, KEY, OLD)
    taken = {code_of(seed, now + offset) for seed in seeds for offset in (-30, 0, 30)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in taken)


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return make_iam(clock, directory())


def login(client: Client, code: str) -> httpx.Response:
    return client.post("/login", {"username": "alice", "password": PASSWORD, "code": code})


def session_token(client: Client, body: dict[str, Any]) -> httpx.Response:
    return client.signed("/GetSessionToken", body)


def refusal(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


def test_the_directory_gives_alice_three_enabled_devices(iam: IAM) -> None:
    alice = iam.snapshot.user("alice")
    assert alice is not None
    assert [device.serial for device in alice.mfa_devices] == [OWN, PHONE_SERIAL, KEY_SERIAL]


def test_login_takes_a_code_of_any_enabled_device_and_spends_it_on_that_device(client: Client, clock: Clock) -> None:
    assert login(client, code_of(KEY, clock.now)).status_code == 200  # the third device
    # Another device's code of the same 30 seconds still works: a code is spent on its own device only.
    assert login(client, code_of(PHONE, clock.now)).status_code == 200
    replay = login(client, code_of(KEY, clock.now))
    assert refusal(replay) == (401, "InvalidLogin")


def test_a_deactivated_devices_code_does_not_log_in(client: Client, clock: Clock) -> None:
    refused = login(client, code_of(OLD, clock.now))
    assert refusal(refused) == (401, "InvalidLogin")


def test_a_failed_login_counts_once_however_many_devices(client: Client, clock: Clock) -> None:
    assert refusal(login(client, wrong_code(clock.now))) == (401, "InvalidLogin")
    # One failure waits one second (the throttle's first delay); two would have to wait two.
    clock.tick(1)
    assert login(client, code_of(PHONE, clock.now)).status_code == 200


def test_get_session_token_checks_the_code_of_the_named_device_only(client: Client, iam: IAM, clock: Clock) -> None:
    named = session_token(client, {"code": code_of(KEY, clock.now), "SerialNumber": KEY_SERIAL})
    assert named.status_code == 200, named.text
    record = iam.credentials.temporary.lookup(named.json()["Credentials"]["AccessKeyId"])
    assert record is not None and record.mfa_time == clock.now
    # The phone's code is valid now, but not for the device named.
    other = session_token(client, {"code": code_of(PHONE, clock.now), "SerialNumber": KEY_SERIAL})
    assert refusal(other) == (401, "InvalidOTP")
    clock.tick(1)  # the failure's throttle delay
    # Still unspent on the phone: the refusal above checked the key only.
    assert session_token(client, {"code": code_of(PHONE, clock.now), "SerialNumber": PHONE_SERIAL}).status_code == 200


def test_a_code_is_spent_per_device(client: Client, clock: Clock) -> None:
    first = session_token(client, {"code": code_of(PHONE, clock.now), "SerialNumber": PHONE_SERIAL})
    assert first.status_code == 200
    replay = session_token(client, {"code": code_of(PHONE, clock.now), "SerialNumber": PHONE_SERIAL})
    assert refusal(replay) == (401, "OTPAlreadyUsed")
    # Without a serial number any enabled device's code counts, and the phone's is spent whichever way it came.
    clock.tick(1)
    assert refusal(session_token(client, {"code": code_of(PHONE, clock.now)})) == (401, "OTPAlreadyUsed")
    clock.tick(2)
    assert session_token(client, {"code": code_of(KEY, clock.now)}).status_code == 200


@pytest.mark.parametrize("serial", [OLD_SERIAL, f"{MFA}/bob", f"{MFA}/alice-tablet", f"{MFA}/alice-phone/",
                                    "arn:app:iam::444455556666:mfa/alice-phone"])
def test_a_serial_that_is_none_of_the_callers_enabled_devices_is_access_denied(client: Client, clock: Clock,
                                                                             serial: str) -> None:
    seed = OLD if serial == OLD_SERIAL else PHONE
    response = session_token(client, {"code": code_of(seed, clock.now), "SerialNumber": serial})
    assert refusal(response) == (403, "AccessDenied")
    assert response.json()["message"] == UNKNOWN_SERIAL
    # Refused before the code was checked: it is still unspent.
    assert session_token(client, {"code": code_of(PHONE, clock.now), "SerialNumber": PHONE_SERIAL}).status_code == 200


@pytest.mark.parametrize("serial", ["arn:mfa", "x" * 257, f"{MFA}/alice phone", f"{MFA}/alice\u00e9", 7])
def test_a_serial_number_outside_awss_pattern_is_a_validation_error(client: Client, clock: Clock,
                                                                     serial: object) -> None:
    response = session_token(client, {"code": code_of(PHONE, clock.now), "SerialNumber": serial})
    assert refusal(response) == (400, "ValidationError")


def test_the_users_own_mfa_name_still_names_the_first_device(clock: Clock) -> None:
    """A directory of devices only (no ``totp_secret``): ``…:mfa/alice``, the documented name of a user's one
    device, names the first one (the phone), and no other."""
    iam = make_iam(clock, directory(own_device=False))
    client = Client(iam)
    assert refusal(session_token(client, {"code": code_of(KEY, clock.now), "SerialNumber": OWN})) == (401,
                                                                                                    "InvalidOTP")
    clock.tick(1)  # the failure's throttle delay
    assert session_token(client, {"code": code_of(PHONE, clock.now), "SerialNumber": OWN}).status_code == 200


def test_assume_role_with_a_second_devices_code_gives_the_session_mfa(clock: Clock) -> None:
    data = directory()
    trust = json.loads(data["roles"]["partner"]["trust_policy"]["document"])
    trust["Statement"][0]["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    data["roles"]["partner"]["trust_policy"]["document"] = json.dumps(trust)
    iam = make_iam(clock, data)
    client = Client(iam)
    body = {"RoleArn": PARTNER, "RoleSessionName": "mfa-2"}
    assert client.signed("/AssumeRole", body).status_code == 403  # a long-term key carries no MFA
    wrong_device = client.signed("/AssumeRole", {**body, "SerialNumber": PHONE_SERIAL,
                                                 "TokenCode": code_of(KEY, clock.now)})
    assert refusal(wrong_device) == (401, "InvalidOTP")
    clock.tick(1)  # the failure's throttle delay
    deactivated = client.signed("/AssumeRole", {**body, "SerialNumber": OLD_SERIAL,
                                                "TokenCode": code_of(OLD, clock.now)})
    assert refusal(deactivated) == (403, "AccessDenied") and deactivated.json()["message"] == UNKNOWN_SERIAL
    response = client.signed("/AssumeRole", {**body, "SerialNumber": KEY_SERIAL, "TokenCode": code_of(KEY, clock.now)})
    assert response.status_code == 200, response.text
    record = iam.credentials.temporary.lookup(response.json()["Credentials"]["AccessKeyId"])
    assert record is not None and record.mfa_time == clock.now
    replay = client.signed("/AssumeRole", {**body, "SerialNumber": KEY_SERIAL, "TokenCode": code_of(KEY, clock.now)})
    assert refusal(replay) == (401, "OTPAlreadyUsed")


def test_the_query_api_through_boto3_takes_any_enabled_devices_serial(client: Client, clock: Clock) -> None:
    sts = boto_sts(client, ALICE_KEY)
    answer = sts.get_session_token(SerialNumber=KEY_SERIAL, TokenCode=code_of(KEY, clock.now), DurationSeconds=900)
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")
    role = sts.assume_role(RoleArn=PARTNER, RoleSessionName="boto-mfa", SerialNumber=PHONE_SERIAL,
                           TokenCode=code_of(PHONE, clock.now))
    assert role["AssumedRoleUser"]["Arn"] == f"arn:app:sts::{ACCOUNT}:assumed-role/partner/boto-mfa"
    for serial, seed in ((OLD_SERIAL, OLD), (KEY_SERIAL, KEY), (KEY_SERIAL, PHONE)):  # gone, replayed, wrong device
        clock.tick(2)  # past the throttle's delay after the previous failure (same 30-second step)
        with pytest.raises(ClientError) as refused:
            sts.get_session_token(SerialNumber=serial, TokenCode=code_of(seed, clock.now))
        error = refused.value.response["Error"]
        assert (refused.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"]) == (403, "AccessDenied")
        assert (error["Message"] == UNKNOWN_SERIAL) is (serial == OLD_SERIAL)


def test_alices_own_login_record_lists_every_enabled_device(iam: IAM) -> None:
    record = iam.logins._login_record("alice")
    assert record is not None
    # The totp_secret device keeps the one record of spent codes of before (None); the others are named.
    assert [serial for serial, _ in record.devices] == [None, PHONE_SERIAL, KEY_SERIAL]
    assert record.principal_arn == ALICE
    assert not {ALICE_SEED, PHONE, KEY} & set(repr(record).replace("'", " ").split())
