"""NATS and Postgres stopped and restarted under traffic: clients get 503s (never a 500 or a hang)
while a dependency is down, the system recovers by itself, and no acknowledged write is lost."""

from __future__ import annotations

import asyncio
import time
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
        self.last_success = 0.0
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
            if status == 201:
                self.last_success = time.monotonic()
            await asyncio.sleep(0.02)


async def _outage(stack: Stack, stop: Callable[[], None], start: Callable[[], object]) -> tuple[Traffic, float]:
    c = await stack.admin()
    traffic = Traffic(c)
    # Several clients at once: one whose command was in flight when NATS went away waits for its
    # timeout (504), while the others see the outage as it is.
    task = asyncio.gather(*(traffic.run() for _ in range(3)))
    await asyncio.sleep(1.0)
    assert traffic.acknowledged, "traffic flows before the outage"
    stop()
    down_since = time.monotonic()
    await asyncio.sleep(3.0)
    health = await stack.client().get("/health")
    assert health.status_code == 503 and health.json()["data"]["status"] == "degraded"
    await asyncio.to_thread(start)
    restarted = time.monotonic()
    await wait_until(lambda: traffic.last_success >= restarted, timeout=30, message="a write after the restart")
    recovery = time.monotonic() - restarted
    await asyncio.sleep(0.5)
    traffic.stop.set()
    await task
    assert traffic.statuses[503] > 0, f"the outage was seen as 503s: {traffic.statuses}"
    assert traffic.statuses[0] == 0 and traffic.statuses[500] == 0, traffic.statuses
    print(f"\nrecovery after restart: {recovery:.2f}s (down {restarted - down_since:.1f}s) {dict(traffic.statuses)}")
    return traffic, recovery


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
    traffic, recovery = await _outage(stack, nats_server.stop, nats_server.start)
    await _nothing_lost(stack, traffic)
    assert recovery < 10


async def test_postgres_restart_under_traffic(quick_stack: Stack, servers: Servers) -> None:
    stack = quick_stack
    if servers.pg is None:
        pytest.skip("needs the embedded Postgres server to stop and start it (CHATBUS_TEST_DATABASE_URL is set)")
    pg = servers.pg
    traffic, recovery = await _outage(stack, pg.stop, pg.start)
    await _nothing_lost(stack, traffic)
    assert recovery < 10
