"""The app one worker process of the two-worker tests serves: ``python -m uvicorn --factory _app:create_app``.

Configured by environment variables set by the test: ``IAM_MP_CONFIG`` (the directory file), ``IAM_MP_REDIS`` (the
Redis URL) and ``IAM_MP_POLL`` (the reloader's poll interval, seconds). It builds what a deployment builds: the
directory on Redis kept in step by a ``DirectoryReloader`` (background thread, SIGHUP, the admin endpoint at
``/admin``), and the demo API with the token service at ``/sts``.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.routing import Mount

from iam_middleware._admin import admin_app
from iam_middleware._reload import DirectoryReloader
from iam_middleware.cli._demo import build_demo_app
from iam_middleware.state import RedisStore

__all__ = ["create_app"]


def create_app() -> Starlette:
    poll = float(os.environ.get("IAM_MP_POLL", "2"))
    store = RedisStore(os.environ["IAM_MP_REDIS"])
    reloader = DirectoryReloader.open(os.environ["IAM_MP_CONFIG"], store=store, poll_interval=poll,
                                      max_staleness=max(poll, 30.0))
    reloader.start()
    reloader.install_signal_handler()
    iam = reloader.iam
    return Starlette(routes=[Mount("/admin", app=admin_app(iam, reloader)), Mount("/", app=build_demo_app(iam))])
