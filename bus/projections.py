"""Projections: named functions from events to read-table SQL. Applied inline at append time by
the event store; rebuilt from the log by `replay`; or run behind a checkpoint by the catch-up runner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bus.eventstore import Projector, RecordedEvent, load_checkpoint, read_feed, save_checkpoint

log = logging.getLogger("chatbus.projections")

_EVENT_COLUMNS = (
    "global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version, event_id,"
    " event_type, schema_version, data, metadata, recorded_at"
)


@dataclass(frozen=True)
class Projection:
    name: str
    tables: tuple[str, ...]
    apply: Projector


async def rebuild(pool: asyncpg.Pool, projections: Sequence[Projection], *, batch: int = 5000) -> int:
    """Truncate the read tables and apply every event again, in one transaction.

    The tables are locked first: writers that commit meanwhile wait, then project their own events
    on top of the rebuilt tables, so nothing is lost or applied twice."""
    tables = [t for p in projections for t in p.tables]
    count = 0
    async with pool.acquire() as conn, conn.transaction():
        if tables:
            await conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
        cursor = conn.cursor(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY global_position", prefetch=batch)
        async for row in cursor:
            event = RecordedEvent(**dict(row))
            for projection in projections:
                await projection.apply(conn, event)
            count += 1
    return count


class CatchUpRunner:
    """Applies one projection to the global feed behind the xid8 fence, saving a checkpoint with
    each batch in the same transaction (exactly-once for the read table)."""

    def __init__(self, pool: asyncpg.Pool, projection: Projection, *, batch: int = 500) -> None:
        self.pool = pool
        self.projection = projection
        self.batch = batch

    async def run_once(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            name = f"projection:{self.projection.name}"
            tx, pos = await load_checkpoint(conn, name)
            events = await read_feed(conn, tx, pos, self.batch)
            for event in events:
                await self.projection.apply(conn, event)
            if events:
                await save_checkpoint(conn, name, events[-1].transaction_id, events[-1].global_position)
            return len(events)

    async def run(self, stop: asyncio.Event, *, idle_sleep: float = 0.2) -> None:
        while not stop.is_set():
            try:
                if await self.run_once() < self.batch:
                    await asyncio.wait_for(stop.wait(), idle_sleep)
            except TimeoutError:
                continue
            except (OSError, asyncpg.PostgresError):
                log.warning("projection %s: database error, retrying", self.projection.name, exc_info=True)
                await asyncio.sleep(1)
