"""``iam-middleware demo``: the example orders API with an embedded directory, and commands that work as printed.

It serves ``examples/starlette_app.py`` with uvicorn on 127.0.0.1, the token service at ``/sts``, and prints, for
each kind of caller, a copy-paste command: a bearer token from an outside identity provider (mapped to a role), a
SigV4 access key for ``curl --aws-sigv4``, a password + TOTP login whose session carries MFA, allowed and denied calls.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt

from .._iam import IAM
from .._settings import WebIdentityProvider
from ..authenticators._jwks import JWKSSource
from ..authenticators._jwt import TrustedIssuer

__all__ = ["add_parser", "demo_config_path", "demo_plan"]

PASSWORD = "correct horse battery staple"


def demo_config_path() -> Path:
    """The demo directory: the copy of ``examples/`` shipped in the package (a wheel install), else the checkout's
    ``examples/iam.toml`` (``pip install -e .``)."""
    shipped = Path(__file__).resolve().parent.parent / "_demo_data" / "iam.toml"
    if shipped.is_file():
        return shipped
    candidate = Path(__file__).resolve().parent.parent.parent / "examples" / "iam.toml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError("the demo needs a checkout of the repository (examples/iam.toml); run it from an "
                            "editable install: pip install -e '.[demo]'")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run the example API with demo users and print commands to try")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--credentials-out", metavar="FILE", help="also write the credentials and calls as JSON")
    parser.add_argument("--no-serve", action="store_true", help="print the commands and exit")
    parser.add_argument("--iam-api", action="store_true",
                        help="serve the directory from a SQLite database, with IAM's own API at /iam "
                             "(boto3, aws iam); needs iam-middleware[sql]")
    parser.add_argument("--database", metavar="URL",
                        help="with --iam-api: the database (default: a new SQLite file in a temporary folder); an "
                             "empty one is given the demo directory, one that is not is served as it is")
    parser.set_defaults(run=run)


class KeyIssuer:
    """The demo's second identity provider: it signs with an Ed25519 key made at start-up and publishes the public
    half as a JWKS document (served at ``/.well-known/jwks.json``), as OIDC providers do. Its tokens map to the role
    ``partner`` through the trust policy's ``Federated: keys.idp.example`` statement."""

    name = "keys.idp.example"
    issuer = "https://keys.idp.example"
    kid = "demo-ed25519-1"

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from jwt.algorithms import OKPAlgorithm

        self._private = Ed25519PrivateKey.generate()
        public = json.loads(OKPAlgorithm.to_jwk(self._private.public_key()))
        public.update(kid=self.kid, alg="EdDSA", use="sig")
        self.jwks = {"keys": [public]}

    def provider(self, audience: str) -> WebIdentityProvider:
        keys = JWKSSource.from_dict(self.jwks)
        return WebIdentityProvider(name=self.name, issuer=TrustedIssuer(self.issuer, (audience,), jwks=keys),
                                   role="partner", tag_claims={"team": "team"})

    def token(self, audience: str, now: float) -> str:
        claims = {"iss": self.issuer, "aud": audience, "sub": "partner-7", "iat": int(now), "exp": int(now) + 3600,
                  "team": "blue"}
        return jwt.encode(claims, self._private, algorithm="EdDSA", headers={"kid": self.kid})


def with_key_issuer(iam: IAM, issuer: KeyIssuer) -> IAM:
    """The demo's IAM with the asymmetric provider beside the file's HMAC one."""
    audience = iam.settings.web_identity[0].issuer.audiences[0]
    settings = replace(iam.settings, web_identity=(*iam.settings.web_identity, issuer.provider(audience)))
    return IAM(iam.snapshot, settings=settings, store=iam.store, clock=iam.clock, source=iam.source, rules=iam.rules)


def _idp_token(iam: IAM, now: float) -> str:
    provider = iam.settings.web_identity[0]
    key = provider.issuer.keys[0].key
    if not isinstance(key, (str, bytes)):
        raise FileNotFoundError("the demo's identity provider must use an HMAC secret (hmac_secret)")
    claims = {"iss": provider.issuer.issuer, "aud": provider.issuer.audiences[0], "sub": "partner-42",
              "team": "green", "iat": int(now), "exp": int(now) + 3600}
    return jwt.encode(claims, key, algorithm=provider.issuer.keys[0].algorithms[0])


