"""TOTP: RFC 6238 vectors, the ±1 step window, single use (also under concurrency), strict code syntax,
enrollment, provisioning URIs and QR codes, and no seed in any output."""

from __future__ import annotations

import base64
import sys
import threading
import urllib.parse

import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_middleware._exceptions import ConfigurationError, OTPError, ServiceUnavailableError
from iam_middleware.authenticators._totp import (
    CodeReusedError,
    EnrollmentExpiredError,
    InvalidCodeError,
    MalformedCodeError,
    PendingEnrollment,
    TOTPDevice,
    TOTPVerifier,
    new_device,
    provisioning_uri,
    qr_svg,
    qr_terminal,
)
from iam_middleware.state import MemoryStore, StateStore, StateUnavailableError

NOW = 1_700_000_015.0  # mid-step: step 56_666_667 runs from 1_700_000_010 to 1_700_000_040
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits


@pytest.fixture
def store() -> StateStore:
    return MemoryStore()


@pytest.fixture
def verifier(store: StateStore) -> TOTPVerifier:
    return TOTPVerifier(store)


@pytest.fixture
def device() -> TOTPDevice:
    return TOTPDevice(SEED)


class DownStore(MemoryStore):
    """A store whose backend is unreachable, as a RedisStore is when Redis is down."""

    def advance(self, key: str, value: int, ttl: float) -> bool:
        raise StateUnavailableError("down")


# RFC 6238 Appendix B: ASCII seeds per algorithm, 8 digits, 30 s steps.
RFC_SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC_VECTORS = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1111111111, "SHA256", "67062674"),
    (1111111111, "SHA512", "99943326"),
    (1234567890, "SHA1", "89005924"),
    (1234567890, "SHA256", "91819424"),
    (1234567890, "SHA512", "93441116"),
    (2000000000, "SHA1", "69279037"),
    (2000000000, "SHA256", "90698825"),
    (2000000000, "SHA512", "38618901"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]


@pytest.mark.parametrize(("when", "algorithm", "expected"), RFC_VECTORS)
def test_rfc6238_appendix_b(store: StateStore, when: int, algorithm: str, expected: str) -> None:
    seed = base64.b32encode(RFC_SEEDS[algorithm]).decode()
    device = TOTPDevice(seed, digits=8, algorithm=algorithm)
    assert device.code_at(when) == expected
    assert TOTPVerifier(store, valid_window=0).verify("rfc", device, expected, now=when) == when // 30


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_one_step_either_side_is_accepted(verifier: TOTPVerifier, device: TOTPDevice, offset: int) -> None:
    code = device.code_at(NOW + 30 * offset)
    assert verifier.verify("alice", device, code, now=NOW) == device.step_at(NOW) + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_two_steps_away_is_refused(verifier: TOTPVerifier, device: TOTPDevice, offset: int) -> None:
    code = device.code_at(NOW + 30 * offset)
    assert code not in {device.code_at(NOW + 30 * i) for i in (-1, 0, 1)}  # no accidental collision
    with pytest.raises(InvalidCodeError):
        verifier.verify("alice", device, code, now=NOW)


def test_window_zero_accepts_only_the_current_step(store: StateStore, device: TOTPDevice) -> None:
    strict = TOTPVerifier(store, valid_window=0)
    with pytest.raises(InvalidCodeError):
        strict.verify("alice", device, device.code_at(NOW - 30), now=NOW)
    with pytest.raises(InvalidCodeError):
        strict.verify("alice", device, device.code_at(NOW + 30), now=NOW)
    assert strict.verify("alice", device, device.code_at(NOW), now=NOW) == device.step_at(NOW)


def test_step_boundaries(verifier: TOTPVerifier, device: TOTPDevice) -> None:
    start = 1_700_000_010.0  # the first second of its step
    code = device.code_at(start)
    # Still accepted one full step after it ended, not a second later.
    with pytest.raises(InvalidCodeError):
        verifier.verify("alice", device, code, now=start + 60)
    assert verifier.verify("alice", device, code, now=start + 59.999)


@pytest.mark.parametrize("window", [-1, 2, 3, True, 1.0])
def test_window_is_zero_or_one(store: StateStore, window: object) -> None:
    with pytest.raises(ConfigurationError):
        TOTPVerifier(store, valid_window=window)  # type: ignore[arg-type]


