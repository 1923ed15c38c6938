"""The observer protocol under the metrics: what an observer of one's own receives, that a failing observer never
changes an answer, and that importing the package imports neither metrics library."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from iam_middleware import IAM
from iam_middleware.gate import RequestContext
from iam_middleware.metrics import Observer, observers_of
from iam_middleware.recent import Recent
from iam_middleware.testing import session_token

from ._support import ALICE, Clock, client, flask_app, make_iam, starlette_app

pytestmark = pytest.mark.anyio


class Recorder(Observer):
    def __init__(self) -> None:
        self.decided_ids: list[str] = []
        self.lookups: list[Recent | None] = []

    def decided(self, context: RequestContext) -> None:
        self.decided_ids.append(context.request_id)

    def looked_up(self, recent: Recent | None) -> None:
        self.lookups.append(recent)


class Broken(Observer):
    def decided(self, context: RequestContext) -> None:
        raise RuntimeError("decided")

    def looked_up(self, recent: Recent | None) -> None:
        raise RuntimeError("looked_up")

    def reloaded(self, ok: bool, version: int) -> None:
        raise RuntimeError("reloaded")


async def test_an_observer_gets_each_decision_and_each_lookup_once(iam: IAM) -> None:
    recorder = Recorder()
    observers_of(iam).add(recorder)
    observers_of(iam).add(recorder)  # added twice, reported to once
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    async with client(starlette_app(iam)) as http:
        for n in range(3):
            assert (await http.get("/orders/1", headers={**alice, "X-Request-ID": f"r{n}"})).status_code == 200
    assert recorder.decided_ids == ["r0"]
    assert recorder.lookups[0] is None
    assert [recent.principal.arn for recent in recorder.lookups[1:] if recent is not None] == [ALICE, ALICE]
    observers_of(iam).remove(recorder)
    async with client(starlette_app(iam)) as http:
        assert (await http.get("/orders/1")).status_code == 401
    assert recorder.decided_ids == ["r0"]


async def test_a_failing_observer_never_changes_an_answer_and_is_logged_once(
        iam: IAM, caplog: pytest.LogCaptureFixture) -> None:
    observers_of(iam).add(Broken())
    recorder = Recorder()
    observers_of(iam).add(recorder)  # after the broken one: still reported to
    alice = {"Authorization": "Bearer " + session_token(iam, "alice")}
    with caplog.at_level(logging.ERROR, logger="iam_middleware.metrics"):
        async with client(starlette_app(iam)) as http:
            for _ in range(3):
                assert (await http.get("/orders/1", headers=alice)).status_code == 200
                assert (await http.get("/orders/1")).status_code == 401
        flask = flask_app(iam).test_client()
        assert flask.get("/orders/1", headers=alice).status_code == 200
    assert len(recorder.decided_ids) == 5
    failures = [record for record in caplog.records if record.name == "iam_middleware.metrics"]
    assert len(failures) == 2  # decided and looked_up, each logged the first time only
    assert all(record.exc_info is not None for record in failures)


def test_a_failing_observer_of_a_reload_is_logged_once_and_the_others_still_hear_of_it(
        iam: IAM, caplog: pytest.LogCaptureFixture) -> None:
    heard: list[tuple[bool, int]] = []

    class Reloads(Observer):
        def reloaded(self, ok: bool, version: int) -> None:
            heard.append((ok, version))

    hub = observers_of(iam)
    hub.add(Broken())
    hub.add(Reloads())
    with caplog.at_level(logging.ERROR, logger="iam_middleware.metrics"):
        hub.reloaded(True, 2)
        hub.reloaded(False, 2)
    assert heard == [(True, 2), (False, 2)]
    assert len([record for record in caplog.records if record.name == "iam_middleware.metrics"]) == 1


def test_observers_belong_to_one_iam(iam: IAM, clock: Clock) -> None:
    other = make_iam(clock)
    assert observers_of(iam) is observers_of(iam)
    assert observers_of(iam) is not observers_of(other)


def test_importing_the_package_imports_no_metrics_library() -> None:
    code = ("import sys, iam_middleware, iam_middleware.asgi, iam_middleware.gate, iam_middleware.metrics; "
            "from iam_middleware.metrics import Observer, observers_of; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'opentelemetry')); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
