"""Microseconds per request, called in-process: bare Starlette, with IAMMiddleware, and the hand-rolled baseline
(Starlette's AuthenticationMiddleware + pyjwt + ``@requires``); bare Flask and Flask with IAMFlask (``app.wsgi_app``
called directly). All in the same run.

Run on demand: ``python benchmarks/bench_middleware.py [--requests N] [--repeat R]``.
Targets (issue "One request pipeline for every framework"): warm caches at most 1.25x the bare app; the Flask
adapter at most 1.15x bare Flask; FastAPI's Authorize dependency behind the middleware at most 1.25x bare FastAPI,
without it at most 1.5x. A new HS256 token each request (issue "Fast on first sight"): at most 2.5x bare Starlette.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser, requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from iam_middleware import IAM, IAMMiddleware, Principal, permission
from iam_middleware_fastapi import Authorize

ROOT = Path(__file__).resolve().parent.parent
# FastAPI resolves endpoint annotations in this module's globals.
MayGet = Annotated[Principal, Depends(Authorize("orders:GetOrder",
                                                resource="arn:app:orders::{account}:order/{order_id}"))]
SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"
ISSUER = "https://idp.example"


def token(now: float, n: int = 0) -> str:
    # The same caller each time; ``n`` makes each token distinct (a client refreshing its token).
    claims = {"iss": ISSUER, "aud": "orders-api", "sub": "partner-42", "exp": int(now) + 3600, "iat": int(now),
              "jti": f"token-{n}"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def bare_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")
async def protected_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@requires("authenticated")
async def baseline_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


class JWTBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        header = conn.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        claims = jwt.decode(header[7:], SECRET, algorithms=["HS256"], audience="orders-api", issuer=ISSUER)
        return AuthCredentials(["authenticated"]), SimpleUser(claims["sub"])


def scope_for(auth: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/orders/42", "raw_path": b"/orders/42", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", auth.encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }


def runner(app: Any, scopes: Callable[[int], dict[str, Any]], count: int, rounds: int = 1) -> Callable[[], float]:
    """A callable that runs one batch of ``count`` requests and returns seconds per request. With ``rounds`` > 1,
    each batch gets its own scopes (``scopes`` numbered across batches), so nothing repeats across batches."""
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    batches = [[scopes(b * count + i) for i in range(count)] for b in range(rounds)]
    turn = [0]

    async def batch() -> float:
        statuses.clear()
        prepared = batches[turn[0] % rounds]
        turn[0] += 1
        start = time.perf_counter()
        for scope in prepared:
            await app(dict(scope), receive, send)
        elapsed = time.perf_counter() - start
        if set(statuses) != {200}:
            raise SystemExit(f"unexpected statuses {sorted(set(statuses))}")
        return elapsed / count

    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(batch())


def wsgi_runner(app: Any, auth: str, count: int) -> Callable[[], float]:
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/orders/42", "RAW_URI": "/orders/42", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": auth, "wsgi.url_scheme": "http",
        "wsgi.input": None, "wsgi.errors": None, "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    def batch() -> float:
        import io

        statuses.clear()
        start = time.perf_counter()
        for _ in range(count):
            env = dict(environ)
            env["wsgi.input"] = io.BytesIO(b"")
            for _chunk in app.wsgi_app(env, start_response):
                pass
        elapsed = time.perf_counter() - start
        if {s.split()[0] for s in statuses} != {"200"}:
            raise SystemExit(f"unexpected Flask statuses {sorted(set(statuses))}")
        return elapsed / count

    return batch


def fastapi_apps(iam: IAM) -> tuple[Any, Any, Any]:
    """Bare FastAPI, FastAPI with install() and an Authorize dependency, and the dependency alone."""
    from fastapi import FastAPI

    from iam_middleware_fastapi import install

    bare = FastAPI()

    @bare.get("/orders/{order_id}")
    async def bare_get(order_id: str) -> str:
        return "ok"

    apps = [bare]
    for middleware in (True, False):
        app = FastAPI()
        install(app, iam, middleware=middleware, public_docs=True)

        async def get(order_id: str, principal: MayGet) -> str:
            return "ok"

        app.get("/orders/{order_id}")(get)
        apps.append(app)
    return apps[0], apps[1], apps[2]


def flask_apps(iam: IAM) -> tuple[Any, Any]:
    from flask import Flask

    from iam_middleware_flask import IAMFlask

    bare = Flask("bare")
    bare.add_url_rule("/orders/<order_id>", "get_order", lambda order_id: "ok")
    protected = Flask("protected")
    guard = IAMFlask(protected, iam)
    view = guard.permission("orders:GetOrder", resource="arn:app:orders::{account}:order/{order_id}")(
        lambda order_id: "ok")
    protected.add_url_rule("/orders/<order_id>", "get_order", view)
    return bare, protected


def best(run: Callable[[], float], repeat: int) -> float:
    gc.disable()
    try:
        run()  # warm up
        return min(run() for _ in range(repeat)) * 1e6
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    now = time.time()
    iam = IAM.from_file(ROOT / "examples" / "iam.toml")
    one = "Bearer " + token(now)
    rounds = args.repeat + 1  # the warm-up batch plus one per timed round: every token is new when it is sent
    fresh = ["Bearer " + token(now, i) for i in range(args.requests * rounds)]

    bare = Starlette(routes=[Route("/orders/{order_id}", bare_endpoint)])
    protected = IAMMiddleware(Starlette(routes=[Route("/orders/{order_id}", protected_endpoint)]), iam=iam)
    baseline = Starlette(routes=[Route("/orders/{order_id}", baseline_endpoint)],
                         middleware=[Middleware(AuthenticationMiddleware, backend=JWTBackend())])
    n = args.requests
    figures = {
        "bare Starlette app": best(runner(bare, lambda i: scope_for(one), n), args.repeat),
        "baseline: AuthenticationMiddleware + pyjwt + @requires": best(runner(baseline, lambda i: scope_for(one), n),
                                                                        args.repeat),
        "IAMMiddleware, HS256 bearer, warm caches": best(runner(protected, lambda i: scope_for(one), n), args.repeat),
        "IAMMiddleware, a new HS256 token each request": best(
            runner(protected, lambda i: scope_for(fresh[i]), n, rounds), args.repeat
        ),
    }
    bare_fastapi, fastapi_mw, fastapi_alone = fastapi_apps(iam)
    figures["bare FastAPI app"] = best(runner(bare_fastapi, lambda i: scope_for(one), n), args.repeat)
    figures["FastAPI, Authorize behind the middleware, warm"] = best(runner(fastapi_mw, lambda i: scope_for(one), n),
                                                                     args.repeat)
    figures["FastAPI, Authorize without the middleware, warm"] = best(
        runner(fastapi_alone, lambda i: scope_for(one), n), args.repeat)
    bare_flask, protected_flask = flask_apps(iam)
    figures["bare Flask app (wsgi_app)"] = best(wsgi_runner(bare_flask, one, n), args.repeat)
    figures["IAMFlask, HS256 bearer, warm caches"] = best(wsgi_runner(protected_flask, one, n), args.repeat)
    bare_us = figures["bare Starlette app"]
    baseline_us = figures["baseline: AuthenticationMiddleware + pyjwt + @requires"]
    bases = {name: bare_us for name in figures}
    flask_us = figures["bare Flask app (wsgi_app)"]
    bases["bare Flask app (wsgi_app)"] = bases["IAMFlask, HS256 bearer, warm caches"] = flask_us
    for name in ("bare FastAPI app", "FastAPI, Authorize behind the middleware, warm",
                 "FastAPI, Authorize without the middleware, warm"):
        bases[name] = figures["bare FastAPI app"]
    targets = {"IAMMiddleware, HS256 bearer, warm caches": 1.25, "IAMMiddleware, a new HS256 token each request": 2.5,
               "IAMFlask, HS256 bearer, warm caches": 1.15, "FastAPI, Authorize behind the middleware, warm": 1.25,
               "FastAPI, Authorize without the middleware, warm": 1.5}
    print(f"{'figure':58} {'µs/request':>11} {'x bare':>8} {'x baseline':>11} {'target':>8}")
    for name, value in figures.items():
        target = targets.get(name)
        ratio = value / bases[name]
        verdict = "" if target is None else ("PASS" if ratio <= target else "MISS") + f" <={target}x"
        print(f"{name:58} {value:11.1f} {ratio:7.2f}x {value / baseline_us:10.2f}x {verdict:>8}")
    print("x bare: against the bare app of the same framework; x baseline: against the hand-rolled Starlette baseline.")


if __name__ == "__main__":
    main()