def test_same_code_twice_is_refused(verifier: TOTPVerifier, device: TOTPDevice) -> None:
    code = device.code_at(NOW)
    verifier.verify("alice", device, code, now=NOW)
    with pytest.raises(CodeReusedError):
        verifier.verify("alice", device, code, now=NOW)
    with pytest.raises(CodeReusedError):
        verifier.verify("alice", device, code, now=NOW + 30)  # still inside the window, still spent


def test_older_code_after_a_newer_one_is_refused(verifier: TOTPVerifier, device: TOTPDevice) -> None:
    verifier.verify("alice", device, device.code_at(NOW), now=NOW)
    with pytest.raises(CodeReusedError):
        verifier.verify("alice", device, device.code_at(NOW - 30), now=NOW)


def test_newer_code_after_an_older_one_is_accepted(verifier: TOTPVerifier, device: TOTPDevice) -> None:
    verifier.verify("alice", device, device.code_at(NOW - 30), now=NOW)
    assert verifier.verify("alice", device, device.code_at(NOW), now=NOW) == device.step_at(NOW)
    assert verifier.verify("alice", device, device.code_at(NOW + 30), now=NOW + 30) == device.step_at(NOW) + 1


def test_single_use_is_per_user(verifier: TOTPVerifier, device: TOTPDevice) -> None:
    code = device.code_at(NOW)
    verifier.verify("alice", device, code, now=NOW)
    assert verifier.verify("bob", device, code, now=NOW) == device.step_at(NOW)


def test_single_use_holds_across_verifier_instances(store: StateStore, device: TOTPDevice) -> None:
    # Two processes sharing one store: the second must see the first's acceptance.
    code = device.code_at(NOW)
    TOTPVerifier(store).verify("alice", device, code, now=NOW)
    with pytest.raises(CodeReusedError):
        TOTPVerifier(store).verify("alice", device, code, now=NOW)


def test_concurrent_uses_of_one_code_accept_exactly_one(store: StateStore, device: TOTPDevice) -> None:
    verifier = TOTPVerifier(store)
    code = device.code_at(NOW)
    threads = 16
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            verifier.verify("alice", device, code, now=NOW)
            result = "accepted"
        except CodeReusedError:
            result = "reused"
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(outcomes) == ["accepted"] + ["reused"] * (threads - 1)


def _fullwidth(code: str) -> str:
    return "".join(chr(ord(c) - ord("0") + 0xFF10) for c in code)


def test_fullwidth_digits_are_refused_although_pyotp_would_accept_them(
    verifier: TOTPVerifier, device: TOTPDevice, store: StateStore
) -> None:
    code = device.code_at(NOW)
    # pyotp normalises with NFKC before comparing: the full-width form matches there.
    assert pyotp.TOTP(SEED).verify(_fullwidth(code), for_time=NOW)
    with pytest.raises(MalformedCodeError):
        verifier.verify("alice", device, _fullwidth(code), now=NOW)
    # Nothing was burned: the real code still works.
    assert verifier.verify("alice", device, code, now=NOW) == device.step_at(NOW)


@pytest.mark.parametrize(
    "transform",
    [
        _fullwidth,
        lambda c: "".join(chr(ord(x) - ord("0") + 0x0660) for x in c),  # Arabic-Indic digits
        lambda c: "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(x)] for x in c),  # superscripts (NFKC folds them)
        lambda c: " " + c,
        lambda c: c + " ",
        lambda c: c + "\n",
        lambda c: c[:3] + " " + c[3:],
        lambda c: c[:5],
        lambda c: c + "0",
        lambda c: "",
        lambda c: "+" + c[1:],
        lambda c: c[:5] + "\u0000",
        lambda c: c.encode(),
        lambda c: int(c),
        lambda c: None,
    ],
)
def test_malformed_codes_are_refused_before_any_comparison(
    verifier: TOTPVerifier, device: TOTPDevice, store: StateStore, transform: object
) -> None:
    code = device.code_at(NOW)
    with pytest.raises(MalformedCodeError) as caught:
        verifier.verify("alice", device, transform(code), now=NOW)  # type: ignore[operator]
    assert "6 digits" in str(caught.value)
    assert verifier.verify("alice", device, code, now=NOW)  # nothing was burned


