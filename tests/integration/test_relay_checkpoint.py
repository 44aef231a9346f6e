"""The relay saves its checkpoint lazily while events flow, and as soon as it has caught up."""

from __future__ import annotations

import asyncio

import pytest

from bus import db, nats_conn, relay, subjects
from bus.eventstore import NewEvent, StreamAppend, append_events
from services import registry
from tests.waiting import wait_until


async def test_the_checkpoint_catches_up_once_the_feed_is_drained(
    nats_url: str, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never saved for time's sake here: only catching up (or stopping) may move the checkpoint.
    monkeypatch.setattr(relay, "CHECKPOINT_INTERVAL", 3600.0)
    pool = await db.create_pool(database, max_size=2)
    nc = await nats_conn.connect(nats_url, name="test")
    await nats_conn.ensure_streams(nc)
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.Relay(database, nc, registry.CATALOG, batch=3).run(stop))
    try:
        for i in range(4):  # more events than a batch, in several transactions
            async with pool.acquire() as conn, conn.transaction():
                await append_events(
                    conn,
                    [StreamAppend(f"preset-r{i}", 0, [NewEvent("PresetDeleted", {"id": f"r{i}"})])],
                    {"command_id": "test"},
                )
        last = await pool.fetchval("SELECT max(global_position) FROM events")

        async def checkpointed() -> bool:
            saved = await pool.fetchval("SELECT last_pos FROM checkpoints WHERE name = $1", relay.CHECKPOINT)
            return saved == last

        await wait_until(checkpointed, message="the checkpoint reaches the last event")
        info = await nc.jetstream().stream_info(subjects.EVENTS_STREAM)
        assert info.state.messages == 4
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        await nc.close()
        await pool.close()


async def test_a_burst_of_wake_ups_is_sent_once_and_after_the_last() -> None:
    sent: list[int] = []
    calls = 0
    wake = relay.coalesced_wake(lambda: sent.append(calls), interval=2.0)  # far longer than the calls take

    for _ in range(3):
        calls += 1
        wake()

    # The first went at once; the next two share one send, which comes after the last of them.
    assert sent[0] == 1
    assert await wait_until(lambda: sent[1:] == [3], message="one wake-up after the burst")
