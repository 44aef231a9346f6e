"""NATS and Postgres stopped and restarted under traffic: clients get 503s (never a 500 or a hang)
while a dependency is down, the system recovers by itself, and no acknowledged write is lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.servers import Servers
from tests.stack import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


class Traffic:
    """Writes (with idempotency keys) and reads in a loop, recording every outcome."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.statuses: Counter[int] = Counter()
        self.acknowledged: set[str] = set()
        self.failed: set[str] = set()
        self.stop = asyncio.Event()
        self.n = 0

    async def run(self) -> None:
        while not self.stop.is_set():
            self.n += 1
            key = f"out-{self.n:05d}"
            try:
                r = await self.client.post(
                    "/api/presets", json={"id": key, "name": key}, headers={"Idempotency-Key": key}, timeout=15
                )
                status = r.status_code
                if status not in (201, 503, 504):
                    raise AssertionError(f"unexpected {status}: {r.text}")
                if status != 201:
                    assert r.json()["code"] in ("UNAVAILABLE", "TIMEOUT"), r.text
                g = await self.client.get("/api/presets", params={"page_size": 1}, timeout=15)
                assert g.status_code in (200, 503), g.text
                self.statuses[g.status_code] += 1
            except httpx.TimeoutException:
                status = 0  # counted as a failure: no request may hang, see the assertion below
            self.statuses[status] += 1
            (self.acknowledged if status == 201 else self.failed).add(key)
            await asyncio.sleep(0.02)


async def _outage(stack: Stack, stop: Callable[[], None], start: Callable[[], object]) -> Traffic:
    c = await stack.admin()
    traffic = Traffic(c)
    # Several clients at once: one whose command was in flight when NATS went away waits for its
    # timeout (504), while the others see the outage as it is.
    task = asyncio.gather(*(traffic.run() for _ in range(3)))
    await wait_until(lambda: len(traffic.acknowledged) >= 10, message="traffic flows before the outage")
    stop()
    await wait_until(lambda: traffic.statuses[503] >= 3, timeout=30, message="the outage seen as 503s")
    health = await stack.client().get("/health")
    assert health.status_code == 503 and health.json()["data"]["status"] == "degraded"
    await asyncio.to_thread(start)
    before = len(traffic.acknowledged)
    # Recovery by itself: writes are acknowledged again, without anything restarted on our side.
    await wait_until(lambda: len(traffic.acknowledged) >= before + 10, timeout=30, message="writes after the restart")
    traffic.stop.set()
    await task
    assert traffic.statuses[0] == 0 and traffic.statuses[500] == 0, traffic.statuses
    print(f"\n{dict(traffic.statuses)}")
    return traffic


async def _nothing_lost(stack: Stack, traffic: Traffic) -> None:
    c = await stack.admin()
    for key in sorted(traffic.failed):  # the client retries with the same keys
        r = await c.post("/api/presets", json={"id": key, "name": key}, headers={"Idempotency-Key": key})
        assert r.status_code == 201, r.text
    ids = set()
    page = 1
    while True:
        data = (await c.get("/api/presets", params={"type": "user", "page_size": 100, "page": page})).json()["data"]
        ids |= {p["id"] for p in data["items"]}
        if page * 100 >= data["total"]:
            break
        page += 1
    assert traffic.acknowledged <= ids
    assert ids == traffic.acknowledged | traffic.failed
    async with stack.workers[0].pool.acquire() as conn:
        created = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'PresetCreated' AND stream_id LIKE 'preset-out-%'"
        )
    assert created == len(ids)  # nothing applied twice


@pytest.fixture
async def quick_stack(nats_url: str, database: str):  # type: ignore[no-untyped-def]
    """A command caught in flight when NATS goes away waits for its timeout: keep that short here."""
    s = Stack(nats_url, database)
    await s.start(edges=0)
    await s.add_edge(command_timeout=1.0)
    try:
        yield s
    finally:
        await s.stop()


async def test_nats_restart_under_traffic(quick_stack: Stack, servers: Servers) -> None:
    stack = quick_stack
    if servers.nats is None:
        pytest.skip("needs the embedded NATS server to stop and start it (CHATBUS_TEST_NATS_URL is set)")
    nats_server = servers.nats
    traffic = await _outage(stack, nats_server.stop, nats_server.start)
    await _nothing_lost(stack, traffic)


async def test_postgres_restart_under_traffic(quick_stack: Stack, servers: Servers) -> None:
    stack = quick_stack
    if servers.pg is None:
        pytest.skip("needs the embedded Postgres server to stop and start it (CHATBUS_TEST_DATABASE_URL is set)")
    pg = servers.pg
    traffic = await _outage(stack, pg.stop, pg.start)
    await _nothing_lost(stack, traffic)
