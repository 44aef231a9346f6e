"""Crashes: a worker killed mid-command and a relay killed mid-batch lose nothing and duplicate nothing."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
import pytest

from bus import nats_conn, subjects
from bus.relay import CHECKPOINT
from tests.procs import kill, spawn, stop, wait_for_responders
from tests.stack import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
async def edge_only(nats_url: str, database: str):  # type: ignore[no-untyped-def]
    s = Stack(nats_url, database)
    await s.start(workers=0, relay=False, edges=0)
    await s.add_edge(command_timeout=3.0)
    try:
        yield s
    finally:
        await s.stop()


async def test_worker_killed_mid_command_loses_no_acknowledged_write(edge_only: Stack) -> None:
    s = edge_only
    nc = await nats_conn.connect(s.nats_url, name="test")
    worker = spawn(["worker"], s.nats_url, s.dsn)
    try:
        await wait_for_responders(nc, subjects.command("auth", "login"))
        token = await s.login()
        c = s.client(token=token)
        keys = [f"crash-{i:03d}" for i in range(150)]
        first_acks = asyncio.Event()
        outcome: dict[str, int] = {}

        async def create(key: str) -> None:
            r = await c.post("/api/presets", json={"id": key, "name": key}, headers={"Idempotency-Key": key})
            outcome[key] = r.status_code
            if r.status_code == 201 and sum(v == 201 for v in outcome.values()) >= 10:
                first_acks.set()

        tasks = [asyncio.create_task(create(k)) for k in keys]
        await asyncio.wait_for(first_acks.wait(), 30)
        kill(worker)
        await asyncio.gather(*tasks)
        acknowledged = {k for k, status in outcome.items() if status == 201}
        failed = {k for k, status in outcome.items() if status != 201}
        assert acknowledged and failed, "the kill should have hit commands in flight"
        assert {outcome[k] for k in failed} <= {503, 504}

        worker = spawn(["worker"], s.nats_url, s.dsn)
        await wait_for_responders(nc, subjects.command("presets", "create"))
        # The client retries what failed, with the same keys: each applied exactly once.
        for key in sorted(failed):
            r = await c.post("/api/presets", json={"id": key, "name": key}, headers={"Idempotency-Key": key})
            assert r.status_code == 201, r.text
        # Retrying an acknowledged one returns the first result instead of PRESET_EXISTS.
        r = await c.post("/api/presets", json={"id": keys[0], "name": keys[0]}, headers={"Idempotency-Key": keys[0]})
        assert r.status_code == 201
        listed = (await c.get("/api/presets", params={"type": "user", "page_size": 100, "page": 1})).json()["data"]
        assert listed["total"] == len(keys)
        pool = await _pool(s.dsn)
        try:
            created = await pool.fetchval("SELECT count(*) FROM events WHERE event_type = 'PresetCreated'")
        finally:
            await pool.close()
        assert created == len(keys) + 2  # + the two system presets
    finally:
        await stop(worker)
        await nc.close()


async def test_a_command_whose_worker_dies_in_flight_is_503_not_a_timeout(nats_url: str, database: str) -> None:
    """The worker holding the command is killed: the edge learns from NATS that no worker of the domain
    is left and answers 503 at once, instead of a 504 when its (long) command timeout runs out."""
    s = Stack(nats_url, database)
    await s.start(workers=0, relay=False, edges=0)
    await s.add_edge(command_timeout=60.0)
    nc = await nats_conn.connect(s.nats_url, name="test")
    worker = spawn(["worker", "--domain", "presets", "--domain", "auth"], s.nats_url, s.dsn)
    blocker = await asyncpg.connect(s.dsn)
    try:
        await wait_for_responders(nc, subjects.command("presets", "create"))
        c = s.client(token=await s.login())
        # Hold the command inside the worker: its insert waits on our lock until the worker dies.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        request = asyncio.create_task(c.post("/api/presets", json={"id": "in-flight", "name": "x"}))
        waiting = "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass AND NOT granted"
        await wait_until(lambda: blocker.fetchval(waiting), timeout=30, message="the worker's insert waits on the lock")
        kill(worker)
        async with asyncio.timeout(30):  # well under the edge's 60 s command timeout
            r = await request
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "UNAVAILABLE"
        await tx.rollback()
    finally:
        kill(worker)
        await blocker.close()
        await nc.close()
        await s.stop()


async def _pool(dsn: str) -> asyncpg.Pool:
    from bus import db

    return await db.create_pool(dsn, max_size=1)


async def test_relay_killed_mid_batch_republishes_without_duplicates(nats_url: str, database: str) -> None:
    total = 6000
    pool = await _pool(database)
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata)
               SELECT 'bulk-' || (g % 300), (g / 300) + 1, gen_random_uuid(), 'PresetDeleted',
                      jsonb_build_object('id', g::text), '{}'::jsonb
               FROM generate_series(0, $1 - 1) g""",
            total,
        )
    nc = await nats_conn.connect(nats_url, name="test")
    js = nc.jetstream()
    await nats_conn.ensure_streams(nc)
    relay = spawn(["relay"], nats_url, database, CHATBUS_RELAY_BATCH="2000")
    try:
        # Kill it while the first batches are in flight: some published, not all checkpointed.
        async def some_published() -> bool:
            return (await js.stream_info(subjects.EVENTS_STREAM)).state.messages >= 2500

        await wait_until(some_published, timeout=30, interval=0.005, message="2500 events published")
        kill(relay)
        published = (await js.stream_info(subjects.EVENTS_STREAM)).state.messages
        checkpoint = await pool.fetchval("SELECT last_pos FROM checkpoints WHERE name = $1", CHECKPOINT) or 0
        assert published > checkpoint, "the kill should leave published-but-unacknowledged events"
        assert published < total

        relay = spawn(["relay"], nats_url, database, CHATBUS_RELAY_BATCH="2000")

        async def all_checkpointed() -> bool:
            return await pool.fetchval("SELECT last_pos FROM checkpoints WHERE name = $1", CHECKPOINT) == total

        await wait_until(all_checkpointed, timeout=60, message="the restarted relay checkpoints every event")
        info = await js.stream_info(subjects.EVENTS_STREAM)
        assert info.state.messages == total  # JetStream dropped every republished copy

        # Every event is there exactly once, in log order.
        sub = await js.subscribe(subjects.EVENTS_WILDCARD, ordered_consumer=True)
        ids: list[str] = []
        positions: list[int] = []
        async with asyncio.timeout(30):
            while len(ids) < total:
                msg = await sub.next_msg(timeout=5)
                body = msgspec.json.decode(msg.data)
                ids.append(body["id"])
                positions.append(body["position"])
                assert msg.headers and msg.headers["Nats-Msg-Id"] == body["id"]
        await sub.unsubscribe()
        assert len(set(ids)) == total and positions == list(range(1, total + 1))
    finally:
        await stop(relay)
        await nc.close()
        await pool.close()
