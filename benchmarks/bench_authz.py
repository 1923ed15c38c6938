"""The external authorizer's cost: in process against a bare Starlette request, and through nginx on loopback.

Run on demand: ``python benchmarks/bench_authz.py [--requests N] [--rounds R] [--load N] [--concurrency C]``.

In process (the issue's target: at most 1.5x): one warm bearer subrequest (the same outside HS256 JWT each time)
answered by ``Authorizer`` in nginx's form and in Envoy's, against the same request to a bare Starlette app with
one route; ASGI calls on one event loop, measured in interleaved rounds (``_common.best_per_item``). For scale, no
target: subrequests that each bring a new token (verified, mapped to its role session and decided in full).

Through nginx (``--load`` requests, 0 to skip): the docs' nginx configuration in front of an upstream written for
node's ``http`` module, the authorizer served by ``iam-middleware authz`` (one uvicorn process), against the same
nginx proxying to the same upstream without asking; the load comes from node too (``node/load.mjs``: keep-alive
connections, ``--concurrency`` requests in flight), each run checked for its statuses. Both figures are requests per
second, the best of ``--rounds`` interleaved runs. The issue's aim there: at least 0.5x of the direct proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]

from _common import best_per_item, print_table, ratio  # noqa: E402
from _redis_server import free_port  # noqa: E402
from gateways import _gateway  # noqa: E402

from iam_middleware import IAM  # noqa: E402
from iam_middleware.authz import Authorizer  # noqa: E402

SECRET = "demo-idp-hmac-secret-0123456789abcdef0123"  # examples/iam.toml's outside provider
ISSUER = "https://idp.example"


def token(now: float, n: int = 0) -> str:
    # The same caller each time; ``n`` makes each token distinct (a client that renews its token).
    claims = {"iss": ISSUER, "aud": "orders-api", "sub": "partner-42", "iat": int(now), "exp": int(now) + 3600,
              "jti": f"token-{n}"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def bare_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def scope(method: str, path: str, headers: dict[str, str], client: str = "127.0.0.1") -> dict[str, Any]:
    raw, _, query = path.partition("?")
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": raw, "raw_path": raw.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()], "client": (client, 50000),
            "server": ("127.0.0.1", 9000)}


def batch(app: Any, prepared: dict[str, Any] | list[dict[str, Any]], count: int, loop: asyncio.AbstractEventLoop
          ) -> Callable[[], int]:
    """A function that sends ``count`` requests to ``app`` (copies of one, or the next ``count`` of a list, each
    sent once) and checks every answer is a 200."""
    statuses: list[int] = []
    sent = [0]

    def scopes() -> list[dict[str, Any]]:
        if isinstance(prepared, dict):
            return [prepared] * count
        start, sent[0] = sent[0], sent[0] + count
        if sent[0] > len(prepared):
            raise SystemExit("not enough distinct requests prepared")
        return prepared[start:sent[0]]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run() -> None:
        for one in scopes():
            await app(dict(one), receive, send)

    def go() -> int:
        statuses.clear()
        loop.run_until_complete(run())
        if set(statuses) != {200}:
            raise SystemExit(f"unexpected statuses {sorted(set(statuses))}")
        return count

    return go


def in_process(iam: IAM, requests: int, rounds: int) -> None:
    bearer = f"Bearer {token(time.time())}"
    loop = asyncio.new_event_loop()
    bare = Starlette(routes=[Route("/orders/{order_id}", bare_endpoint)])
    authorizer = Authorizer(iam)
    nginx = {"host": "api.example", "x-original-method": "GET", "x-original-uri": "/orders/42",
             "x-original-framing": "HTTP/1.1 length= encoding=", "x-real-ip": "203.0.113.9",
             "x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "http", "authorization": bearer}
    envoy = {"host": "api.example", "authorization": bearer, "content-length": "0", "x-forwarded-for": "203.0.113.9",
             "x-forwarded-proto": "http", "x-iam-request-body": "forwarded"}
    runs = {
        "bare Starlette request": batch(bare, scope("GET", "/orders/42", {"host": "api.example",
                                                                         "authorization": bearer}), requests, loop),
        "authorizer, nginx subrequest, warm bearer": batch(authorizer, scope("GET", "/nginx", nginx), requests, loop),
        "authorizer, Envoy check request, warm bearer": batch(authorizer, scope("GET", "/envoy/orders/42", envoy),
                                                               requests, loop),
    }
    now = time.time()
    fresh = [scope("GET", "/nginx", {**nginx, "authorization": f"Bearer {token(now, n)}"})
             for n in range(requests * (rounds + 1))]
    runs["authorizer, nginx subrequest, a new token each time"] = batch(authorizer, fresh, requests, loop)
    best = best_per_item(runs, rounds=rounds)
    base = best["bare Starlette request"]
    print(f"In process: best of {rounds} interleaved rounds of {requests} requests each")
    print_table(["figure", "µs/request", "x bare", "target"],
                [[name, f"{value * 1e6:.1f}", ratio(value, base), "<= 1.5x" if "warm" in name else ""]
                 for name, value in best.items()])


@contextmanager
def gateway(nginx_binary: str, prefix: Path, authz_port: int, api_port: int) -> Iterator[tuple[int, int]]:
    """nginx with the docs' configuration, plus a second server that proxies to the same upstream without asking;
    yield both ports."""
    port, direct = free_port(), free_port()
    prefix.mkdir()
    config = _gateway.nginx_config(prefix, port, authz_port, api_port)
    plain = (f"server {{ listen 127.0.0.1:{direct}; location / {{ proxy_set_header Host $http_host; "
             "proxy_pass http://api; } }\n")
    (prefix / "nginx.conf").write_text(config[:config.rindex("}")] + plain + "}\n")
    command = [nginx_binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "startup.log")]
    with _gateway.running(command, port, "nginx", prefix / "output.log"):
        yield port, direct


def through_nginx(requests: int, concurrency: int, rounds: int) -> None:
    node = shutil.which("node")
    nginx_binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if node is None or nginx_binary is None:
        print("Through nginx: skipped (needs nginx and node)")
        return
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        folder = Path(scratch)
        directory = _gateway.gateway_directory(folder)
        authz_port = stack.enter_context(_gateway.authorizer_command(directory, folder / "authz.log"))
        api_port = stack.enter_context(_gateway.upstream(node, folder / "upstream.log"))
        port, direct = stack.enter_context(gateway(nginx_binary, folder / "nginx", authz_port, api_port))
        headers = {"authorization": f"Bearer {token(time.time())}"}
        targets = {"nginx -> upstream, no authorizer": direct, "nginx + authorizer -> upstream": port}
        best = dict.fromkeys(targets, 0.0)
        load(node, port, headers, min(requests, 500), concurrency)  # warm up: connections, caches
        for _ in range(rounds):
            for name, target_port in targets.items():
                best[name] = max(best[name], load(node, target_port, headers, requests, concurrency))
        base = best["nginx -> upstream, no authorizer"]
        print(f"\nThrough nginx on loopback: {requests} GET /orders/42 per run, {concurrency} in flight, "
              f"best of {rounds} interleaved runs")
        print_table(["figure", "requests/s", "x direct", "aim"],
                    [[name, f"{value:.0f}", ratio(value, base), "" if name.startswith("nginx ->") else ">= 0.5x"]
                     for name, value in best.items()])


def load(node: str, port: int, headers: dict[str, str], requests: int, concurrency: int) -> float:
    """Requests per second of one node load run; every answer must be a 200."""
    command = [node, str(HERE / "node" / "load.mjs"), f"http://127.0.0.1:{port}/orders/42", str(requests),
               str(concurrency), json.dumps(headers)]
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, timeout=300).stdout)
    if result["statuses"] != {"200": requests}:
        raise SystemExit(f"unexpected statuses {result['statuses']}")
    return float(requests / result["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per in-process batch")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (in process)")
    parser.add_argument("--load", type=int, default=5000, help="requests per load run through nginx (0: skip)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--load-rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        iam = IAM.from_file(_gateway.gateway_directory(Path(scratch)))
        in_process(iam, args.requests, args.rounds)
    if args.load:
        through_nginx(args.load, args.concurrency, args.load_rounds)


if __name__ == "__main__":
    main()
