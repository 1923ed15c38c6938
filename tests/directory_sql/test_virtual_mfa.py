"""Virtual MFA devices as IAM makes them: created with a seed shown once (Base32, QR code PNG and SVG), enabled for
a user with two consecutive codes, up to eight per user, listed, deactivated, deleted; the root user's too; and a
device made so signs its user in."""

from __future__ import annotations

import struct
import time
import xml.etree.ElementTree as ET
import zlib

import pytest

from iam_middleware.authenticators._totp import TOTPDevice, _qr, provisioning_uri, qr_svg
from iam_middleware.directory import load_directory
from iam_middleware.directory.sql import (
    ROOT,
    DeleteConflictError,
    EntityAlreadyExistsError,
    InvalidAuthenticationCodeError,
    LimitExceededError,
    NoSuchEntityError,
    SQLDirectory,
)

pytest.importorskip("qrcode")

ACCOUNT = "111122223333"
PASSWORD = "correct horse battery staple"


def codes(seed: str, now: float) -> tuple[str, str]:
    device = TOTPDevice(seed)
    return device.code_at(now - 30), device.code_at(now)


def decode_png(png: bytes) -> tuple[int, int, list[list[int]]]:
    """Width, height and the 1-bit pixel rows of a PNG, every chunk's CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + data)
        chunks[kind] = data
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (1, 0, 0) and b"IEND" in chunks
    raw, stride = zlib.decompress(chunks[b"IDAT"]), 1 + (width + 7) // 8
    rows = []
    for y in range(height):
        line = raw[y * stride:(y + 1) * stride]
        assert line[0] == 0
        bits = "".join(f"{byte:08b}" for byte in line[1:])[:width]
        rows.append([int(b) for b in bits])
    return width, height, rows


def test_a_new_device_shows_its_seed_as_text_png_and_svg(demo: SQLDirectory) -> None:
    with demo.change() as draft:
        made = draft.create_virtual_mfa_device("dave-phone", "/team/")
    assert made.serial_number == f"arn:app:iam::{ACCOUNT}:mfa/team/dave-phone"
    assert made.base32_string_seed not in repr(made)
    uri = provisioning_uri(TOTPDevice(made.base32_string_seed), f"dave-phone@{ACCOUNT}", "orders")
    # The PNG, decoded, is the QR code of the device's otpauth URI, module for module.
    assert made.qr_code_png is not None
    width, height, pixels = decode_png(made.qr_code_png)
    matrix = _qr(uri).get_matrix()
    assert (width, height) == (len(matrix[0]) * 6, len(matrix) * 6)
    assert [[1 - pixels[y * 6][x * 6] for x in range(len(matrix[0]))] for y in range(len(matrix))] == [
        [int(dark) for dark in row] for row in matrix]
    assert made.qr_code_svg == qr_svg(uri) and ET.fromstring(made.qr_code_svg).tag.endswith("svg")
    with pytest.raises(EntityAlreadyExistsError), demo.change() as draft:
        draft.create_virtual_mfa_device("DAVE-PHONE", "/team/")
    with pytest.raises(EntityAlreadyExistsError), demo.change() as draft:
        draft.create_virtual_mfa_device("alice")  # alice's totp_secret has this serial
    with demo.change() as draft:
        listed = draft.list_virtual_mfa_devices("Unassigned")
    assert [d.serial_number for d in listed] == [made.serial_number]


def test_an_enabled_device_signs_its_user_in(demo: SQLDirectory) -> None:
    now = time.time()
    demo.clock = lambda: now
    with demo.change() as draft:
        draft.create_user("dave")
        draft.create_login_profile("dave", PASSWORD)
        made = draft.create_virtual_mfa_device("dave-phone")
        with pytest.raises(InvalidAuthenticationCodeError):
            draft.enable_mfa_device("dave", made.serial_number, *reversed(codes(made.base32_string_seed, now)))
        draft.enable_mfa_device("dave", made.serial_number, *codes(made.base32_string_seed, now))
        with pytest.raises(EntityAlreadyExistsError):  # a device belongs to one user
            draft.enable_mfa_device("alice", made.serial_number, *codes(made.base32_string_seed, now))
        devices = draft.list_mfa_devices("dave")
    assert [(d.serial_number, d.user_name, d.enable_date) for d in devices] == [
        (made.serial_number, "dave", int(now))]
    iam = demo.iam()
    dave = iam.snapshot.user("dave")
    assert dave is not None and [d.serial for d in dave.mfa_devices] == [made.serial_number]
    session = iam.login("dave", PASSWORD, TOTPDevice(made.base32_string_seed).code_at(now + 30), now=now + 30)
    assert iam.credentials.from_token(session.token, now=now + 30).mfa_present


def test_up_to_eight_devices_then_deactivate_and_delete(demo: SQLDirectory) -> None:
    now = time.time()
    demo.clock = lambda: now
    with demo.change() as draft:
        made = [draft.create_virtual_mfa_device(f"alice-{i}") for i in range(8)]
        for device in made[:7]:  # alice's totp_secret is the eighth
            draft.enable_mfa_device("alice", device.serial_number, *codes(device.base32_string_seed, now))
        with pytest.raises(LimitExceededError):
            draft.enable_mfa_device("alice", made[7].serial_number, *codes(made[7].base32_string_seed, now))
        assert len(draft.list_mfa_devices("alice")) == 8
    alice = demo.load().snapshot.user("alice")
    assert alice is not None and len(alice.mfa_devices) == 8
    assert alice.totp is alice.mfa_devices[0].totp  # the file's totp_secret stays the one login checks first
    with demo.change() as draft:
        with pytest.raises(DeleteConflictError):
            draft.delete_virtual_mfa_device(made[0].serial_number)
        draft.deactivate_mfa_device("alice", made[0].serial_number)
        draft.delete_virtual_mfa_device(made[0].serial_number)
        with pytest.raises(NoSuchEntityError):
            draft.delete_virtual_mfa_device(made[0].serial_number)
        with pytest.raises(NoSuchEntityError):
            draft.deactivate_mfa_device("bob", made[1].serial_number)
    alice = demo.load().snapshot.user("alice")
    assert alice is not None and made[0].serial_number not in {d.serial for d in alice.mfa_devices}


def test_the_root_user_gets_a_password_a_device_and_keys(demo: SQLDirectory) -> None:
    now = time.time()
    demo.clock = lambda: now
    with demo.change() as draft:
        draft.create_login_profile(ROOT, PASSWORD)
        made = draft.create_virtual_mfa_device("root-account-mfa-device")
        draft.enable_mfa_device(ROOT, made.serial_number, *codes(made.base32_string_seed, now))
        key = draft.create_access_key(ROOT)
        with pytest.raises(NoSuchEntityError):  # no policy attaches to the root user
            draft.attach_user_policy(ROOT, "OrdersReadOnly")
    iam = demo.iam()
    root = iam.snapshot.user(f"arn:app:iam::{ACCOUNT}:root")
    assert root is not None and [k.id for k in root.access_keys] == [key.access_key_id]
    session = iam.login(root.arn, PASSWORD, TOTPDevice(made.base32_string_seed).code_at(now + 30), now=now + 30)
    assert iam.credentials.from_token(session.token, now=now + 30).arn == root.arn


def test_devices_and_the_root_user_survive_export_and_import(demo: SQLDirectory, tmp_path: object) -> None:
    now = time.time()
    demo.clock = lambda: now
    with demo.change() as draft:
        spare = draft.create_virtual_mfa_device("spare")
        made = draft.create_virtual_mfa_device("bob-key")
        draft.enable_mfa_device("bob", made.serial_number, *codes(made.base32_string_seed, now))
        draft.create_access_key(ROOT)
    before = demo.records()
    exported = demo.export_toml()
    file = tmp_path / "exported.toml"  # type: ignore[operator]
    file.write_text(exported)
    assert spare.base32_string_seed in exported and "root = { access_keys" in exported
    loaded = load_directory(file)
    assert [d.serial for d in loaded.users[f"arn:app:iam::{ACCOUNT}:user/bob"].mfa_devices][1:] == [
        made.serial_number]
    result = demo.import_file(file)
    assert result.changes == () and demo.records() == before
