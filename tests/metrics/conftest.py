"""Fixtures of the metrics and traces tests: the demo directory at a clock the test moves, the shells over it."""

from __future__ import annotations

import pytest

from iam_middleware import IAM

from ._support import Clock, make_iam


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def iam(clock: Clock) -> IAM:
    return make_iam(clock)
