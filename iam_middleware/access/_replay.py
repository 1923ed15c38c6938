"""A counterexample as a request a person can send: the path, the context it needs, and a ``curl`` line against a
server like the demo's (``iam-middleware demo``: the app at ``/``, the token service at ``/sts``); for a principal
that signs with an access key (a user's, or a role session's temporary one), also a ``python3`` line that signs and
sends the same request with botocore, boto3's own SigV4 signer.

The credential follows from the principal and the context: a user signs with an access key (no MFA keys), or uses a
session token (with or without MFA); a role session uses temporary credentials from ``AssumeRole``; a web identity
sends a token of its provider, minted here with ``iam-middleware token mint`` and the claims the counterexample
needs. Secrets are never printed: they stay in ``$AWS_SECRET_ACCESS_KEY``, ``$TOKEN`` and the like. Context keys a
client cannot choose (``aws:SourceIp``, ``aws:CurrentTime``, ...) are listed for the reader.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from .._settings import Settings
from ..policy._variables import scalar_text
from ..routing import Permission
from ._report import Cell
from ._witness import Witness

__all__ = ["Replay", "replay"]

_PATH_PARAMETER = re.compile(r"\{([A-Za-z_]\w*)(?::[^}]*)?\}|<(?:[^:>]*:)?([A-Za-z_]\w*)>")
_SIGV4_SESSION = '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN"'
#: Keys the connection or the clock sets, which a request line cannot.
_NOT_SENT = {"aws:sourceip": "the caller's address", "aws:currenttime": "the time of the request",
             "aws:epochtime": "the time of the request", "aws:tokenissuetime": "when the credential was issued",
             "aws:multifactorauthage": "seconds since the one-time code", "aws:userid": "the session's name"}


@dataclass(frozen=True, slots=True)
class Replay:
    """A request that shows a finding: ``context`` holds the open keys it sets (as the policies spell them), and
    ``commands`` the shell lines (comments on how to get the credential, then ``curl``)."""

    principal: str
    method: str
    path: str
    context: Mapping[str, Any]
    commands: tuple[str, ...]
    #: The request signed by botocore (SigV4 principals only): one shell line that prints the status and the body.
    botocore: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "method": self.method, "path": self.path,
                "context": dict(self.context), "commands": list(self.commands), "botocore": self.botocore}


def _path(cell: Cell, ids: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return quote(ids.get(match.group(1) or match.group(2), "1"), safe="-._~")

    return _PATH_PARAMETER.sub(value, cell.route.path)


def _spelled(cell: Cell) -> dict[str, str]:
    """Lower-cased key -> the key as the policies spell it."""
    names = {key.lower(): key for key in cell.residual.keys} if cell.residual is not None else {}
    return names


def _botocore(method: str, url: str, headers: Mapping[str, str], key_id: str | None, settings: Settings) -> str:
    """A ``python3 -c`` line that signs the request with botocore's ``SigV4Auth`` (as boto3 signs its calls) and
    sends it with botocore's own HTTP session. ``key_id`` None: a role session's temporary credentials, all three
    from the environment; else a user's key, its secret from ``$AWS_SECRET_ACCESS_KEY``."""
    # Python literals in double quotes (JSON's are Python's too), so the shell's single quotes wrap the script whole.
    if key_id is None:
        credentials = ('Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], '
                       'os.environ["AWS_SESSION_TOKEN"])')
    else:
        credentials = f'Credentials({json.dumps(key_id)}, os.environ["AWS_SECRET_ACCESS_KEY"])'
    sent = f", headers={json.dumps(dict(headers))}" if headers else ""
    script = (
        "import os; from botocore.auth import SigV4Auth; from botocore.awsrequest import AWSRequest; "
        "from botocore.credentials import Credentials; from botocore.httpsession import URLLib3Session; "
        f"r = AWSRequest({json.dumps(method)}, {json.dumps(url)}{sent}); "
        f"SigV4Auth({credentials}, {json.dumps(settings.service)}, {json.dumps(settings.regions[0])}).add_auth(r); "
        "a = URLLib3Session().send(r.prepare()); print(a.status_code, a.text)")
    return f"python3 -c {shlex.quote(script)}"


