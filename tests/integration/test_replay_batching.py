"""bus.batching.BufferedWrites against a real database: projection-like writes sent in pipelined runs,
reordered only where they commute, end in exactly the tables (and reads) that one statement per round
trip gives. The e2e replay tests prove the same for the real projections."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from bus.batching import BufferedWrites, table_facts

TABLES = ("items", "parts", "totals", "seen")
DDL = """
CREATE TABLE items (id text PRIMARY KEY, n int NOT NULL, note text NOT NULL DEFAULT '');
CREATE TABLE parts (item_id text NOT NULL REFERENCES items (id) ON DELETE CASCADE, k int NOT NULL,
                    PRIMARY KEY (item_id, k));
CREATE TABLE totals (name text PRIMARY KEY, sum float8 NOT NULL, calls int NOT NULL);
CREATE TABLE seen (at int PRIMARY KEY, value bigint NOT NULL);
"""
INSERT_ITEM = "INSERT INTO items (id, n) VALUES ($1, $2)"
UPDATE_ITEM = "UPDATE items SET n = n + $2, note = note || $3 WHERE id = $1"
INSERT_PART = "INSERT INTO parts (item_id, k) VALUES ($1, $2)"
DELETE_ITEM = "DELETE FROM items WHERE id = $1"
# Floats added in another order may differ in the last bit: the order of these must hold.
ADD_TOTAL = """INSERT INTO totals AS t (name, sum, calls) VALUES ($1, $2, 1)
               ON CONFLICT (name) DO UPDATE SET sum = t.sum + EXCLUDED.sum, calls = t.calls + 1"""
READ = "SELECT coalesce(sum(n), 0) * 1000 + (SELECT count(*) FROM parts) FROM items"
NOTE_READ = "INSERT INTO seen (at, value) VALUES ($1, $2)"

# (stream, SQL, args), or (stream, None, at) for "read, then write what was read".
Op = tuple[str, str | None, Any]


def mixed_script() -> list[Op]:
    """Interleaved streams: creates, updates, children, a delete that cascades and a re-create,
    order-sensitive float sums, and reads whose answers are written back."""
    streams = [f"s{i}" for i in range(6)]
    ops: list[Op] = []
    for r in range(8):
        for i, s in enumerate(streams):
            if r == 0:
                ops.append((s, INSERT_ITEM, (s, i)))
            else:
                ops.append((s, UPDATE_ITEM, (s, r * (i + 1), f"{r}")))
                ops.append((s, INSERT_PART, (s, r)))
            ops.append((s, ADD_TOTAL, (f"t{i % 2}", 0.1 * (r + 1) / 3 + 1e-9 * i)))
            if r == 4 and i == 2:
                ops.append((s, DELETE_ITEM, (s,)))
                ops.append((s, INSERT_ITEM, (s, 100)))
        if r in (3, 6):
            ops.append(("s0", None, r))
    return ops


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in TABLES}


async def run_script(
    conn: asyncpg.Connection, ops: list[Op], *, buffered: bool, per_stream: frozenset[str], ddl: str = DDL
) -> tuple[dict[str, list[tuple[Any, ...]]], BufferedWrites | None]:
    """The tables after `ops`, in a transaction rolled back afterwards; and the wrapper used."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(ddl)
        writes = BufferedWrites(conn, await table_facts(conn, TABLES)) if buffered else None
        target: Any = writes or conn
        for stream, sql, args in ops:
            if writes is not None:
                writes.context(stream, per_stream)
            if sql is None:
                await target.execute(NOTE_READ, args, await target.fetchval(READ))
            else:
                await target.execute(sql, *args)
        if writes is not None:
            await writes.flush()
        return await snapshot(conn), writes
    finally:
        await tx.rollback()


async def test_buffered_writes_end_in_the_tables_of_one_round_trip_each(pool: asyncpg.Pool) -> None:
    ops = mixed_script()
    async with pool.acquire() as conn:
        unbatched, _ = await run_script(conn, ops, buffered=False, per_stream=frozenset())
        # Undeclared, items and parts alternate (one table group); totals, another group, move past them.
        for per_stream, most in ((frozenset(), 100), (frozenset({"items", "parts"}), 30)):
            batched, writes = await run_script(conn, ops, buffered=True, per_stream=per_stream)
            assert batched == unbatched, per_stream
            assert writes is not None
            assert writes.statements == len(ops) + 2  # each read: the read and the write of its answer
            assert writes.round_trips <= most
    assert len(unbatched["seen"]) == 2 and unbatched["parts"] and unbatched["totals"]


