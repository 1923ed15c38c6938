"""Fixtures of the outbound client tests: the demo directory at a clock the test moves, botocore frozen at it."""

from __future__ import annotations

import pytest
from sts._support import Clock, freeze_botocore, make_iam

from iam_middleware import IAM


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    freeze_botocore(monkeypatch, clock)
    return clock


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return make_iam(clock)