def _credential(cell: Cell, context: Mapping[str, Any], settings: Settings, base: str,
                directory: str) -> tuple[list[str], str]:
    """(comment lines, curl arguments) for the principal's credential."""
    subject = cell.subject
    scope = f"aws:amz:{settings.regions[0]}:{settings.service}"
    mfa = scalar_text(context["aws:multifactorauthpresent"]).lower() if "aws:multifactorauthpresent" in context \
        else None
    if cell.residual is None:
        return [], ""
    if subject.kind == "web-identity" and subject.provider is not None:
        provider = subject.provider
        prefix = f"{provider.name}:".lower()
        mint = ["iam-middleware", "token", "mint", "--directory", directory, "--provider", provider.name]
        sub = context.get(f"{prefix}sub")
        mint += ["--sub", scalar_text(sub) if sub is not None else "tester"]
        for tag, claim in provider.tag_claims.items():
            value = context.get(f"aws:principaltag/{tag}".lower())
            if value is not None:
                mint += ["--claim", f"{claim}={scalar_text(value)}"]
        for key, value in context.items():
            if key.startswith(prefix) and key != f"{prefix}sub" and not isinstance(value, list):
                mint += ["--claim", f"{key[len(prefix):]}={scalar_text(value)}"]
        return [], f'-H "Authorization: Bearer $({shlex.join(mint)})"'
    if subject.kind == "role":
        how = " from a session with MFA" if mfa == "true" else ""
        role = subject.principal.source_arn
        return [f"# $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN: POST {base}/sts/AssumeRole "
                f"(RoleArn {role}){how}"], f"--aws-sigv4 {shlex.quote(scope)} {_SIGV4_SESSION}"
    name = subject.principal.name
    if mfa == "true":
        return [f"# $TOKEN: a session of {name} with MFA (POST {base}/sts/login with a one-time code)"], \
            '-H "Authorization: Bearer $TOKEN"'
    if mfa is None and subject.access_key_id is not None:
        return [f"# $AWS_SECRET_ACCESS_KEY: the secret of {name}'s access key {subject.access_key_id}"], \
            f'--aws-sigv4 {shlex.quote(scope)} --user "{subject.access_key_id}:$AWS_SECRET_ACCESS_KEY"'
    return [f"# $TOKEN: a session of {name} without MFA (POST {base}/sts/login)"], \
        '-H "Authorization: Bearer $TOKEN"'


def replay(cell: Cell, witness: Witness, settings: Settings, *, base_url: str, directory: str) -> Replay:
    """The request that shows ``witness`` on ``cell``'s principal and route."""
    context = {k: v for k, v in witness.context.items() if k in cell.knowledge.unknown}
    ids = dict(witness.ids)
    query: dict[str, str] = {}
    headers: list[str] = []
    sent: dict[str, str] = {}  # the headers, for botocore
    requirement = cell.route.requirement
    if isinstance(requirement, Permission):
        for name, id_value in ids.items():
            kind, _, key = name.partition(".")
            if kind == "query" and key:
                query[key] = id_value
            elif kind == "header" and key:
                headers.append(f"{key}: {id_value}")
                sent[key] = id_value
        # A context key taken whole from a query parameter or a header is sent as one.
        for key, template in requirement.context.items():
            match = re.fullmatch(r"\{(query|header)\.([^}]+)\}", template)
            value = context.get(key.lower())
            if match and value is not None and not isinstance(value, list):
                if match.group(1) == "query":
                    query[match.group(2)] = scalar_text(value)
                else:
                    headers.append(f"{match.group(2)}: {scalar_text(value)}")
                    sent[match.group(2)] = scalar_text(value)
    base = base_url.rstrip("/")
    if scalar_text(context.get("aws:securetransport", "")).lower() == "true":
        base = re.sub(r"^http:", "https:", base)
    path = _path(cell, ids) + (f"?{urlencode(query)}" if query else "")
    comments, credential = _credential(cell, context, settings, base, directory)
    parts = ["curl"]
    method = cell.route.method
    if method == "WEBSOCKET":
        parts += ["--include", "--no-buffer", "-H", "'Connection: Upgrade'", "-H", "'Upgrade: websocket'", "-H",
                  "'Sec-WebSocket-Version: 13'", "-H", "'Sec-WebSocket-Key: aWFtLW1pZGRsZXdhcmUtMDE='"]
    elif method not in ("GET", "*"):
        parts += ["-X", method]
    if credential:
        parts.append(credential)
    for header in headers:
        parts += ["-H", shlex.quote(header)]
    if "aws:useragent" in context:
        parts += ["-A", shlex.quote(scalar_text(context["aws:useragent"]))]
        sent["User-Agent"] = scalar_text(context["aws:useragent"])
    if "aws:referer" in context:
        parts += ["-e", shlex.quote(scalar_text(context["aws:referer"]))]
        sent["Referer"] = scalar_text(context["aws:referer"])
    parts.append(shlex.quote(base + path))
    signed = None
    if "--aws-sigv4" in credential and method != "WEBSOCKET":  # botocore sends no WebSocket upgrade
        key_id = None if cell.subject.kind == "role" else cell.subject.access_key_id
        signed = _botocore("GET" if method == "*" else method, base + path, sent, key_id, settings)
    spelled = _spelled(cell)
    unsent = [f"{spelled.get(key, key)}={scalar_text(value)} ({_NOT_SENT[key]})" for key, value in context.items()
              if key in _NOT_SENT]
    if unsent:
        comments.append("# the request must also have " + ", ".join(unsent))
    shown = {spelled.get(key, key): value for key, value in sorted(context.items())}
    return Replay(cell.subject.name, "GET" if method == "*" else method, path, shown,
                  (*comments, " ".join(parts)), signed)
