"""Two worker processes, one Redis: what one worker learns (a used code, a revocation, a reload) binds the other,
and a Redis outage closes exactly the doors that need it, then everything recovers without a restart.

Runs the real thing: two ``uvicorn`` processes (conftest.py), real Redis, requests signed by real botocore. Redis
is never mocked; waits are bounded polls; speed is never asserted.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import redis

from ._cluster import (
    ACCOUNT,
    ALICE_KEY,
    IDP_SECRET,
    OPS_KEY,
    Cluster,
    Worker,
    eventually,
    login,
    request,
    signed,
)

# The workers' IAM settings (examples/iam.toml): a session is re-checked against Redis after this many seconds.
SESSION_CACHE_SECONDS = 1.0


def partner_jwt() -> str:
    """A token of the demo's outside identity provider (mapped to the role ``partner``): needs no shared state."""
    now = int(time.time())
    claims = {"iss": "https://idp.example", "aud": "orders-api", "sub": "partner-42", "team": "green", "iat": now,
              "exp": now + 600}
    return jwt.encode(claims, IDP_SECRET, algorithm="HS256")


def status(worker: Worker) -> dict[str, object]:
    response = signed("GET", f"{worker.url}/admin/status", OPS_KEY)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def assert_unavailable(response: httpx.Response) -> None:
    """A 503 that says why and when to come back: never a 500, never an allow."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["error"] == "ServiceUnavailable"
    assert body["message"]
    assert "127.0.0.1" not in body["message"]  # the reason, without the infrastructure's addresses


# TOTP ------------------------------------------------------------------------------------------------------------
def test_a_code_accepted_by_one_worker_is_refused_by_the_other(cluster: Cluster) -> None:
    code = cluster.code("bob")
    first = login(cluster.a, "bob", code)
    assert first.status_code == 200, first.text
    replay = login(cluster.b, "bob", code)
    assert replay.status_code == 401
    assert replay.json()["error"] == "InvalidLogin"
    assert "token" not in replay.json()


def test_the_same_code_sent_to_both_workers_at_once_logs_in_once(cluster: Cluster) -> None:
    code = cluster.code("frank")
    targets = [cluster.a, cluster.b] * 3
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(lambda worker: login(worker, "frank", code), targets))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 401, 401, 401, 401, 401]


# Sessions and temporary credentials ----------------------------------------------------------------------------
def test_a_session_ended_on_one_worker_is_refused_by_the_other_within_the_bound(cluster: Cluster) -> None:
    issued = login(cluster.a, "carol", cluster.code("carol"))
    assert issued.status_code == 200, issued.text
    token = issued.json()["token"]
    assert request("GET", f"{cluster.b.url}/orders/42", token=token).status_code == 200

    logout = request("POST", f"{cluster.a.url}/sts/logout", token=token)
    assert logout.status_code == 200, logout.text
    ended = time.time()
    # The documented bound: a worker may answer a session from its cache for session_cache_seconds after its last
    # look at Redis. Any request sent after that is refused, on every worker.
    time.sleep(max(0.0, ended + SESSION_CACHE_SECONDS + 0.05 - time.time()))
    for worker in cluster.workers:
        refused = request("GET", f"{worker.url}/orders/42", token=token)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "SessionRevoked"


def test_temporary_credentials_revoked_on_one_worker_are_refused_by_the_other_at_once(cluster: Cluster) -> None:
    assumed = signed("POST", f"{cluster.a.url}/sts/AssumeRole", ALICE_KEY,
                     json_body={"RoleArn": f"arn:app:iam::{ACCOUNT}:role/partner", "RoleSessionName": "two-workers"})
    assert assumed.status_code == 200, assumed.text
    credentials = assumed.json()["Credentials"]
    key = (credentials["AccessKeyId"], credentials["SecretAccessKey"])
    token = credentials["SessionToken"]
    assert signed("GET", f"{cluster.b.url}/orders/42", key, session_token=token).status_code == 200

    revoked = signed("POST", f"{cluster.b.url}/sts/revoke", key, session_token=token,
                     json_body={"AccessKeyId": key[0]})
    assert revoked.status_code == 200, revoked.text
    for worker in cluster.workers:
        refused = signed("GET", f"{worker.url}/orders/42", key, session_token=token)
        assert refused.status_code == 401, refused.text


# Reload ----------------------------------------------------------------------------------------------------------
def test_a_reload_on_one_worker_is_seen_by_the_other(cluster: Cluster) -> None:
    alice_get = "/orders/42"
    for worker in cluster.workers:
        assert signed("GET", f"{worker.url}{alice_get}", ALICE_KEY).status_code == 200
    before = {worker.name: status(worker)["version"] for worker in cluster.workers}
    disabled = cluster.original.replace(f'id = "{ALICE_KEY[0]}",', f'id = "{ALICE_KEY[0]}", active = false,')
    assert disabled != cluster.original
    try:
        # The workers look at the file only once an hour (conftest.POLL): B can learn of the change only from A.
        cluster.write_directory(disabled)
        reloaded = signed("POST", f"{cluster.a.url}/admin/reload", OPS_KEY)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["reloaded"] is True
        refused = eventually(lambda: signed("GET", f"{cluster.b.url}{alice_get}", ALICE_KEY),
                             lambda response: response.status_code != 200)
        assert refused.status_code == 401, refused.text
        assert status(cluster.b)["version"] == before["B"] + 1  # type: ignore[operator]

        # An invalid file is refused where it is loaded, and announces nothing: both keep the last good directory.
        cluster.write_directory(disabled.replace('groups = ["readers"]', 'groups = ["no-such-group"]', 1))
        invalid = signed("POST", f"{cluster.a.url}/admin/reload", OPS_KEY)
        assert invalid.status_code == 422
        assert invalid.json()["reloaded"] is False
        assert any("no-such-group" in line for line in invalid.json()["errors"])
        for worker in cluster.workers:
            assert signed("GET", f"{worker.url}{alice_get}", ALICE_KEY).status_code == 401
            assert signed("GET", f"{worker.url}/admin/status", OPS_KEY).status_code == 200
        assert status(cluster.b)["last_error"] is None  # B never loaded the bad file

        # SIGHUP is the other way to ask one process; the good file comes back on both.
        cluster.write_directory(cluster.original)
        os.kill(cluster.a.pid, signal.SIGHUP)
        for worker in cluster.workers:
            allowed = eventually(lambda w=worker: signed("GET", f"{w.url}{alice_get}", ALICE_KEY),  # type: ignore[misc]
                                 lambda response: response.status_code == 200)
            assert allowed.status_code == 200, allowed.text
    finally:
        cluster.write_directory(cluster.original)
        signed("POST", f"{cluster.a.url}/admin/reload", OPS_KEY)


# Redis down, slow, restarted -------------------------------------------------------------------------------------
def test_a_hung_redis_answers_503_and_jwt_and_sigv4_keep_working(cluster: Cluster) -> None:
    issued = login(cluster.a, "erin", cluster.code("erin"))
    assert issued.status_code == 200, issued.text
    token = issued.json()["token"]
    client = redis.Redis.from_url(cluster.redis.url)
    pid = int(client.info("server")["process_id"])
    client.close()
    time.sleep(SESSION_CACHE_SECONDS + 0.05)  # past the session cache: the next check must ask Redis
    os.kill(pid, signal.SIGSTOP)  # Redis hangs: connections are accepted by the kernel, nothing is answered
    try:
        for worker in cluster.workers:
            assert_unavailable(request("GET", f"{worker.url}/orders/42", token=token))
            assert_unavailable(login(worker, "erin", cluster.code("erin")))
            assert request("GET", f"{worker.url}/orders/42", token=partner_jwt()).status_code == 200
            assert signed("GET", f"{worker.url}/orders", ALICE_KEY).status_code == 200
    finally:
        os.kill(pid, signal.SIGCONT)
    for worker in cluster.workers:
        recovered = eventually(lambda w=worker: request("GET", f"{w.url}/orders/42", token=token),  # type: ignore[misc]
                               lambda response: response.status_code == 200)
        assert recovered.status_code == 200, recovered.text


def test_redis_stopped_fails_closed_then_everything_recovers_without_a_restart(cluster: Cluster) -> None:
    issued = login(cluster.a, "alice", cluster.code("alice"))
    assert issued.status_code == 200, issued.text
    session = issued.json()["token"]
    assumed = signed("POST", f"{cluster.a.url}/sts/AssumeRole", ALICE_KEY,
                     json_body={"RoleArn": f"arn:app:iam::{ACCOUNT}:role/partner", "RoleSessionName": "outage"})
    assert assumed.status_code == 200, assumed.text
    credentials = assumed.json()["Credentials"]
    temporary = (credentials["AccessKeyId"], credentials["SecretAccessKey"])
    temporary_token = credentials["SessionToken"]
    partner = partner_jwt()

    cluster.redis.stop()
    stopped = time.time()
    try:
        time.sleep(max(0.0, stopped + SESSION_CACHE_SECONDS + 0.05 - time.time()))
        for worker in cluster.workers:
            # What needs shared state to be safe is refused, with a reason and a Retry-After...
            assert_unavailable(request("GET", f"{worker.url}/orders/42", token=session))
            assert_unavailable(signed("GET", f"{worker.url}/orders/42", temporary, session_token=temporary_token))
            assert_unavailable(login(worker, "dave", cluster.code("dave")))  # no code without its replay check
            # ...and credentials verified against the loaded directory alone keep working.
            assert request("GET", f"{worker.url}/orders/42", token=partner).status_code == 200
            assert signed("GET", f"{worker.url}/orders", ALICE_KEY).status_code == 200
            assert signed("DELETE", f"{worker.url}/orders/42", ALICE_KEY).status_code == 403
            assert request("GET", f"{worker.url}/orders/42").status_code == 401
    finally:
        cluster.redis.start()

    # Redis is back (empty: the test server keeps nothing on disk). No worker is restarted.
    fresh = eventually(lambda: login(cluster.b, "dave", cluster.code("dave")),
                       lambda response: response.status_code != 503)
    assert fresh.status_code == 200, fresh.text
    token = fresh.json()["token"]
    for worker in cluster.workers:
        assert request("GET", f"{worker.url}/orders/42", token=token).status_code == 200
        # Records lost with Redis's data are not resurrected: the old session and keys are refused, not trusted.
        assert request("GET", f"{worker.url}/orders/42", token=session).status_code == 401
        assert signed("GET", f"{worker.url}/orders/42", temporary, session_token=temporary_token).status_code == 401
    # Announcements flow again: a reload on B reaches A (announced until one arrives: A re-subscribes within about a
    # second of the restart, and a reload announced before that would only be seen at A's next poll).
    version = status(cluster.a)["version"]

    def reload_on_b_seen_by_a() -> object:
        assert signed("POST", f"{cluster.b.url}/admin/reload", OPS_KEY).status_code == 200
        return eventually(lambda: status(cluster.a)["version"], lambda v: v != version, timeout=0.5)

    assert eventually(reload_on_b_seen_by_a, lambda v: v != version) != version
