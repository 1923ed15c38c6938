"""Project-wide test setup: hypothesis profiles and the real redis-server fixtures (one server, cluster, Sentinel)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

pytest_plugins = ["_redis_server", "_redis_cluster", "_redis_sentinel", "_directory_backend"]

# "ci" keeps the whole suite within a few minutes on 2 cores; "dev" keeps hypothesis defaults otherwise.
settings.register_profile("ci", deadline=None, derandomize=False, max_examples=50)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (anyio before 4.x parametrized them over trio too, which is not installed)."""
    return "asyncio"
