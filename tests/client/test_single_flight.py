"""No thundering herd: however many threads or asyncio tasks ask together, the token service sees one call; while
it runs, callers with still-valid credentials keep using them and callers without wait for it. The token service
calls are held at a barrier the test opens, so nothing depends on timing (the timeouts only end a broken run)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx
import pytest
from sts._support import ALICE_KEY, PARTNER, Clock

from iam_middleware import IAM
from iam_middleware.client import Credentials, TemporaryCredentials, TokenServiceClient

from ._support import STS, AsyncCounting, Counting, asgi_transport, wsgi_transport

pytestmark = pytest.mark.anyio
ALICE_CREDENTIALS = Credentials(*ALICE_KEY)
CALLERS = 24
TIMEOUT = 30


class Gate:
    """Holds token service calls until ``open``; says when one arrived."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.opened = threading.Event()

    def hold(self) -> None:
        self.arrived.set()
        assert self.opened.wait(TIMEOUT), "the test never opened the gate"


def role(iam: IAM, clock: Clock, transport: httpx.BaseTransport | None = None,
         async_transport: httpx.AsyncBaseTransport | None = None) -> TemporaryCredentials:
    sts = TokenServiceClient(
        STS, service="orders", region="local", clock=clock,
        client=httpx.Client(transport=transport) if transport is not None else None,
        async_client=httpx.AsyncClient(transport=async_transport) if async_transport is not None else None)
    return sts.assume_role(ALICE_CREDENTIALS, PARTNER, "herd", duration=900, margin=300)


def in_threads(count: int, work: Callable[[], object]) -> tuple[list[threading.Thread], list[object]]:
    results: list[object] = []

    def run() -> None:
        results.append(work())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def test_threads_asking_together_make_one_call(iam: IAM, clock: Clock) -> None:
    started = threading.Semaphore(0)
    everyone = threading.Event()

    def hold() -> None:
        for _ in range(CALLERS):  # the call waits until every thread has started asking
            assert started.acquire(timeout=TIMEOUT)
        everyone.set()

    transport = Counting(wsgi_transport(iam), hold)
    provider = role(iam, clock, transport)

    def ask() -> Credentials:
        started.release()
        return provider.credentials()

    threads, results = in_threads(CALLERS, ask)
    for thread in threads:
        thread.join(TIMEOUT)
    assert everyone.is_set() and len(results) == CALLERS
    assert transport.calls == ["/sts/AssumeRole"]
    assert all(result is results[0] for result in results)


def test_while_one_thread_renews_the_others_keep_the_valid_credentials(iam: IAM, clock: Clock) -> None:
    gate = Gate()
    transport = Counting(wsgi_transport(iam))
    provider = role(iam, clock, transport)
    current = provider.credentials()
    transport.hold = gate.hold
    clock.tick(700)  # in the margin, still valid for 200 s
    threads, renewed = in_threads(1, provider.credentials)
    assert gate.arrived.wait(TIMEOUT)
    others = [provider.credentials() for _ in range(CALLERS)]  # would hang here if they waited for the renewal
    gate.opened.set()
    threads[0].join(TIMEOUT)
    assert all(other is current for other in others)
    assert renewed[0] is not current and provider.credentials() is renewed[0]
    assert transport.calls == ["/sts/AssumeRole"] * 2


def test_callers_without_valid_credentials_wait_for_the_one_renewal(iam: IAM, clock: Clock) -> None:
    gate = Gate()
    transport = Counting(wsgi_transport(iam))
    provider = role(iam, clock, transport)
    provider.credentials()
    transport.hold = gate.hold
    clock.tick(900)  # expired
    leader, first = in_threads(1, provider.credentials)
    assert gate.arrived.wait(TIMEOUT)
    waiters, rest = in_threads(CALLERS - 1, provider.credentials)
    gate.opened.set()
    for thread in (*leader, *waiters):
        thread.join(TIMEOUT)
    assert len(rest) == CALLERS - 1 and all(result is first[0] for result in rest)
    assert transport.calls == ["/sts/AssumeRole"] * 2


async def test_asyncio_tasks_asking_together_make_one_call(iam: IAM, clock: Clock) -> None:
    everyone = asyncio.Event()
    started = 0

    async def hold() -> None:
        await everyone.wait()

    transport = AsyncCounting(asgi_transport(iam), hold)
    provider = role(iam, clock, async_transport=transport)

    async def ask() -> Credentials:
        nonlocal started
        started += 1
        if started == CALLERS:
            everyone.set()
        return await provider.acredentials()

    results = await asyncio.wait_for(asyncio.gather(*(ask() for _ in range(CALLERS))), TIMEOUT)
    assert transport.calls == ["/sts/AssumeRole"]
    assert all(result is results[0] for result in results)


async def test_a_thread_waits_for_a_renewal_an_asyncio_task_runs(iam: IAM, clock: Clock) -> None:
    opened = asyncio.Event()
    arrived = asyncio.Event()

    async def hold() -> None:
        arrived.set()
        await opened.wait()

    transport = AsyncCounting(asgi_transport(iam), hold)
    provider = role(iam, clock, Counting(wsgi_transport(iam)), transport)
    task = asyncio.create_task(provider.acredentials())
    await asyncio.wait_for(arrived.wait(), TIMEOUT)
    threads, results = in_threads(3, provider.credentials)  # nothing valid yet: they wait for the task's call
    opened.set()
    credentials = await asyncio.wait_for(task, TIMEOUT)
    for thread in threads:
        await asyncio.to_thread(thread.join, TIMEOUT)
    assert results == [credentials] * 3 and all(result is credentials for result in results)
    assert transport.calls == ["/sts/AssumeRole"]


async def test_a_cancelled_renewal_hands_over_to_a_waiting_task(iam: IAM, clock: Clock) -> None:
    arrivals = 0
    first_arrived = asyncio.Event()
    never = asyncio.Event()

    async def hold() -> None:
        nonlocal arrivals
        arrivals += 1
        if arrivals == 1:  # the first call hangs until it is cancelled
            first_arrived.set()
            await never.wait()

    transport = AsyncCounting(asgi_transport(iam), hold)
    provider = role(iam, clock, async_transport=transport)
    leader = asyncio.create_task(provider.acredentials())
    await asyncio.wait_for(first_arrived.wait(), TIMEOUT)
    waiter = asyncio.create_task(provider.acredentials())
    await asyncio.sleep(0)  # the waiter is now waiting on the leader's renewal
    leader.cancel()
    credentials = await asyncio.wait_for(waiter, TIMEOUT)
    assert leader.cancelled() and credentials.access_key_id.startswith("ASIA")
    assert transport.calls == ["/sts/AssumeRole"] * 2
