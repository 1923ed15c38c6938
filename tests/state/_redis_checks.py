"""Checks shared by the tests of RedisStore on one server, a cluster and a Sentinel-managed primary."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

import pytest

from iam_middleware.state import StateStore, StateUnavailableError
from iam_middleware.state._redis import RedisUnavailableError

__all__ = ["OPERATIONS", "SECRET", "assert_every_operation_is_refused", "everything_in", "wait_until_usable"]

SECRET = "hunter2-Sup3rSecret"

OPERATIONS: dict[str, Callable[[StateStore], object]] = {
    "claim": lambda store: store.claim("k", 60),
    "advance": lambda store: store.advance("step", 7, 60),
    "incr": lambda store: store.incr("n", 60),
    "get": lambda store: store.get("k"),
    "set": lambda store: store.set("k", b"v", 60),
    "delete": lambda store: store.delete("k"),
    "version": lambda store: store.version("policies"),
    "bump": lambda store: store.bump("policies"),
}


def assert_every_operation_is_refused(store: StateStore) -> list[RedisUnavailableError]:
    errors = []
    for name, operation in OPERATIONS.items():
        with pytest.raises(StateUnavailableError) as info:
            operation(store)
        assert isinstance(info.value, RedisUnavailableError)
        assert info.value.operation == name
        assert f" {name} (" in str(info.value)
        errors.append(info.value)
    return errors


def wait_until_usable(store: StateStore) -> None:
    """Retry a read a bounded number of times: a restarted or unpaused server must be reached again."""
    for _ in range(100):
        try:
            store.get("probe")
            return
        except StateUnavailableError:
            time.sleep(0.05)
    pytest.fail("the store did not recover")


def everything_in(error: BaseException) -> str:
    """The message, repr and full traceback of ``error`` with its chained causes: all a log could show."""
    return "".join(traceback.format_exception(error)) + repr(error)
