"""The forms ``redis_url`` takes, parsed and checked without importing redis, so a bad URL is refused at load.

One server, Sentinel and Cluster (docs/operations.md, "Redis URLs")::

    redis://[[user]:password@]host[:port][/db][?options]     rediss:// over TLS; options as redis-py reads them
    unix://[[user]:password@]/path/to/redis.sock[?db=N]
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?wait_replicas=N]
    redis+cluster://[[user]:password@]host[:port][,host[:port]...]

``rediss+sentinel://`` and ``rediss+cluster://`` use TLS for every connection. Sentinels default to port 26379,
cluster nodes to 6379. ``wait_replicas`` (not on a cluster): how many replicas must hold everything a connection
wrote before the store trusts an answer; 1 by default with Sentinel, 0 otherwise.

Problems are reported without any part of the URL: a mis-split URL could put part of a password anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["MAX_WAIT_REPLICAS", "WAIT_OPTION", "RedisTarget", "parse_redis_url"]

Topology = Literal["server", "sentinel", "cluster"]

WAIT_OPTION = "wait_replicas"
MAX_WAIT_REPLICAS = 16
_SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": ("server", False),
    "rediss": ("server", True),
    "unix": ("server", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_DEFAULT_PORT = {"sentinel": 26379, "cluster": 6379}
_HOST = re.compile(r"[A-Za-z0-9._-]+")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where and how to connect, from a URL. ``location`` is the URL for logs, credentials replaced by ``***``."""

    topology: Topology
    tls: bool
    location: str
    #: Sentinels, or the cluster nodes to discover the cluster from; empty for one server.
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    wait_replicas: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    #: One server: the URL for redis-py, without this store's own option.
    server_url: str = field(default="", repr=False)


def parse_redis_url(url: str) -> RedisTarget:
    """The target ``url`` names; ``ValueError`` saying what is wrong (never quoting the URL) if it names none."""
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in _SCHEMES:
        raise ValueError(f"must start with one of {', '.join(f'{s}://' for s in _SCHEMES)}")
    topology, tls = _SCHEMES[scheme]
    if topology == "server":
        return _server(url, scheme, tls)
    return _nodes(rest, scheme, topology, tls)


def _server(url: str, scheme: str, tls: bool) -> RedisTarget:
    base, _, query = url.partition("?")
    options = _options(query)
    wait = _wait_replicas([value for name, value in options if name == WAIT_OPTION], default=0)
    kept = "&".join(part for part in query.split("&") if part and part.partition("=")[0] != WAIT_OPTION)
    parts = urlsplit(base)
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    db_text = unquote(parts.path).strip("/") if scheme != "unix" else ""
    db_text = db_text or next((value for name, value in options if name == "db"), "0")
    if not (db_text.isascii() and db_text.isdigit()):
        raise ValueError("the database must be a whole number")
    credentials = "***@" if parts.username or parts.password else ""
    if scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// needs the path of the socket")
        location = f"unix://{credentials}{parts.path}?db={int(db_text)}"
    else:
        location = f"{scheme}://{credentials}{_render(parts.hostname or 'localhost', port)}/{int(db_text)}"
    return RedisTarget("server", tls, location, db=int(db_text), wait_replicas=wait,
                       server_url=base + (f"?{kept}" if kept else ""))


def _nodes(rest: str, scheme: str, topology: Topology, tls: bool) -> RedisTarget:
    if "#" in rest:
        raise ValueError("must not have a fragment (#...)")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = tuple(_address(text, _DEFAULT_PORT[topology], number, hosts.count(",") + 1)
                  for number, text in enumerate(hosts.split(","), start=1))
    options = _options(query)
    unknown = sorted({name for name, _ in options} - ({WAIT_OPTION} if topology == "sentinel" else set()))
    if topology == "cluster" and WAIT_OPTION in unknown:
        raise ValueError(f"{WAIT_OPTION} is not available with a Redis Cluster: see docs/operations.md")
    if unknown:
        raise ValueError(f"has an option this form does not take (it takes only {WAIT_OPTION})")
    credentials = "***@" if at and userinfo.strip(":") else ""
    addresses = ",".join(_render(host, port) for host, port in nodes)
    user, secret = unquote(username) or None, unquote(password) or None
    if topology == "cluster":
        if path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0: leave the path out")
        return RedisTarget("cluster", tls, f"{scheme}://{credentials}{addresses}", nodes, username=user,
                           password=secret)
    service_text, _, db_text = path.partition("/")
    service = unquote(service_text)
    if not service or not service.isprintable() or any(c.isspace() for c in service):
        raise ValueError("the path must name the Sentinel service (redis+sentinel://host:26379/mymaster)")
    db_text = db_text.rstrip("/") or "0"
    if not (db_text.isascii() and db_text.isdigit()):
        raise ValueError("the database after the service name must be a whole number")
    wait = _wait_replicas([value for name, value in options if name == WAIT_OPTION], default=1)
    location = f"{scheme}://{credentials}{addresses}/{quote(service, safe='')}/{int(db_text)}"
    return RedisTarget("sentinel", tls, location, nodes, service, int(db_text), wait, username=user, password=secret)


def _address(text: str, default_port: int, number: int, count: int) -> tuple[str, int]:
    where = f"address {number} of {count}"
    if text.startswith("["):
        host, closed, after = text[1:].partition("]")
        if not closed or not _IPV6.fullmatch(host) or (after and not after.startswith(":")):
            raise ValueError(f"{where} is not host[:port] (an IPv6 address goes in brackets)")
        port_text = after[1:]
    else:
        host, _, port_text = text.partition(":")
        if not _HOST.fullmatch(host):
            raise ValueError(f"{where} is not host[:port]")
    if not port_text:
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"{where} has a port that is not a number from 1 to 65535")
    return host, int(port_text)


def _options(query: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError("the options after '?' are not name=value pairs joined by '&'") from None


def _wait_replicas(values: list[str], *, default: int) -> int:
    if not values:
        return default
    if len(values) > 1:
        raise ValueError(f"{WAIT_OPTION} is given more than once")
    value = values[0]
    if not (value.isascii() and value.isdigit() and int(value) <= MAX_WAIT_REPLICAS):
        raise ValueError(f"{WAIT_OPTION} must be a whole number from 0 to {MAX_WAIT_REPLICAS}")
    return int(value)


def _render(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
