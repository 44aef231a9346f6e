"""Projections: named functions from events to read-table SQL. Applied inline at append time by
the event store; rebuilt from the log by `replay`; or run behind a checkpoint by the catch-up runner."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import msgspec

from bus.batching import BufferedWrites, table_facts
from bus.events import EventCatalog
from bus.eventstore import EVENT_COLUMNS, RecordedEvent, load_checkpoint, read_feed, save_checkpoint
from bus.streamcache import current_attempt

log = logging.getLogger("chatbus.projections")

# One function per event type: (connection, the stored event, its typed Struct).
ProjectFn = Callable[[asyncpg.Connection, RecordedEvent, Any], Awaitable[None]]


@dataclass(frozen=True)
class Projection:
    """Read tables kept by one function per event type. `apply` decodes a stored event into its
    Struct (upcast by schema version) only when this projection handles its type."""

    name: str
    tables: tuple[str, ...]
    handlers: Mapping[type[msgspec.Struct], ProjectFn]
    catalog: EventCatalog
    # Tables whose rows each belong to one stream (keyed by it, written only by its events), so a
    # replay may apply the writes of different streams to them in any order (bus.batching).
    per_stream: frozenset[str] = frozenset()
    _by_name: dict[str, ProjectFn] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [t.__name__ for t in self.handlers if t.__name__ not in self.catalog]
        if unknown:
            raise ValueError(f"projection {self.name} handles undeclared event types {unknown}")
        if not self.per_stream <= set(self.tables):
            raise ValueError(f"projection {self.name} declares per-stream tables it does not keep")
        object.__setattr__(self, "_by_name", {t.__name__: fn for t, fn in self.handlers.items()})

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(t.__name__ for t in self.handlers)

    async def apply(self, conn: asyncpg.Connection, recorded: RecordedEvent) -> None:
        if recorded.event_type not in self._by_name:
            return
        event = self.catalog.decode(recorded.event_type, recorded.schema_version, recorded.data)
        await self._by_name[recorded.event_type](conn, recorded, event)


# Events whose writes go out together while the next ones are applied: enough to fill long runs,
# few enough that Postgres and Python work side by side for most of a replay.
SEND_EVERY = 1000


async def _apply_log(conn: asyncpg.Connection, projections: Sequence[Projection], events_table: str, batch: int) -> int:
    """Apply every event of `events_table`, in log order, to every projection; the count.

    The projections write through `BufferedWrites`: a batch of events costs a round trip per run of
    statements (and per read) instead of one per statement, and every SEND_EVERY events are sent
    while the next ones are decoded and applied. Needs a transaction (the cursor's; and a rebuild
    never commits half-way)."""
    writes = BufferedWrites(conn, await table_facts(conn, read_tables(projections)))
    target = cast(asyncpg.Connection, writes)  # the subset of Connection that projections use
    by_type: dict[str, list[Projection]] = {}
    cursor = await conn.cursor(f"SELECT {EVENT_COLUMNS} FROM {events_table} ORDER BY global_position")
    count = 0
    try:
        rows = await cursor.fetch(batch)
        positional = bool(rows) and tuple(rows[0].keys()) == RecordedEvent.__struct_fields__
        while rows:
            for n, row in enumerate(rows, start=1):
                event = RecordedEvent(*row) if positional else RecordedEvent(**dict(row))
                kind = event.event_type
                if kind not in by_type:
                    by_type[kind] = [p for p in projections if kind in p.event_types]
                for projection in by_type[kind]:
                    writes.context(event.stream_id, projection.per_stream)
                    await projection.apply(target, event)
                if n % SEND_EVERY == 0 and n < len(rows):
                    await writes.flush_soon()
                elif n % 256 == 0:
                    await asyncio.sleep(0)  # let the send in flight go on writing and reading
            count += len(rows)
            await writes.settle()
            rows = await cursor.fetch(batch)
            await writes.flush_soon()
        await writes.flush()
    except BaseException:
        await writes.settle(quiet=True)  # the connection is free again, for the rollback
        raise
    log.debug("applied %d events: %d statements in %d round trips", count, writes.statements, writes.round_trips)
    return count


def read_tables(projections: Sequence[Projection]) -> list[str]:
    """Every read table of `projections`, once each, in declaration order."""
    return list(dict.fromkeys(t for p in projections for t in p.tables))


async def rebuild(pool: asyncpg.Pool, projections: Sequence[Projection], *, batch: int = 5000) -> int:
    """Truncate the read tables and apply every event again, in one transaction.

    The tables are locked first: writers that commit meanwhile wait, then project their own events
    on top of the rebuilt tables, so nothing is lost or applied twice."""
    tables = read_tables(projections)
    async with pool.acquire() as conn, conn.transaction():
        if tables:
            await conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
        return await _apply_log(conn, projections, "events", batch)


# --- replay --check: rebuild beside the live tables and compare ------------------------------------


@dataclass(frozen=True)
class RowDifference:
    """One row on which a live read table and its rebuild disagree. `live` or `rebuilt` is None
    when the row exists on one side only; otherwise the key matches and some column differs."""

    table: str
    key: dict[str, Any]
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None

    def columns(self) -> list[str]:
        """The columns whose values differ (both sides present)."""
        if self.live is None or self.rebuilt is None:
            return []
        return [c for c in self.live if self.live.get(c) != self.rebuilt.get(c)]

    def lines(self) -> list[str]:
        """Human-readable: one line per differing column, or one for a row found on one side only."""
        where = f"{self.table} [{', '.join(f'{k}={v}' for k, v in self.key.items())}]"
        if self.rebuilt is None:
            return [f"{where}: only in the live table: {_show(self.live)}"]
        if self.live is None:
            return [f"{where}: missing from the live table, rebuilt as: {_show(self.rebuilt)}"]
        live, rebuilt = self.live, self.rebuilt
        changed = self.columns()
        if not changed:  # equal once decoded (e.g. numeric scale): still not equal in SQL
            return [f"{where}: live {_show(live)} vs rebuilt {_show(rebuilt)}"]
        return [f"{where} {c}: live={_show(live.get(c))} rebuilt={_show(rebuilt.get(c))}" for c in changed]


@dataclass(frozen=True)
class TableComparison:
    table: str
    differing_rows: int  # all of them, even past the limit
    differences: list[RowDifference]


@dataclass(frozen=True)
class CheckReport:
    events: int
    tables: list[TableComparison]

    @property
    def equal(self) -> bool:
        return all(t.differing_rows == 0 for t in self.tables)


def _show(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def current_schema(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT current_schema()"))


async def create_scratch_tables(conn: asyncpg.Connection, scratch: str, live: str, tables: Sequence[str]) -> None:
    """The scratch schema and an empty copy of each read table (columns, defaults, keys, indexes)."""
    ddl = [f"CREATE SCHEMA {_ident(scratch)}"]
    ddl += [
        f"CREATE TABLE {_ident(scratch)}.{_ident(t)} (LIKE {_ident(live)}.{_ident(t)} INCLUDING ALL)" for t in tables
    ]
    await conn.execute(";\n".join(ddl))


async def table_columns(conn: asyncpg.Connection, schema: str, table: str) -> tuple[list[str], list[str]]:
    """(every column, the primary key's columns) of a table, in table order; the key is empty when
    the table has none."""
    rows = await conn.fetch(
        """SELECT a.attname, coalesce(a.attnum = ANY (i.indkey::int2[]), false) AS in_key
           FROM pg_attribute a
           LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
           WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass
             AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum""",
        schema,
        table,
    )
    return [r["attname"] for r in rows], [r["attname"] for r in rows if r["in_key"]]


async def compare_table(
    conn: asyncpg.Connection, table: str, live: str, scratch: str, *, limit: int = 100
) -> TableComparison:
    """Rows of `live.table` and `scratch.table` that differ, paired by primary key.

    EXCEPT ALL both ways finds the rows that are not in the other table (a duplicate counts); a
    full join on the key pairs a changed row with its other version. A table without a primary
    key pairs nothing: its rows are missing on one side or the other."""
    columns, key = await table_columns(conn, live, table)
    cols = ", ".join(_ident(c) for c in columns)
    left, right = f"{_ident(live)}.{_ident(table)}", f"{_ident(scratch)}.{_ident(table)}"
    join = " AND ".join(f"l.{_ident(k)} = r.{_ident(k)}" for k in key) or "false"
    order = ", ".join(f"coalesce(l.{_ident(c)}, r.{_ident(c)})" for c in (key or columns))
    rows = await conn.fetch(
        f"""WITH l AS (SELECT {cols} FROM {left} EXCEPT ALL SELECT {cols} FROM {right}),
                 r AS (SELECT {cols} FROM {right} EXCEPT ALL SELECT {cols} FROM {left})
            SELECT CASE WHEN l IS NULL THEN NULL ELSE to_jsonb(l) END AS live,
                   CASE WHEN r IS NULL THEN NULL ELSE to_jsonb(r) END AS rebuilt,
                   count(*) OVER () AS total
            FROM l FULL JOIN r ON {join}
            ORDER BY {order}
            LIMIT $1""",
        limit,
    )
    differences = []
    for row in rows:
        live_row, rebuilt_row = row["live"], row["rebuilt"]
        either = live_row if live_row is not None else rebuilt_row
        differences.append(RowDifference(table, {k: either[k] for k in (key or columns)}, live_row, rebuilt_row))
    return TableComparison(table, int(rows[0]["total"]) if rows else 0, differences)


async def check(
    pool: asyncpg.Pool, projections: Sequence[Projection], *, batch: int = 5000, limit: int = 100
) -> CheckReport:
    """Rebuild every read table from the log into a scratch schema and compare it with the live one.
    Nothing live is written or locked against writers.

    One REPEATABLE READ transaction: the log and the live tables are read in the same snapshot (the
    inline projections commit with their events, so they agree unless a projection is wrong), and
    the transaction is always rolled back, which takes the scratch schema with it whatever happens.
    The projections run with `search_path` set to the scratch schema alone, so their unqualified
    table names land there, and a write to a table they did not declare fails instead of touching
    a live one."""
    tables = read_tables(projections)
    scratch = f"replay_check_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        tx = conn.transaction(isolation="repeatable_read")
        await tx.start()
        try:
            live = await current_schema(conn)
            await create_scratch_tables(conn, scratch, live, tables)
            await conn.execute(f"SET LOCAL search_path TO {_ident(scratch)}")
            count = await _apply_log(conn, projections, f"{_ident(live)}.events", batch)
            comparisons = [await compare_table(conn, t, live, scratch, limit=limit) for t in tables]
        finally:
            await tx.rollback()
    return CheckReport(count, comparisons)


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


def _keeps_rows() -> bool:
    """Whether a command is running, whose inline projections keep the rows they write
    (`bus.eventstore.remember_row`). Elsewhere (replay, catch-up) nothing keeps them, so the helpers
    below do not ask for them: a RETURNING row is a read, which a replay would wait for each time."""
    return current_attempt.get() is not None


async def insert_row(
    conn: asyncpg.Connection, table: str, values: dict[str, Any], *, returning: str | None = None
) -> asyncpg.Record | None:
    """INSERT one row from {column: value} (columns come from the projection's own mapping, never input);
    with `returning` (a column list), the row as written, in a command (see `_keeps_rows`)."""
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    sql = f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks})"
    if returning is None or not _keeps_rows():
        await conn.execute(sql, *values.values())
        return None
    return await conn.fetchrow(f"{sql} RETURNING {returning}", *values.values())


async def update_row(
    conn: asyncpg.Connection,
    table: str,
    key: tuple[str, Any],
    values: dict[str, Any],
    *,
    returning: str | None = None,
) -> asyncpg.Record | None:
    """UPDATE the columns in {column: value} of the row whose key column equals the key value; with
    `returning`, the row as written (None when there is no such row), in a command (see `_keeps_rows`)."""
    sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(values, start=2))
    sql = f"UPDATE {table} SET {sets} WHERE {key[0]} = $1"
    if returning is None or not _keeps_rows():
        await conn.execute(sql, key[1], *values.values())
        return None
    return await conn.fetchrow(f"{sql} RETURNING {returning}", key[1], *values.values())
