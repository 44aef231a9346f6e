"""A connection stand-in for replay that holds back writes and sends them in few round trips.

Rebuilding read tables runs ~2 SQL statements per event, and sent one by one each waits for its own
round trip: replay speed is then the socket's latency, not Postgres' or Python's work. Projection
functions write with `execute` and never look at its status string, so the writes can wait in a
buffer and go out together: each run of statements with the same SQL as one asyncpg `executemany`,
which pipelines all its argument sets in one round trip.

Runs are made long by moving a statement ahead of earlier ones it commutes with, and only those:
two statements keep their order when they name a common read table (or tables linked to it by a
foreign key), unless on every such table both touch rows of different streams: a table that the
projection declares `per_stream` (its rows each belong to one stream; the catalog must show no
trigger, no unique index but the primary key and no generated key on it, or the declaration is
ignored). A statement that
names no known table, and any statement when a read table has a trigger, keeps its place. Two
statements that may touch the same rows never swap (a run is sent in order), so e.g. the float sums
of one counter row add up in the same order.

An UPDATE that only sets columns to parameters on the row its key ($1) finds is dropped when the
same statement for the same key follows in the same stream before anything else touches the table
for that stream (or for every stream): the later values go in its place, as the row would end up
with them anyway (the replay benchmark's presets: four updates of one preset, one statement). Only
a replay that would fail anyway can tell: the dropped values are never checked against constraints.

A read (`fetch`, `fetchrow`, `fetchval`) first sends everything buffered, so it sees every earlier
write; the tables end exactly as with one round trip per statement. The rebuild runs in one
transaction, so a failed statement surfaces at the next flush instead of at its own `execute`, and
rolls back the whole rebuild either way."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

_WORD = re.compile(r"[a-z_][a-z0-9_]*")
# "UPDATE t SET a = $2, b = $3 WHERE k = $1": every column set to a parameter, the row found by $1.
_OVERWRITE = re.compile(
    r"\s*UPDATE\s+\w+\s+SET\s+(\w+\s*=\s*\$\d+(?:\s*,\s*\w+\s*=\s*\$\d+)*)\s+WHERE\s+(\w+)\s*=\s*\$1\s*",
    re.IGNORECASE,
)


def _overwrites(query: str) -> bool:
    """Whether `query` is an UPDATE whose effect a later run of the same SQL with the same $1 erases
    entirely: it sets constants (not the key, not from $1) on the one row the key finds."""
    shape = _OVERWRITE.fullmatch(query)
    if shape is None:
        return False
    sets = [part.split("=") for part in shape[1].split(",")]
    return all(col.strip().lower() != shape[2].lower() and val.strip() != "$1" for col, val in sets)


@dataclass(frozen=True)
class TableFacts:
    """What the catalog says about the read tables, for deciding which statements commute."""

    linked: dict[str, frozenset[str]]  # table -> every table a statement on it can reach (itself included)
    opaque: bool  # a read table has a trigger: any statement may touch anything
    per_stream_safe: frozenset[str]  # tables where writes of different streams cannot interact


async def table_facts(conn: asyncpg.Connection, tables: Iterable[str]) -> TableFacts:
    """Foreign keys, triggers, unique indexes and generated keys of `tables`, by name in any schema
    (replay --check writes copies in a scratch schema: the live ones' links count too)."""
    names = sorted(set(tables))
    rows = await conn.fetch(
        """SELECT c.relname AS name,
                  EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AS triggers,
                  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary)
                      AS other_unique,
                  EXISTS (SELECT 1 FROM pg_attribute a LEFT JOIN pg_attrdef d
                              ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                            AND (a.attidentity <> '' OR a.attgenerated <> ''
                                 OR pg_get_expr(d.adbin, d.adrelid) ILIKE '%nextval%')) AS generated,
                  ARRAY(SELECT f.relname FROM pg_constraint k
                        JOIN pg_class f ON f.oid = CASE WHEN k.conrelid = c.oid THEN k.confrelid ELSE k.conrelid END
                        WHERE k.contype = 'f' AND (k.conrelid = c.oid OR k.confrelid = c.oid)) AS fk
           FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1::text[])""",
        names,
    )
    edges: dict[str, set[str]] = {n: {n} for n in names}
    opaque, unsafe = False, set()
    for row in rows:
        opaque |= row["triggers"]
        if row["triggers"] or row["other_unique"] or row["generated"]:
            unsafe.add(row["name"])
        for other in row["fk"]:
            edges.setdefault(row["name"], {row["name"]}).add(other)
            edges.setdefault(other, {other}).add(row["name"])
    linked = {}
    for name in edges:  # the closure: a cascade may go on through further keys
        seen, todo = {name}, [name]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        linked[name] = frozenset(seen)
    return TableFacts(linked, opaque, frozenset(names) - unsafe)


@dataclass
class _Run:
    query: str
    args: list[tuple[Any, ...]]


class BufferedWrites:
    """Wraps `conn` for projection functions: `execute` with arguments is buffered and returns an
    empty status; everything else sends the buffer first. Only the methods projections use exist,
    so one that reaches for another fails loudly instead of bypassing the buffer.

    Set `context(stream_id, per_stream)` before each projection function runs: the stream of its
    event and the tables its projection declares per stream."""

    def __init__(self, conn: asyncpg.Connection, facts: TableFacts | None = None) -> None:
        self._conn = conn
        self._facts = facts or TableFacts({}, True, frozenset())
        self._tables: dict[str, frozenset[str] | None] = {}  # SQL -> tables it may touch (None: any)
        self._overwrite: dict[str, bool] = {}  # SQL -> _overwrites(SQL)
        self.overwritten = 0  # UPDATEs dropped for a later one of the same row
        self._stream: str | None = None
        self._per_stream: frozenset[str] = frozenset()
        self._reset()
        self._sending: asyncio.Task[None] | None = None
        self.statements = 0  # sent, over the life of this wrapper
        self.round_trips = 0

    def _reset(self) -> None:
        self._runs: list[_Run] = []
        self._runs_of: dict[str, list[int]] = {}  # SQL -> indexes of its runs, ascending
        self._after_any: dict[str, int] = {}  # table -> last run holding a statement on it
        self._after_global: dict[str, int] = {}  # table -> last run holding a statement on it of no stream
        self._after_stream: dict[tuple[str, str], int] = {}  # (table, stream) -> last run with such a statement
        self._after_opaque = -1  # last run holding a statement that may touch anything
        self._last_run = -1  # for statements that may touch anything: nothing moves past them
        # Statements are numbered as they come, for the UPDATE that a later one may overwrite:
        self._seq = 0
        self._seq_stream: dict[tuple[str, str], int] = {}  # (table, stream) -> last of that stream
        self._seq_other: dict[str, int] = {}  # table -> last of no stream (or touching anything: "")
        self._overwritable: dict[tuple[str, str, Any], tuple[int, int, int]] = {}  # -> (seq, run, position)

    def context(self, stream_id: str, per_stream: frozenset[str]) -> None:
        self._stream, self._per_stream = stream_id, per_stream

    @property
    def pending(self) -> int:
        return sum(len(run.args) for run in self._runs)

    def _touches(self, query: str) -> frozenset[str] | None:
        if query not in self._tables:
            named = {w for w in _WORD.findall(query.lower()) if w in self._facts.linked}
            tables = frozenset().union(*(self._facts.linked[t] for t in named))
            self._tables[query] = tables if named and not self._facts.opaque else None
        return self._tables[query]

    async def execute(self, query: str, *args: Any) -> str:
        if not args:  # the simple protocol (possibly several statements): nothing to batch
            await self.flush()
            return str(await self._sent(self._conn.execute(query)))
        tables = self._touches(query)
        stream = self._stream or ""
        # Tables this statement touches only at rows of its own stream: it commutes there with other streams.
        own = frozenset() if tables is None else tables & self._per_stream & self._facts.per_stream_safe
        if tables is None:
            after = self._last_run
        else:
            after = self._after_opaque
            for t in tables:
                if t in own:
                    after = max(after, self._after_global.get(t, -1), self._after_stream.get((t, stream), -1))
                else:
                    after = max(after, self._after_any.get(t, -1))
        overwrite = tables is not None and own == tables and self._overwrites(query)
        if overwrite and self._overwrite_earlier(query, own, stream, args):
            return ""
        runs = self._runs_of.setdefault(query, [])
        at = bisect.bisect_left(runs, after)  # the first run of this SQL that comes no earlier than `after`
        if at < len(runs):
            index = runs[at]
            self._runs[index].args.append(args)
        else:
            index = len(self._runs)
            self._runs.append(_Run(query, [args]))
            runs.append(index)
        self._last_run = max(self._last_run, index)
        self._seq += 1
        if tables is None:
            self._after_opaque = index
            self._seq_other[""] = self._seq
        else:
            for t in tables:
                self._after_any[t] = max(self._after_any.get(t, -1), index)
                if t in own:
                    key = (t, stream)
                    self._after_stream[key] = max(self._after_stream.get(key, -1), index)
                    self._seq_stream[key] = self._seq
                else:
                    self._after_global[t] = max(self._after_global.get(t, -1), index)
                    self._seq_other[t] = self._seq
            if overwrite:
                with contextlib.suppress(TypeError):  # an unhashable key: nothing to remember
                    self._overwritable[(query, stream, args[0])] = (self._seq, index, len(self._runs[index].args) - 1)
        return ""

    def _overwrites(self, query: str) -> bool:
        if query not in self._overwrite:
            self._overwrite[query] = _overwrites(query)
        return self._overwrite[query]

    def _overwrite_earlier(self, query: str, tables: frozenset[str], stream: str, args: tuple[Any, ...]) -> bool:
        """Put `args` in the place of the same UPDATE of the same row, if nothing touched its tables
        for this stream, or for no stream, since; whether it did."""
        try:
            earlier = self._overwritable.get((query, stream, args[0]))
        except TypeError:
            return False
        if earlier is None:
            return False
        seq, run, position = earlier
        if self._seq_other.get("", 0) > seq:
            return False
        if any(self._seq_stream.get((t, stream)) != seq or self._seq_other.get(t, 0) > seq for t in tables):
            return False
        self._runs[run].args[position] = args
        self.overwritten += 1
        return True

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        await self.flush()
        return list(await self._sent(self._conn.fetch(query, *args)))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        await self.flush()
        row: asyncpg.Record | None = await self._sent(self._conn.fetchrow(query, *args))
        return row

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any:
        await self.flush()
        return await self._sent(self._conn.fetchval(query, *args, column=column))

    async def flush(self) -> None:
        """Send every buffered statement (one round trip per run) and wait for the answers."""
        await self.settle()
        await self._send(self._take())

    async def flush_soon(self) -> None:
        """Start sending the buffer, and return while Postgres works on it: the caller can go on
        buffering the next statements. Anything that uses the connection settles it first."""
        await self.settle()
        self._sending = asyncio.create_task(self._send(self._take()))
        await asyncio.sleep(0)  # let it write its first statements

    async def settle(self, *, quiet: bool = False) -> None:
        """Wait for the send that `flush_soon` started, if any. Its error is raised here, unless
        `quiet` (when another error is on its way out already)."""
        if self._sending is not None:
            sending, self._sending = self._sending, None
            if not quiet:
                await sending
                return
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await sending

    def _take(self) -> list[_Run]:
        runs = self._runs
        self._reset()
        return runs

    async def _send(self, runs: list[_Run]) -> None:
        for run in runs:
            if len(run.args) == 1:
                await self._conn.execute(run.query, *run.args[0])
            else:
                await self._conn.executemany(run.query, run.args)
            self.statements += len(run.args)
            self.round_trips += 1

    async def _sent(self, call: Any) -> Any:
        result = await call
        self.statements += 1
        self.round_trips += 1
        return result
