"""TOTP second factor (RFC 6238) with pyotp: devices, enrollment, QR codes and single-use verification.

A code is accepted once: the verifier records the last accepted time step of each user's device in the shared
store with an atomic compare-and-set (``StateStore.advance``), so a replayed code, an older code still inside the
window, and a second concurrent login with the same code are all refused, across processes. A user with several
devices has one record per device: a code spent on one device says nothing about the codes of another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyotp

from .._exceptions import ConfigurationError, OTPError, ServiceUnavailableError
from ..state import StateStore, StateUnavailableError

__all__ = [
    "CodeReusedError",
    "EnrollmentExpiredError",
    "InvalidCodeError",
    "MalformedCodeError",
    "PendingEnrollment",
    "TOTPDevice",
    "TOTPVerifier",
    "new_device",
    "provisioning_uri",
    "qr_svg",
    "qr_terminal",
]

_DIGESTS: dict[str, Callable[..., Any]] = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
_MIN_SECRET_BITS = 128  # RFC 4226 R6; new devices get 160
_MAX_SECRET_CHARS = 1024
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_ASCII_DIGITS = frozenset("0123456789")


class MalformedCodeError(OTPError):
    """The code is not exactly the device's number of ASCII digits (refused before any comparison)."""

    code = "MalformedOTP"


class InvalidCodeError(OTPError):
    """The code does not match the device at the current time step (or one step either side)."""

    code = "InvalidOTP"


class CodeReusedError(OTPError):
    """The code, or a later one, was already accepted for this user's device: one-time codes work once."""

    code = "OTPAlreadyUsed"


class EnrollmentExpiredError(OTPError):
    """A pending enrollment was confirmed too late; enrollment must start over with a new secret."""

    code = "EnrollmentExpired"


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class TOTPDevice:
    """A user's authenticator: base32 seed plus RFC 6238 parameters. The seed never appears in ``repr``."""

    secret: str
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"

    def __post_init__(self) -> None:
        if not isinstance(self.secret, str) or len(self.secret) > _MAX_SECRET_CHARS:
            raise ConfigurationError("TOTP secret must be a base32 string")
        secret = self.secret.upper().rstrip("=")
        if not secret or not set(secret) <= _BASE32:
            raise ConfigurationError("TOTP secret must be a base32 string (A-Z, 2-7)")
        try:
            raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
        except binascii.Error:
            raise ConfigurationError("TOTP secret has an impossible base32 length") from None
        if len(raw) * 8 < _MIN_SECRET_BITS:
            raise ConfigurationError(f"TOTP secret must carry at least {_MIN_SECRET_BITS} bits")
        if type(self.digits) is not int or self.digits not in (6, 8):
            raise ConfigurationError(f"TOTP digits must be 6 or 8, got {self.digits!r}")
        if type(self.period) is not int or not 1 <= self.period <= 120:
            raise ConfigurationError(f"TOTP period must be an int number of seconds in 1..120, got {self.period!r}")
        if self.algorithm not in _DIGESTS:
            raise ConfigurationError(f"TOTP algorithm must be one of {sorted(_DIGESTS)}, got {self.algorithm!r}")
        # Canonical form: what authenticator apps expect in a provisioning URI.
        object.__setattr__(self, "secret", secret)

    def _otp(self) -> pyotp.TOTP:
        return pyotp.TOTP(self.secret, digits=self.digits, digest=_DIGESTS[self.algorithm], interval=self.period)

    def step_at(self, now: float) -> int:
        """The RFC 6238 time step (counter) at ``now``."""
        return self._otp().timecode(now)

    def code_at(self, now: float) -> str:
        """The code an authenticator app shows at ``now`` (for tests, demos and enrollment screens)."""
        return self._otp().at(now)

    def __repr__(self) -> str:
        return (
            f"TOTPDevice(secret='********', digits={self.digits}, period={self.period}, algorithm={self.algorithm!r})"
        )


def new_device(*, digits: int = 6, period: int = 30, algorithm: str = "SHA1") -> TOTPDevice:
    """A device with a fresh 160-bit seed from the OS CSPRNG (pyotp uses ``secrets.SystemRandom``)."""
    return TOTPDevice(pyotp.random_base32(), digits=digits, period=period, algorithm=algorithm)


def provisioning_uri(device: TOTPDevice, account_name: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans. It holds the seed: show it at enrollment only."""
    for label, value in (("account_name", account_name), ("issuer", issuer)):
        # The Key URI format separates issuer and account with ':' in the label, so neither may contain one.
        if not isinstance(value, str) or not value or ":" in value or not value.isprintable():
            raise ConfigurationError(f"{label} must be a non-empty printable string without ':'")
    return device._otp().provisioning_uri(name=account_name, issuer_name=issuer)


def _qrcode(module: str = "qrcode") -> Any:
    """A module of the optional ``qrcode`` package (the ``qr`` extra), imported on first use."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModuleNotFoundError(
            "QR codes need the optional 'qrcode' package: pip install 'iam-middleware[qr]'", name="qrcode"
        ) from None


def _qr(uri: str) -> Any:
    code = _qrcode().QRCode(border=2)
    code.add_data(uri)
    code.make(fit=True)
    return code