def test_code_length_follows_the_device(verifier: TOTPVerifier) -> None:
    eight = TOTPDevice(SEED, digits=8)
    with pytest.raises(MalformedCodeError):
        verifier.verify("alice", eight, eight.code_at(NOW)[:6], now=NOW)
    assert verifier.verify("alice", eight, eight.code_at(NOW), now=NOW)


@settings(deadline=None, max_examples=60)
@given(code=st.text(max_size=12).filter(lambda s: not (len(s) == 6 and s.isascii() and s.isdigit())))
def test_anything_but_six_ascii_digits_is_malformed(code: str) -> None:
    verifier = TOTPVerifier(MemoryStore())
    with pytest.raises(MalformedCodeError):
        verifier.verify("alice", TOTPDevice(SEED), code, now=NOW)


@settings(deadline=None, max_examples=60)
@given(code=st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_six_digits_verify_only_inside_the_window(code: str) -> None:
    device = TOTPDevice(SEED)
    verifier = TOTPVerifier(MemoryStore())
    window = {device.code_at(NOW + 30 * i): device.step_at(NOW) + i for i in (-1, 0, 1)}
    if code in window:
        assert verifier.verify("alice", device, code, now=NOW) == window[code]
    else:
        with pytest.raises(InvalidCodeError):
            verifier.verify("alice", device, code, now=NOW)


def test_unreachable_store_refuses_with_503(device: TOTPDevice) -> None:
    verifier = TOTPVerifier(DownStore())
    with pytest.raises(ServiceUnavailableError) as caught:
        verifier.verify("alice", device, device.code_at(NOW), now=NOW)
    assert caught.value.status_code == 503


def test_errors_are_otp_errors_with_distinct_codes(verifier: TOTPVerifier, device: TOTPDevice) -> None:
    errors = []
    for code in ("12345", _other_code(device), device.code_at(NOW), device.code_at(NOW)):
        try:
            verifier.verify("alice", device, code, now=NOW)
        except OTPError as exc:
            errors.append(exc)
    assert [type(e) for e in errors] == [MalformedCodeError, InvalidCodeError, CodeReusedError]
    assert len({e.code for e in errors}) == 3
    assert all(e.status_code == 401 for e in errors)
    for error in errors:  # neither the code tried nor the seed is echoed
        for text in (str(error), repr(error)):
            assert device.code_at(NOW) not in text and _other_code(device) not in text and SEED not in text


def _other_code(device: TOTPDevice) -> str:
    window = {device.code_at(NOW + 30 * i) for i in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222") if c not in window)


# --- devices -------------------------------------------------------------------------------------------------------


def test_new_devices_have_fresh_160_bit_seeds() -> None:
    seeds = {new_device().secret for _ in range(20)}
    assert len(seeds) == 20
    for seed in seeds:
        assert len(base64.b32decode(seed)) == 20


def test_seed_is_canonicalised() -> None:
    assert TOTPDevice(SEED.lower()).secret == SEED
    padded = base64.b32encode(b"x" * 17).decode()
    assert padded.endswith("=")
    assert TOTPDevice(padded).secret == padded.rstrip("=")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": base64.b32encode(b"x" * 15).decode()},  # 120 bits
        {"secret": ""},
        {"secret": "JBSWY3DPEHPK3PXP JBSWY3DPEHPK3PXP"},
        {"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX0"},
        {"secret": "A" * 33},  # impossible base32 length
        {"secret": 12345},
        {"secret": SEED, "digits": 7},
        {"secret": SEED, "digits": True},
        {"secret": SEED, "digits": 6.0},
        {"secret": SEED, "period": 0},
        {"secret": SEED, "period": 121},
        {"secret": SEED, "period": 30.0},
        {"secret": SEED, "algorithm": "MD5"},
        {"secret": SEED, "algorithm": "sha1"},
    ],
)
def test_invalid_devices_are_refused_without_echoing_the_seed(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TOTPDevice(**kwargs)  # type: ignore[arg-type]
    secret = kwargs["secret"]
    if isinstance(secret, str) and secret:
        assert secret not in str(caught.value)


def test_seed_never_appears_in_repr_or_str(device: TOTPDevice, verifier: TOTPVerifier) -> None:
    pending = verifier.begin_enrollment(now=NOW)
    for text in (repr(device), str(device), repr(pending), str(pending)):
        assert SEED not in text and pending.device.secret not in text
        assert "********" in text


def test_devices_do_not_compare_by_seed() -> None:
    # Equality on the seed would be a non-constant-time comparison of a secret.
    assert TOTPDevice(SEED) != TOTPDevice(SEED)


# --- provisioning and QR codes -------------------------------------------------------------------------------------


def test_provisioning_uri_round_trips_through_pyotp() -> None:
    device = TOTPDevice(SEED, digits=8, period=60, algorithm="SHA256")
    uri = provisioning_uri(device, "alice@example.com", "Example Corp")
    parts = urllib.parse.urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert urllib.parse.unquote(parts.path) == "/Example Corp:alice@example.com"
    query = urllib.parse.parse_qs(parts.query)
    assert query["secret"] == [SEED]
    assert query["issuer"] == ["Example Corp"]
    assert query["algorithm"] == ["SHA256"] and query["digits"] == ["8"] and query["period"] == ["60"]
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.at(NOW) == device.code_at(NOW)


@pytest.mark.parametrize(
    ("account", "issuer"),
    [("a:b", "Example"), ("alice", "Ex:ample"), ("", "Example"), ("alice", ""), ("al\nice", "Example")],
)
def test_provisioning_labels_are_validated(device: TOTPDevice, account: str, issuer: str) -> None:
    with pytest.raises(ConfigurationError):
        provisioning_uri(device, account, issuer)


def test_qr_svg_is_a_standalone_svg_and_needs_no_pillow(device: TOTPDevice, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # None in sys.modules makes any import of it fail
    svg = qr_svg(provisioning_uri(device, "alice", "Example"))
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<path" in svg


def test_qr_terminal_draws_blocks(device: TOTPDevice) -> None:
    art = qr_terminal(provisioning_uri(device, "alice", "Example"))
    lines = art.splitlines()
    assert len(lines) > 10
    assert len({len(line) for line in lines}) == 1  # a rectangle
    assert set(art) <= {"█", "▀", "▄", "\N{NO-BREAK SPACE}", "\n"}
    assert qr_terminal("x", invert=False) != qr_terminal("x", invert=True)


def test_qr_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qrcode", None)
    for render in (qr_svg, qr_terminal):
        with pytest.raises(ModuleNotFoundError, match=r"iam-middleware\[qr\]"):
            render("otpauth://totp/x")


# --- enrollment ----------------------------------------------------------------------------------------------------


def test_enrollment_activates_only_after_a_valid_code(verifier: TOTPVerifier) -> None:
    pending = verifier.begin_enrollment(now=NOW)
    assert isinstance(pending, PendingEnrollment)
    with pytest.raises(InvalidCodeError):
        verifier.confirm_enrollment("alice", pending, _other_code(pending.device), now=NOW)
    with pytest.raises(MalformedCodeError):
        verifier.confirm_enrollment("alice", pending, "", now=NOW)
    device = verifier.confirm_enrollment("alice", pending, pending.device.code_at(NOW), now=NOW)
    assert device is pending.device


def test_enrollment_code_is_burned(verifier: TOTPVerifier) -> None:
    pending = verifier.begin_enrollment(now=NOW)
    code = pending.device.code_at(NOW)
    device = verifier.confirm_enrollment("alice", pending, code, now=NOW)
    with pytest.raises(CodeReusedError):
        verifier.verify("alice", device, code, now=NOW + 5)
    assert verifier.verify("alice", device, device.code_at(NOW + 30), now=NOW + 30)


def test_enrollment_expires(store: StateStore) -> None:
    verifier = TOTPVerifier(store, enrollment_ttl=300)
    pending = verifier.begin_enrollment(now=NOW)
    assert pending.expires_at == NOW + 300
    with pytest.raises(EnrollmentExpiredError):
        verifier.confirm_enrollment("alice", pending, pending.device.code_at(NOW + 300), now=NOW + 300)
    assert verifier.confirm_enrollment("alice", pending, pending.device.code_at(NOW + 299), now=NOW + 299)


def test_enrollment_parameters_reach_the_device(verifier: TOTPVerifier) -> None:
    pending = verifier.begin_enrollment(now=NOW, digits=8, period=60, algorithm="SHA512")
    device = pending.device
    assert (device.digits, device.period, device.algorithm) == (8, 60, "SHA512")
    assert "digits=8" in pending.provisioning_uri("alice", "Example")
