"""Fixtures of the token service tests: the demo directory at a frozen clock, served through httpx's ASGI transport."""

from __future__ import annotations

import pytest

from iam_middleware._iam import IAM

from ._support import Client, Clock, freeze_botocore, make_iam


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    freeze_botocore(monkeypatch, clock)
    return clock


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return make_iam(clock)


@pytest.fixture
def client(iam: IAM) -> Client:
    return Client(iam)