def qr_terminal(uri: str, *, invert: bool = True) -> str:
    """The QR code of ``uri`` as text blocks for a terminal. ``invert`` suits light-on-dark terminals."""
    out = io.StringIO()
    _qr(uri).print_ascii(out=out, invert=invert)
    return out.getvalue()


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as a standalone SVG document (vector output: no Pillow needed)."""
    factory = _qrcode("qrcode.image.svg").SvgPathImage
    svg = _qr(uri).make_image(image_factory=factory).to_string(encoding="unicode")
    return svg if isinstance(svg, str) else svg.decode()


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PendingEnrollment:
    """A device shown to the user but not yet proven: it grants nothing until ``confirm_enrollment`` accepts a code.

    Keep it server-side (never round-trip the seed through the client) and drop it once confirmed or expired.
    """

    device: TOTPDevice
    expires_at: float

    def provisioning_uri(self, account_name: str, issuer: str) -> str:
        """The URI to show as a QR code for this pending device."""
        return provisioning_uri(self.device, account_name, issuer)

    def __repr__(self) -> str:
        return f"PendingEnrollment(device={self.device!r}, expires_at={self.expires_at!r})"


class TOTPVerifier:
    """Checks TOTP codes once each, with the last accepted step per user kept in a shared ``StateStore``."""

    def __init__(
        self, store: StateStore, *, valid_window: int = 1, key_prefix: str = "iam:totp:", enrollment_ttl: float = 600.0
    ) -> None:
        # RFC 6238 §5.2: at most one step of network delay either side.
        if type(valid_window) is not int or valid_window not in (0, 1):
            raise ConfigurationError(f"valid_window must be 0 or 1, got {valid_window!r}")
        if not enrollment_ttl > 0:
            raise ConfigurationError("enrollment_ttl must be a positive number of seconds")
        self._store = store
        self._window = valid_window
        self._prefix = key_prefix
        self._enrollment_ttl = float(enrollment_ttl)

    @property
    def valid_window(self) -> int:
        """Steps accepted either side of the current one (0 or 1)."""
        return self._window

    def verify(self, user_id: str, device: TOTPDevice, code: str, *, now: float, serial: str | None = None) -> int:
        """Accept ``code`` once and return its time step, or raise an ``OTPError`` subclass.

        ``serial`` names the device among the user's (its serial number) and so the record of its spent codes;
        None is the user's one record from before users had several devices, kept for the device that record
        was about. The code must be exactly ``device.digits`` ASCII digits: pyotp NFKC-normalises before
        comparing, so full-width or other Unicode digits would otherwise match.
        """
        step = self._step(device, code, now)
        # A code of step s stays acceptable until (s + window + 1) * period; remembering the step a little longer
        # than that is enough, since anything older is outside the window anyway.
        ttl = float((2 * self._window + 2) * device.period)
        record = f"{self._prefix}last:{user_id}" if serial is None else f"{self._prefix}last:{user_id}:{serial}"
        try:
            fresh = self._store.advance(record, step, ttl)
        except StateUnavailableError:
            raise ServiceUnavailableError("one-time codes cannot be checked right now; try again shortly") from None
        if not fresh:
            raise CodeReusedError("this code was already used; wait for the next code and try again")
        return step

    def verify_any(self, user_id: str, devices: Sequence[tuple[str | None, TOTPDevice]], code: str, *,
                   now: float) -> tuple[str | None, int]:
        """Accept ``code`` once if it is a current, unspent code of any of ``devices`` (``(serial, device)``
        pairs, as ``verify`` takes them); return the serial of the device it was spent on and its time step.

        A code is spent only on the device it matched. When no device takes it, the most telling refusal is
        raised: reused (it matched a device but was spent), then wrong, then malformed (the length of no device).
        A store outage is raised at once: nothing is accepted without the single-use check.
        """
        refusal: OTPError = InvalidCodeError("the code is wrong or expired; enter the code your authenticator "
                                             "shows now")
        rank = 0  # 1 malformed, 2 wrong, 3 reused: the refusal to raise is the highest seen
        for serial, device in devices:
            try:
                return serial, self.verify(user_id, device, code, now=now, serial=serial)
            except CodeReusedError as exc:
                refusal, rank = exc, 3
            except InvalidCodeError as exc:
                if rank < 2:
                    refusal, rank = exc, 2
            except MalformedCodeError as exc:
                if rank < 1:
                    refusal, rank = exc, 1
        raise refusal

    def _step(self, device: TOTPDevice, code: str, now: float) -> int:
        """The time step ``code`` is valid for on ``device`` now (within the window), without spending it."""
        if not isinstance(code, str) or len(code) != device.digits or not set(code) <= _ASCII_DIGITS:
            raise MalformedCodeError(f"the code must be exactly {device.digits} digits (0-9)")
        try:
            return device._otp().verify_and_get_timecode(code, for_time=now, valid_window=self._window)
        except pyotp.OTPVerificationError:
            raise InvalidCodeError(
                "the code is wrong or expired; enter the code your authenticator shows now"
            ) from None

    def begin_enrollment(
        self, *, now: float, digits: int = 6, period: int = 30, algorithm: str = "SHA1"
    ) -> PendingEnrollment:
        """Start enrolling a new device; it must be confirmed with one valid code within ``enrollment_ttl``."""
        device = new_device(digits=digits, period=period, algorithm=algorithm)
        return PendingEnrollment(device=device, expires_at=now + self._enrollment_ttl)

    def confirm_enrollment(self, user_id: str, pending: PendingEnrollment, code: str, *, now: float) -> TOTPDevice:
        """Activate ``pending`` after one valid code, which is burned like any other; returns the device to store."""
        if not now < pending.expires_at:
            raise EnrollmentExpiredError("the enrollment expired; start again to get a new QR code")
        self.verify(user_id, pending.device, code, now=now)
        return pending.device
