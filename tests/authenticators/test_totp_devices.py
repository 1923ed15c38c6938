"""Several TOTP devices per user: ``TOTPVerifier.verify_any`` accepts a current code of any device once, spends it on
that device only (one record of spent codes per device, the unnamed one being the record of before), refuses with
the most telling reason, and fails closed when the store is down; ``LoginRecord`` carries the devices to
``LoginService``, which logs in with any of them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import ConfigurationError, ServiceUnavailableError
from iam_middleware.authenticators._login import LoginFailedError, LoginRecord, LoginService
from iam_middleware.authenticators._passwords import PasswordCost, hash_password
from iam_middleware.authenticators._sessions import SessionTokens
from iam_middleware.authenticators._throttle import LoginThrottle
from iam_middleware.authenticators._totp import (
    CodeReusedError,
    InvalidCodeError,
    MalformedCodeError,
    TOTPDevice,
    TOTPVerifier,
)
from iam_middleware.state import MemoryStore, StateUnavailableError

NOW = 1_700_000_015.0  # mid-step
SEEDS = ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "KRSXG5CTMVRXEZLUKN2XAZLSMVRXI5DF", "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
         "ONSWG4TFORZWC3DUMFRGGZDFMZTWQ2LK", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
MFA = "arn:aws:iam::123456789012:mfa/"
PASSWORD = "correct horse battery staple"
COST = PasswordCost(n=2**4)


def devices(count: int) -> list[tuple[str | None, TOTPDevice]]:
    """``count`` devices: the first unnamed (the record of before), the others by serial number."""
    return [(None if i == 0 else f"{MFA}device-{i}", TOTPDevice(SEEDS[i])) for i in range(count)]


def unused_code(now: float, listed: list[tuple[str | None, TOTPDevice]]) -> str:
    taken = {device.code_at(now + offset) for _, device in listed for offset in (-30, 0, 30)}
    return next(code for code in ("000000", "111111", "222222", "333333", "444444") if code not in taken)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 5), data=st.data(), now=st.floats(1e9, 4e9))
def test_a_code_of_any_device_works_once_on_that_device_and_spends_no_other(count: int, data: st.DataObject,
                                                                          now: float) -> None:
    verifier = TOTPVerifier(MemoryStore())
    listed = devices(count)
    order = data.draw(st.permutations(range(count)))
    for index in order:  # every device's code of the same moment is accepted, each once
        serial, device = listed[index]
        code = device.code_at(now)
        if any(other.code_at(now + offset) == code for i, (_, other) in enumerate(listed) if i != index
               for offset in (-30, 0, 30)):
            continue  # two devices showing the same code: which one spends it is not this test's point
        assert verifier.verify_any("u-1", listed, code, now=now) == (serial, device.step_at(now))
        with pytest.raises(CodeReusedError):
            verifier.verify_any("u-1", listed, code, now=now)


def test_the_records_are_per_user_and_per_device() -> None:
    store = MemoryStore()
    verifier = TOTPVerifier(store)
    listed = devices(2)
    code = listed[1][1].code_at(NOW)
    assert verifier.verify_any("u-1", listed, code, now=NOW)[0] == f"{MFA}device-1"
    assert verifier.verify_any("u-2", listed, code, now=NOW)[0] == f"{MFA}device-1"  # another user's record
    # The unnamed device keeps the user's one record of before: a code spent through ``verify`` is spent here too.
    first = listed[0][1].code_at(NOW)
    verifier.verify("u-1", listed[0][1], first, now=NOW)
    with pytest.raises(CodeReusedError):
        verifier.verify_any("u-1", listed, first, now=NOW)


def test_the_most_telling_refusal_is_raised() -> None:
    verifier = TOTPVerifier(MemoryStore())
    listed = devices(3)
    with pytest.raises(InvalidCodeError):
        verifier.verify_any("u", listed, unused_code(NOW, listed), now=NOW)
    with pytest.raises(MalformedCodeError):
        verifier.verify_any("u", listed, "12345", now=NOW)
    eight = [*listed, (f"{MFA}eight", TOTPDevice(SEEDS[4], digits=8))]
    with pytest.raises(InvalidCodeError):  # the right length for one device: wrong, not malformed
        verifier.verify_any("u", eight, "12345678" if eight[3][1].code_at(NOW) != "12345678" else "87654321",
                            now=NOW)
    spent = listed[2][1].code_at(NOW)
    verifier.verify_any("u", listed, spent, now=NOW)
    with pytest.raises(CodeReusedError):  # wrong for two devices, spent on the third: reused
        verifier.verify_any("u", listed, spent, now=NOW)
    with pytest.raises(InvalidCodeError):  # no device at all: nothing is accepted
        verifier.verify_any("u", [], listed[0][1].code_at(NOW), now=NOW)


def test_a_store_outage_fails_closed_at_once() -> None:
    class Down(MemoryStore):
        def advance(self, key: str, value: int, ttl: float) -> bool:
            raise StateUnavailableError("down")

    listed = devices(2)
    with pytest.raises(ServiceUnavailableError):
        TOTPVerifier(Down()).verify_any("u", listed, listed[1][1].code_at(NOW), now=NOW)


def test_a_login_record_lists_its_devices_and_validates_them() -> None:
    password_hash = hash_password(PASSWORD, n=COST.n, r=COST.r, p=COST.p)
    listed = devices(3)
    record = LoginRecord("u", "arn:aws:iam::1:user/u", password_hash, None, devices=listed)
    assert record.devices == tuple(listed) and record.device is listed[0][1]
    single = LoginRecord("u", "arn:aws:iam::1:user/u", password_hash, listed[1][1])
    assert single.devices == ((None, listed[1][1]),)
    assert LoginRecord("u", "arn:aws:iam::1:user/u", password_hash, None).devices == ()
    assert SEEDS[1] not in repr(record) and f"{MFA}device-2" in repr(record)
    for bad in ([("serial", "not a device")], [(7, listed[0][1])], ["just a string"]):
        with pytest.raises(ConfigurationError):
            LoginRecord("u", "arn:aws:iam::1:user/u", password_hash, None, devices=bad)  # type: ignore[arg-type]


def test_login_service_logs_in_with_any_device_and_counts_one_failure_per_attempt() -> None:
    store = MemoryStore()
    password_hash = hash_password(PASSWORD, n=COST.n, r=COST.r, p=COST.p)
    listed = devices(3)
    record = LoginRecord("u-alice", "arn:aws:iam::1:user/alice", password_hash, None, devices=listed)
    throttle = LoginThrottle(store)
    service = LoginService(lambda name: record if name == "alice" else None, totp=TOTPVerifier(store),
                           sessions=SessionTokens(b"k" * 32, store=store), throttle=throttle, dummy_cost=COST,
                           password_cost=COST)
    assert service.login("alice", PASSWORD, listed[2][1].code_at(NOW), now=NOW).token
    with pytest.raises(LoginFailedError):
        service.login("alice", PASSWORD, unused_code(NOW, listed), now=NOW)
    # One failure: the first delay (one second), not the second (two).
    assert service.login("alice", PASSWORD, listed[1][1].code_at(NOW + 1), now=NOW + 1).token