def demo_plan(iam: IAM, base: str, *, now: float, key_issuer: KeyIssuer | None = None) -> dict[str, Any]:
    """The demo's callers and the calls to try, each with the status it should get."""
    snapshot = iam.snapshot
    alice = snapshot.user("alice")
    bob = snapshot.user("bob")
    if alice is None or bob is None or bob.totp is None or not alice.access_keys:
        raise FileNotFoundError("the demo directory lacks its users alice (with an access key) and bob (with TOTP)")
    key = alice.access_keys[0]
    scope = f"aws:amz:{iam.settings.regions[0]}:{iam.settings.service}"
    token = _idp_token(iam, now)
    sigv4 = f"--aws-sigv4 {shlex.quote(scope)} --user {shlex.quote(f'{key.id}:{key.secret}')}"
    bob_key = bob.access_keys[0] if bob.access_keys else key
    bob_sigv4 = f"--aws-sigv4 {shlex.quote(scope)} --user {shlex.quote(f'{bob_key.id}:{bob_key.secret}')}"
    bearer = f"-H {shlex.quote('Authorization: Bearer ' + token)}"
    login_body = ('{"username": "bob", "password": "' + PASSWORD + '", "code": "\'"$(iam-middleware totp code '
                  + bob.totp.secret + ')"\'"}')
    login = (f"TOKEN=$(curl -s -X POST {base}/sts/login -H 'content-type: application/json' -d '{login_body}' "
             "| python3 -c 'import json,sys; d=json.load(sys.stdin); "
             "print(d.get(\"token\") or sys.exit(\"login refused: \" + d.get(\"message\", \"\")))')")
    json_body = "-H 'content-type: application/json' -d '{\"item\": \"mug\"}'"

    def curl(who: str, expect: int, args: str) -> dict[str, Any]:
        return {"who": who, "expect": expect, "command": f"curl -s -w ' -> HTTP %{{http_code}}\\n' {args}"}

    eddsa_calls = []
    if key_issuer is not None:
        eddsa = key_issuer.token(iam.settings.web_identity[0].issuer.audiences[0], now)
        eddsa_calls.append(curl("partner role via an EdDSA JWT, its key in the JWKS at /.well-known/jwks.json", 200,
                                f"-H {shlex.quote('Authorization: Bearer ' + eddsa)} {base}/orders/42"))

    calls = [
        curl("anyone", 200, f"{base}/health"),
        curl("nobody (no credential)", 401, f"{base}/orders/42"),
        curl("partner role via an outside JWT", 200, f"{bearer} {base}/orders/42"),
        curl("partner role via an outside JWT", 403, f"-X DELETE {bearer} {base}/orders/42"),
        *eddsa_calls,
        curl("alice, access key (SigV4)", 200, f"{sigv4} {base}/orders"),
        curl("alice, access key (SigV4)", 403, f"-X DELETE {sigv4} {base}/orders/42"),
        curl("bob, access key without MFA: a write asks for a step-up", 403, f"-X POST {bob_sigv4} {json_body} "
             f"{base}/orders"),
        {"who": "bob: password + TOTP login (sets $TOKEN)", "expect": 200, "command": login},
        curl("bob's MFA session may write", 201, f"-X POST -H \"Authorization: Bearer $TOKEN\" {json_body} "
             f"{base}/orders"),
    ]
    return {
        "base_url": base,
        "users": {
            "alice": {"access_key_id": key.id, "secret_access_key": key.secret, "region": iam.settings.regions[0],
                      "service": iam.settings.service},
            "bob": {"password": PASSWORD, "totp_secret": bob.totp.secret,
                    "current_code": bob.totp.code_at(now)},
        },
        "partner_jwt": token,
        "jwks_url": f"{base}/.well-known/jwks.json",
        "calls": calls,
    }


def _print_plan(plan: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"\niam-middleware demo: the orders API at {plan['base_url']}\n")
    out.write("Policies: examples/iam.toml and examples/policies/*.json. Try these (each says what it should get):\n\n")
    for call in plan["calls"]:
        out.write(f"# {call['who']}: expect {call['expect']}\n{call['command']}\n\n")
    bob = plan["users"]["bob"]
    out.write(f"Bob's TOTP code right now: {bob['current_code']}. A code works once: the login command takes the "
              "current one, so run it again only once the next 30-second step has begun (else: login refused).\n"
              "Press Ctrl+C to stop.\n")
    out.flush()


#: What ``--iam-api`` adds to the demo directory: an administrator of IAM (its demo key fixed, as the other demo
#: users' are, so docs/iam-api.md's commands work as printed) and the shipped self-service policy, which alice holds.
IAM_API_ADDITIONS = """
[policies.IAMAdministrator]
document = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "iam:*", Resource = "*" }] }

[policies.SelfService]
file = "policies/self-service.json"

[users.admin]
# Administers the directory through the IAM API (iam:*): iam-middleware demo --iam-api.
policies = ["IAMAdministrator"]
access_keys = [{ id = "AKIADEMOADMIN0000001", secret = "demo/admin/Vm3Qx7LpT2sKw9ZcN4bH8yRjF6dGaE" }]
"""