def created_then_updated(streams: int) -> list[Op]:
    """Each stream in turn: create, then three updates (as the presets of the replay benchmark)."""
    ops: list[Op] = []
    for i in range(streams):
        ops.append((f"s{i}", INSERT_ITEM, (f"s{i}", i)))
        ops += [(f"s{i}", UPDATE_ITEM, (f"s{i}", u, "x")) for u in range(3)]
    return ops


async def test_writes_of_different_streams_are_grouped_only_where_declared_and_safe(pool: asyncpg.Pool) -> None:
    ops = created_then_updated(40)
    unique_note = DDL + "CREATE UNIQUE INDEX items_note ON items (id, note);"
    async with pool.acquire() as conn:
        unbatched, _ = await run_script(conn, ops, buffered=False, per_stream=frozenset())
        both = frozenset({"items", "parts"})
        cases = [
            (both, DDL, 2),  # every create in one run, then every update
            (frozenset(), DDL, 80),  # not declared: only consecutive identical statements share a trip
            (frozenset({"items"}), DDL, 80),  # parts is linked to items by a key: it must be declared too
            (both, unique_note, 80),  # declared, but a unique index could make the order matter
        ]
        for per_stream, ddl, round_trips in cases:
            batched, writes = await run_script(conn, ops, buffered=True, per_stream=per_stream, ddl=ddl)
            assert batched == unbatched
            assert writes is not None and writes.round_trips == round_trips, (per_stream, ddl)


async def test_a_failed_statement_surfaces_at_the_flush(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(DDL)
        writes = BufferedWrites(conn, await table_facts(conn, TABLES))
        writes.context("s", frozenset())
        await writes.execute(INSERT_ITEM, "a", 1)
        await writes.execute(INSERT_ITEM, "a", 2)  # duplicate key, not sent yet
        assert writes.pending == 2
        with pytest.raises(asyncpg.UniqueViolationError):
            await writes.flush()


SET_ITEM = "UPDATE items SET note = $2, n = $3 WHERE id = $1"  # constants only: a later one erases it


async def test_an_update_of_constants_is_overwritten_by_the_next_of_its_row_only(pool: asyncpg.Pool) -> None:
    both = frozenset({"items", "parts"})
    ops: list[Op] = []
    for i in range(3):
        s = f"s{i}"
        ops.append((s, INSERT_ITEM, (s, i)))
        ops += [(s, SET_ITEM, (s, f"v{v}", v)) for v in range(4)]  # three of these go unsent
    ops.append(("s0", UPDATE_ITEM, ("s0", 5, "+")))  # reads the row: the next SET_ITEM must stay
    ops.append(("s0", SET_ITEM, ("s0", "after", 7)))
    ops.append(("s1", None, 99))  # a read: everything before it is sent
    ops.append(("s1", SET_ITEM, ("s1", "read", 8)))
    async with pool.acquire() as conn:
        unbatched, _ = await run_script(conn, ops, buffered=False, per_stream=frozenset())
        batched, writes = await run_script(conn, ops, buffered=True, per_stream=both)
        assert batched == unbatched
        assert writes is not None and writes.overwritten == 9
        assert writes.statements == len(ops) + 1 - 9
        undeclared, writes = await run_script(conn, ops, buffered=True, per_stream=frozenset())
        assert undeclared == unbatched
        assert writes is not None and writes.overwritten == 0
    assert ("s0", 7, "after") in unbatched["items"] and ("s1", 8, "read") in unbatched["items"]


# Touches its stream's item and the shared totals row (as a chat message: its conversation, channel_stats).
COUNT_ITEM = """WITH i AS (UPDATE items SET n = n + 1 WHERE id = $1)
                INSERT INTO totals AS t (name, sum, calls) VALUES ($2, $3, 1)
                ON CONFLICT (name) DO UPDATE SET sum = t.sum + EXCLUDED.sum, calls = t.calls + 1"""


async def test_a_statement_keeps_its_stream_scope_on_its_own_tables_only(pool: asyncpg.Pool) -> None:
    ops: list[Op] = []
    for i in range(30):
        ops.append((f"s{i}", INSERT_ITEM, (f"s{i}", i)))
        ops.append((f"s{i}", COUNT_ITEM, (f"s{i}", "all", 0.1 + 1e-9 * i)))
    async with pool.acquire() as conn:
        unbatched, _ = await run_script(conn, ops, buffered=False, per_stream=frozenset())
        for per_stream, round_trips in ((frozenset({"items", "parts"}), 2), (frozenset(), 60)):
            batched, writes = await run_script(conn, ops, buffered=True, per_stream=per_stream)
            assert batched == unbatched
            assert writes is not None and writes.round_trips == round_trips, per_stream
