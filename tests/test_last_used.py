"""Last use of access keys and passwords: recorded on successful authentication, with the signature's region and
service, at most one store write per key per window however many requests and processes (writes counted, not
time), and never a refusal when the store is down."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from iam_middleware import IAM
from iam_middleware._request import RequestView
from iam_middleware.directory._last_used import ACCESS_KEY_WINDOW, PASSWORD_WINDOW, LastUsed, LastUsedTracker
from iam_middleware.state import MemoryStore, StateUnavailableError
from iam_middleware.testing import sign_request

DEMO = Path(__file__).resolve().parents[1] / "examples" / "iam.toml"
ALICE_KEY = "AKIADEMOALICE0000001"
PASSWORD = "correct horse battery staple"


class CountingStore(MemoryStore):
    """A memory store that counts the writes under the last-used prefix."""

    def __init__(self) -> None:
        super().__init__(clock=lambda: self.now)
        self.now = 0.0
        self.writes = 0

    def claim(self, key: str, ttl: float) -> bool:
        self.writes += key.startswith("iam:last-used:")
        return super().claim(key, ttl)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.writes += key.startswith("iam:last-used:")
        super().set(key, value, ttl)


class DownStore(MemoryStore):
    def claim(self, key: str, ttl: float) -> bool:
        raise StateUnavailableError("down")


def signed_get(iam: IAM, now: float, path: str = "/orders/1") -> RequestView:
    signed = sign_request(iam, "GET", f"http://testserver{path}", user="alice", now=now)
    return RequestView(method="GET", raw_path=path.encode(), headers=(
        ("host", "testserver"), *((name.lower(), value) for name, value in signed.headers.items())), body=b"")


def test_a_signed_request_records_date_region_and_service_once_a_window() -> None:
    store = CountingStore()
    iam = IAM.from_file(DEMO, store=store)
    start = time.time()
    store.now = start
    for i in range(50):
        principal = iam.authenticate(signed_get(iam, start + i, f"/orders/{i}"), now=start + i)
        assert principal is not None
    assert store.writes == 2  # one claim of the window, one record
    assert iam.last_used.access_key(ALICE_KEY) == LastUsed(float(int(start)), "local", "orders")
    later = start + ACCESS_KEY_WINDOW + 1
    store.now = later
    iam.authenticate(signed_get(iam, later), now=later)
    assert store.writes == 4
    assert iam.last_used.access_key(ALICE_KEY) == LastUsed(float(int(later)), "local", "orders")
    assert iam.last_used.access_key("AKIADEMOBOB000000001") is None


def test_processes_sharing_a_store_write_once_a_window() -> None:
    store = CountingStore()
    first, second = LastUsedTracker(store), LastUsedTracker(store)
    for now in (10.0, 11.0, 12.0):
        first.access_key_used(ALICE_KEY, now=now, region="local", service="orders")
        second.access_key_used(ALICE_KEY, now=now + 0.5, region="eu", service="sts")
    # Each process asks once whether it may write; only the first writes the record.
    assert store.writes == 3
    assert first.access_key(ALICE_KEY) == LastUsed(10.0, "local", "orders")


def test_temporary_keys_are_not_tracked() -> None:
    store = CountingStore()
    LastUsedTracker(store).access_key_used("ASIATEMPORARY0000001", now=1.0, region="local", service="orders")
    assert store.writes == 0


def test_a_password_login_records_its_use_once_a_window() -> None:
    store = CountingStore()
    iam = IAM.from_file(DEMO, store=store)
    bob = iam.snapshot.user("bob")
    assert bob is not None and bob.totp is not None
    start = time.time()
    store.now = start
    iam.login("bob", PASSWORD, bob.totp.code_at(start), now=start)
    iam.login("bob", PASSWORD, bob.totp.code_at(start + 30), now=start + 30)
    assert store.writes == 2
    assert iam.last_used.password(bob.id) == LastUsed(float(int(start)))
    later = start + PASSWORD_WINDOW + 30
    store.now = later
    iam.login("bob", PASSWORD, bob.totp.code_at(later), now=later)
    assert store.writes == 4
    found = iam.last_used.password(bob.id)
    assert found is not None and found.date == int(later)


def test_a_store_that_is_down_leaves_requests_served(caplog: pytest.LogCaptureFixture) -> None:
    iam = IAM.from_file(DEMO, store=DownStore())
    now = time.time()
    with caplog.at_level("WARNING", logger="iam_middleware.last_used"):
        for i in range(3):
            assert iam.authenticate(signed_get(iam, now + i), now=now + i) is not None
    assert sum("cannot be recorded" in r.getMessage() for r in caplog.records) == 1
