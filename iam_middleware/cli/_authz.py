"""``iam-middleware authz --directory iam.toml``: the external authorizer for nginx and Envoy (and the AuthZEN
endpoints, docs/authzen.md), served by uvicorn.

The directory file gives the rules table (``[[routes]]``), the authenticators and the policies; a change of the
file is in force within seconds (its ``[[routes]]`` and ``[settings]`` at the next start). uvicorn's own reading of
``X-Forwarded-*`` is off: the authorizer reads them itself, through ``trusted_proxies`` (docs/gateways.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._iam import IAM
from .._reload import DirectoryReloader

if TYPE_CHECKING:
    import uvicorn

__all__ = ["add_parser", "uvicorn_config"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("authz", help="serve the external authorizer for nginx auth_request and Envoy "
                                 "ext_authz", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", required=True, metavar="FILE",
                        help="the directory file (iam.toml), with its [[routes]] rules table")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    parser.add_argument("--pdp-url", metavar="URL", help="the authorizer's own https URL, published in the AuthZEN "
                        "metadata document (/.well-known/authzen-configuration; docs/authzen.md)")
    parser.set_defaults(run=run)


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """How the command serves the authorizer (the tests serve it so too). uvicorn must not rewrite the peer and the
    scheme from ``X-Forwarded-*`` itself: the authorizer reads them, and only from trusted proxies. Idle connections
    stay open longer than nginx keeps its own (60 s), so nginx, not the authorizer, closes them: a connection closed
    under a subrequest nginx is sending would be an error page for the client."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                          lifespan="on", timeout_keep_alive=75)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        iam = IAM.from_file(args.directory)
    except (OSError, ConfigurationError) as exc:
        print(f"error: {args.directory}: {exc}", file=sys.stderr)
        return 1
    if not iam.rules:
        print(f"error: {args.directory} has no [[routes]] rules table: every request would be refused",
              file=sys.stderr)
        return 1
    if not iam.settings.trusted_proxies:
        print("warning: settings.trusted_proxies is empty: every caller's address is the gateway's, and the "
              "original scheme is taken for http (docs/gateways.md)", file=sys.stderr)
    try:
        import uvicorn
    except ModuleNotFoundError:
        print("error: the authorizer needs uvicorn: pip install uvicorn", file=sys.stderr)
        return 2
    from ..authz import Authorizer

    try:
        authorizer = Authorizer(iam, pdp_url=args.pdp_url)
    except ConfigurationError as exc:
        print(f"error: --pdp-url: {exc}", file=sys.stderr)
        return 1
    reloader = DirectoryReloader(iam)
    reloader.start()
    try:
        uvicorn.Server(uvicorn_config(authorizer, args.host, args.port)).run()
    finally:
        reloader.stop()
    return 0
