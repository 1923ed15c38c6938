"""No credential material ever reaches a metric or a trace: not in a label value, a metric name or a span
attribute, whatever the request carries (generated credentials of every kind, good ones, bad ones, malformed
ones, through the ASGI middleware, Flask and the token service)."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from iam_middleware import IAM
from iam_middleware.metrics import OpenTelemetryTracing, PrometheusMetrics
from iam_middleware.testing import session_token, sign_request, web_identity_token

from ._support import BASE, PASSWORD, Clock, client, flask_app, make_iam, starlette_app

#: Characters of tokens, keys, signatures and passwords (base64, base64url, hex, JWT dots).
SECRET = st.text(alphabet=string.ascii_letters + string.digits + "+/=_-.", min_size=20, max_size=64)
PATHS = st.sampled_from(["/orders/1", "/health", "/nowhere"])
WINDOW = 12  # no stretch of this many characters of a credential may appear anywhere


class Observed:
    """One IAM with both observers, its shells, and everything they reported so far as one list of strings."""

    def __init__(self) -> None:
        self.iam: IAM = make_iam(Clock())
        self.metrics = PrometheusMetrics(self.iam)
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        OpenTelemetryTracing(self.iam, tracer_provider=self.provider)
        self.asgi = starlette_app(self.iam)
        self.flask = flask_app(self.iam).test_client()

    def send(self, method: str, path: str, headers: dict[str, str], json: object = None) -> None:
        async def go() -> None:
            async with client(self.asgi) as http:
                with self.provider.get_tracer("test").start_as_current_span("request"):
                    await http.request(method, path, headers=headers, json=json)

        asyncio.run(go())
        with self.provider.get_tracer("test").start_as_current_span("request"):
            self.flask.open(path, method=method, headers=headers, json=json)

    def reported(self) -> Iterator[str]:
        body, _ = self.metrics.exposition()
        yield body.decode()
        for span in self.exporter.get_finished_spans():
            yield span.name
            for name, value in (span.attributes or {}).items():
                yield name + "=" + str(value)

    def assert_absent(self, *credentials: str) -> None:
        reported = list(self.reported())
        for credential in credentials:
            for start in range(max(1, len(credential) - WINDOW + 1)):
                piece = credential[start:start + WINDOW]
                leaked = [text for text in reported if piece in text]
                assert not leaked, f"{piece!r} of a credential was reported: {leaked[0][:200]!r}"


@pytest.fixture(scope="module")
def observed() -> Observed:
    return Observed()


def _sigv4(key_id: str, signature: str) -> str:
    return (f"AWS4-HMAC-SHA256 Credential={key_id}/20270115/local/orders/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={signature}")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(secret=SECRET, path=PATHS, slot=st.integers(min_value=0, max_value=8))
def test_generated_credentials_never_reach_a_label_or_an_attribute(observed: Observed, secret: str, path: str,
                                                                    slot: int) -> None:
    headers: dict[str, str] = {"X-Request-ID": "fixed-request-id"}
    method, json = "GET", None
    if slot == 0:
        headers["Authorization"] = f"Bearer {secret}"
    elif slot == 1:
        headers["Authorization"] = f"Bearer eyJ{secret}.eyJ{secret}.{secret}"  # shaped as a JWT
    elif slot == 2:
        headers["Authorization"] = _sigv4("AKIADEMOALICE0000001", secret)
        headers["X-Amz-Date"] = "20270115T080000Z"
    elif slot == 3:  # temporary credentials: the session token rides in its own header
        headers["Authorization"] = _sigv4("ASIAQWERTYUIOPASDFGH", "0" * 64)
        headers["X-Amz-Date"] = "20270115T080000Z"
        headers["X-Amz-Security-Token"] = secret
    elif slot == 4:
        headers["Cookie"] = f"{observed.iam.settings.cookie_name}={secret}"
    elif slot == 5:
        path += ("?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIADEMOALICE0000001%2F20270115%2Flocal%2F"
                 f"orders%2Faws4_request&X-Amz-Date=20270115T080000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
                 f"&X-Amz-Signature={quote(secret, safe='')}")
    elif slot == 6:
        headers["Authorization"] = secret  # no scheme at all
    elif slot == 7:
        headers["Authorization"] = f"Basic {secret}"
    else:  # a password and a one-time code at the token service
        method, path, json = "POST", "/sts/login", {"username": "bob", "password": secret, "code": secret[:6]}
    observed.send(method, path, headers, json)
    observed.assert_absent(secret)


def test_good_credentials_never_reach_a_label_or_an_attribute(observed: Observed) -> None:
    iam = observed.iam
    session = session_token(iam, "alice")
    observed.send("GET", "/orders/1", {"Authorization": "Bearer " + session})
    observed.send("GET", "/orders/1", {"Cookie": f"{iam.settings.cookie_name}={session}"})
    outside = web_identity_token(iam, subject="partner-7")
    observed.send("GET", "/orders/1", {"Authorization": "Bearer " + outside})
    signed = sign_request(iam, "GET", BASE + "/orders/1", user="alice")
    observed.send("GET", "/orders/1", dict(signed.headers))
    presigned = sign_request(iam, "GET", BASE + "/orders/1", user="alice", presign_expires=60)
    observed.send("GET", presigned.url.removeprefix(BASE), {})
    observed.send("POST", "/sts/login", {}, {"username": "bob", "password": PASSWORD, "code": "000000"})
    user = iam.snapshot.user("alice")
    assert user is not None
    secret_key = user.access_keys[0].secret
    signature = signed.headers["Authorization"].rpartition("Signature=")[2]
    arns = [text for text in observed.reported() if text.startswith("iam.principal.arn=")]
    assert "iam.principal.arn=arn:app:sts::111122223333:assumed-role/partner/partner-7" in arns
    observed.assert_absent(session, outside, secret_key, signature, PASSWORD,
                           presigned.url.rpartition("X-Amz-Signature=")[2])
