"""Replay speed (issue 13: >= 50,000 events/s): the events of the measured run plus seeded preset events,
rebuilt by the function `chatbus replay` runs (`bus.projections.rebuild`, every projection of
`services.registry.PROJECTIONS`), in a database of its own on the bench's Postgres, so that the relay and
the workers of the run never see the seeded events.

The log is valid: the run's own events are copied as they are (bootstrap, presets written over HTTP,
chat turns, config changes), then presets created and updated by the presets domain's deciders are
appended with `bus.eventstore.append_events` at their stream versions, until there are `events`."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from bus import db
from bus.eventstore import StreamAppend, append_events, event_from_struct
from bus.projections import rebuild
from chatbus.runtime import migrate_database
from services.presets import domain
from services.registry import PROJECTIONS

DATABASE = "bench_replay"
UPDATES_PER_PRESET = 4  # a seeded preset: one PresetCreated, then this many PresetUpdated
SEED_BATCH = 1000  # presets per INSERT
COLUMNS = ("stream_id", "stream_version", "event_id", "event_type", "schema_version", "data", "metadata", "recorded_at")


def seeded_preset(index: int) -> StreamAppend:
    """One preset's stream, decided by the domain as the worker would: create, then updates."""
    state = domain.PresetState(f"replay-{index:07d}")
    events = list(domain.decide_create(state, {"name": f"replayed {index}", "systemPrompt": "p"}, "user"))
    for event in events:
        state = domain.evolve(state, event)
    for n in range(UPDATES_PER_PRESET):
        update = domain.decide_update(state, {"systemPrompt": f"p{n}"}, None)
        for event in update:
            state = domain.evolve(state, event)
        events += update
    return StreamAppend(domain.stream_id(state.id), 0, [event_from_struct(e) for e in events])


async def seed(source_dsn: str, dsn: str, target: int) -> dict[str, int]:
    """Copies the run's events from `source_dsn`, then pads with seeded presets to `target` events."""
    source = await asyncpg.connect(source_dsn)  # no codecs: jsonb stays text, as COPY takes it
    try:
        rows = await source.fetch(f"SELECT {', '.join(COLUMNS)} FROM events ORDER BY global_position")
    finally:
        await source.close()
    plain = await asyncpg.connect(dsn)  # bus.db's json codecs are text-only: COPY needs the binary one
    try:
        await plain.copy_records_to_table("events", records=[tuple(r) for r in rows], columns=COLUMNS)
    finally:
        await plain.close()
    conn = await db.connect(dsn)
    try:
        seeded, index = 0, 0
        per_preset = 1 + UPDATES_PER_PRESET
        while len(rows) + seeded < target:
            count = min(SEED_BATCH, -(-(target - len(rows) - seeded) // per_preset))
            appends = [seeded_preset(index + i) for i in range(count)]
            async with conn.transaction():
                await append_events(conn, appends, {"source": "tests.bench.replay"})
            index += count
            seeded += count * per_preset
    finally:
        await conn.close()
    return {"copied": len(rows), "seeded": seeded}


async def measure(admin_dsn: str, source_dsn: str, dsn: str, events: int, batch: int = 5000) -> dict[str, Any]:
    """Creates the replay database (through `admin_dsn`), seeds it, replays it, drops it."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    try:
        await migrate_database(dsn)
        counts = await seed(source_dsn, dsn, events)
        pool = await db.create_pool(dsn, max_size=2)  # as `chatbus replay`
        try:
            started = time.perf_counter()
            replayed = await rebuild(pool, PROJECTIONS, batch=batch)
            seconds = time.perf_counter() - started
        finally:
            await pool.close()
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        finally:
            await admin.close()
    return {
        "events": replayed,
        "seconds": round(seconds, 3),
        "events_per_s": replayed / seconds if seconds else 0.0,
        "batch": batch,
        "projections": len(PROJECTIONS),
        "source": f"{counts['copied']:,} events of this run copied + {counts['seeded']:,} seeded preset events "
        f"(create + {UPDATES_PER_PRESET} updates each), own database",
    }