def iam_api_directory(database: str | None) -> Any:
    """The demo's directory in a database (``--iam-api``): an empty database is given the demo directory, the
    administrator and alice's self-service policy; one that holds a directory is served as it is. Returns the
    ``SQLDirectory``."""
    import shutil
    import tempfile

    from ..directory.sql import SQLDirectory

    folder = Path(tempfile.mkdtemp(prefix="iam-demo-"))
    directory = SQLDirectory(database or f"sqlite:///{folder / 'iam.db'}")
    if directory.revision() == 0:
        source = demo_config_path()
        shutil.copytree(source.parent / "policies", folder / "policies", dirs_exist_ok=True)
        (folder / "iam.toml").write_text(source.read_text() + IAM_API_ADDITIONS)
        directory.import_file(folder / "iam.toml")
        with directory.change() as draft:
            draft.attach_user_policy("alice", "SelfService")
    return directory


def build_demo_app(iam: IAM, key_issuer: KeyIssuer | None = None, *, iam_api: Any = None) -> Any:
    """The example API plus the token service at /sts (and the JWKS of ``key_issuer``), and ``iam_api`` (an
    ``IAMAPI``) at /iam when given."""
    import importlib.util

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from ..sts import token_service

    spec = importlib.util.spec_from_file_location("iam_demo_app", demo_config_path().with_name("starlette_app.py"))
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the directory
        raise FileNotFoundError("examples/starlette_app.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    published = key_issuer.jwks if key_issuer is not None else {"keys": []}

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(published)

    extra = [Mount("/iam", app=iam_api)] if iam_api is not None else []
    return Starlette(routes=[Route("/.well-known/jwks.json", jwks), Mount("/sts", app=token_service(iam)), *extra,
                             Mount("/", app=module.build_app(iam))])


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        config = demo_config_path()
    except FileNotFoundError as exc:
        parser.error(str(exc))
    key_issuer = KeyIssuer()
    reloader = None
    if args.iam_api:
        try:
            from ..directory.sql import SQLDirectoryReloader
            from ..iamapi import IAMAPI
        except ModuleNotFoundError:
            print("error: --iam-api needs SQLAlchemy: pip install 'iam-middleware[sql]'", file=sys.stderr)
            return 2
        directory = iam_api_directory(args.database)
        iam = with_key_issuer(directory.iam(), key_issuer)
        reloader = SQLDirectoryReloader(iam, directory)
    else:
        iam = with_key_issuer(IAM.from_file(config), key_issuer)
    if not args.no_serve:
        busy = _port_in_use(args.host, args.port)
        if busy is not None:
            print(f"error: cannot serve on {args.host}:{args.port} ({busy}); choose another port with --port",
                  file=sys.stderr)
            return 2
    base = f"http://{args.host}:{args.port}"
    plan = demo_plan(iam, base, now=time.time(), key_issuer=key_issuer)
    if reloader is not None:
        plan["iam_api"] = {"endpoint_url": f"{base}/iam/", "database": reloader.directory.source,
                           "admin": {"access_key_id": "AKIADEMOADMIN0000001",
                                     "secret_access_key": "demo/admin/Vm3Qx7LpT2sKw9ZcN4bH8yRjF6dGaE"}}
    if args.credentials_out:
        Path(args.credentials_out).write_text(json.dumps(plan, indent=2) + "\n")
    _print_plan(plan)
    if reloader is not None:
        sys.stdout.write(f"IAM's own API at {base}/iam/ over {reloader.directory.source}, administered by the "
                         "demo user admin (docs/iam-api.md):\n  AWS_ACCESS_KEY_ID=AKIADEMOADMIN0000001 "
                         "AWS_SECRET_ACCESS_KEY=demo/admin/Vm3Qx7LpT2sKw9ZcN4bH8yRjF6dGaE "
                         f"aws iam list-users --endpoint-url {base}/iam/ --region local\n")
        sys.stdout.flush()
    if args.no_serve:
        return 0
    try:
        import uvicorn
    except ModuleNotFoundError:
        print("error: the demo server needs uvicorn: pip install 'iam-middleware[demo]'", file=sys.stderr)
        return 2
    api = IAMAPI(iam, reloader.directory) if reloader is not None else None
    if reloader is not None:
        reloader.start()
    try:
        uvicorn.run(build_demo_app(iam, key_issuer, iam_api=api), host=args.host, port=args.port,
                    log_level="warning")
    finally:
        if reloader is not None:
            reloader.stop()
    return 0


def _port_in_use(host: str, port: int) -> str | None:
    """Why the demo cannot listen on ``host:port`` (checked before anything is printed), or None."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
