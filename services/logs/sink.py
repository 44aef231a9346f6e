"""The log sink: stores the lines published on `logs.>` in the `logs` table.

Every sink subscribes in the queue group `logsink`, so however many worker processes run one, each line
is stored once. Lines are written in batches (one INSERT per batch); a line waits at most
`flush_interval` seconds. Retention runs every `retention_interval`: rows older than `max_age_days`,
and rows beyond the newest `max_rows`, are deleted. Logs are lossy by design: when Postgres is down or
too slow the sink keeps a bounded backlog and drops (and counts) the rest; it never slows the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import db, subjects
from bus.nats_conn import flush_in_order
from schemas.logs import LogEntry, log_entry_decoder

log = logging.getLogger("chatbus.logsink")

SINK_QUEUE = "logsink"
AGE_DELETE_CHUNK = 10_000
WARN_EVERY = 60.0  # seconds between two warnings about the same trouble: each warning is itself a log line


# The database is unreachable for now: keep the batch and try again later.
_TRANSIENT = db.UNAVAILABLE

_json = msgspec.json.Encoder(enc_hook=repr)


def _text(value: str) -> str:
    # Postgres text cannot hold NUL; one such character must not cost the whole batch.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _extra_json(entry: LogEntry) -> str:
    return _json.encode(entry.extra).decode().replace("\\u0000", "\\ufffd")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def insert_logs(conn: asyncpg.Connection | asyncpg.Pool, entries: Sequence[LogEntry]) -> None:
    """One INSERT for the whole batch."""
    await conn.execute(
        "INSERT INTO logs (timestamp, level, service, instance_id, logger, message, request_id, extra)"
        " SELECT t, l, s, i, g, m, r, e::jsonb FROM unnest("
        "$1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]"
        ") AS u(t, l, s, i, g, m, r, e)",
        [_utc(e.timestamp) for e in entries],
        [_text(e.level) for e in entries],
        [_text(e.service) for e in entries],
        [_text(e.instance_id) for e in entries],
        [_text(e.logger) for e in entries],
        [_text(e.message) for e in entries],
        [_text(e.request_id) if e.request_id is not None else None for e in entries],
        [_extra_json(e) for e in entries],
    )


async def delete_logs_older_than(conn: asyncpg.Connection | asyncpg.Pool, cutoff: datetime) -> int:
    """Delete rows older than `cutoff`, in chunks so that a large backlog never holds one long transaction."""
    deleted = 0
    while True:
        status = await conn.execute(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE timestamp < $1 ORDER BY timestamp LIMIT $2)",
            cutoff,
            AGE_DELETE_CHUNK,
        )
        count = int(status.rsplit(" ", 1)[-1])
        deleted += count
        if count < AGE_DELETE_CHUNK:
            return deleted


async def trim_logs(conn: asyncpg.Connection | asyncpg.Pool, max_rows: int) -> int:
    """Keep the newest `max_rows` rows (by insertion order, which the primary key gives for free)."""
    status = await conn.execute(
        "DELETE FROM logs WHERE id <= (SELECT id FROM logs ORDER BY id DESC OFFSET $1 LIMIT 1)", max_rows
    )
    return int(status.rsplit(" ", 1)[-1])


async def enforce_retention(
    conn: asyncpg.Connection | asyncpg.Pool, *, max_rows: int | None, max_age_days: float | None
) -> int:
    """Both limits; None disables one. Returns the number of rows deleted."""
    deleted = 0
    if max_age_days is not None:
        deleted += await delete_logs_older_than(conn, datetime.now(UTC) - timedelta(days=max_age_days))
    if max_rows is not None:
        deleted += await trim_logs(conn, max_rows)
    return deleted


class LogSink:
    def __init__(
        self,
        nc: NATS,
        pool: asyncpg.Pool,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_rows: int | None = 100_000,
        max_age_days: float | None = 7.0,
        retention_interval: float = 60.0,
        capacity: int | None = None,
    ) -> None:
        self.nc = nc
        self.pool = pool
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.max_age_days = max_age_days
        self.retention_interval = retention_interval
        self.capacity = capacity if capacity is not None else batch_size * 20
        self.stored = 0
        self.batches = 0
        self.deleted = 0
        self.dropped = 0  # backlog full, or a batch Postgres refused
        self.invalid = 0  # not a LogEntry (an outside publisher's garbage)
        self._pending: deque[LogEntry] = deque()
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._stopping = False
        self._retry_at = 0.0
        self._warned_at: dict[str, float] = {}
        self._sub: Subscription | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(subjects.LOGS_WILDCARD, queue=SINK_QUEUE, cb=self._on_msg)
        await flush_in_order(self.nc)  # the server knows the interest when start() returns: no later line is missed
        self._flusher = asyncio.create_task(self._flush_loop(), name="log-sink-flush")
        self._retention = asyncio.create_task(self._retention_loop(), name="log-sink-retention")

    async def _on_msg(self, msg: Msg) -> None:
        try:
            entry = log_entry_decoder.decode(msg.data)
        except msgspec.DecodeError:  # ValidationError is a DecodeError
            self.invalid += 1
            return
        if len(self._pending) >= self.capacity:
            self.dropped += 1
            return
        self._pending.append(entry)
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.flush_interval
        while not self._stopping:
            woke = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(deadline - loop.time(), 0))
                woke = True
            self._wake.clear()
            if woke and not self._stopping:
                await self._write(full_batches_only=True)  # a full batch goes at once...
            else:
                await self._write(full_batches_only=False)  # ...a partial one when its time is up
                deadline = loop.time() + self.flush_interval

    async def flush(self) -> None:
        """Write every pending line now."""
        self._retry_at = 0.0
        await self._write(full_batches_only=False)

    async def _write(self, *, full_batches_only: bool) -> None:
        async with self._write_lock:
            loop = asyncio.get_running_loop()
            minimum = self.batch_size if full_batches_only else 1
            while len(self._pending) >= minimum and loop.time() >= self._retry_at:
                batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                try:
                    await insert_logs(self.pool, batch)
                except _TRANSIENT as exc:
                    room = self.capacity - len(self._pending)
                    self.dropped += max(len(batch) - room, 0)
                    self._pending.extendleft(reversed(batch[: max(room, 0)]))
                    self._retry_at = loop.time() + max(self.flush_interval, 1.0)
                    self._warn("down", "log sink cannot reach Postgres (%r); keeping %d lines", exc, len(self._pending))
                    return
                except Exception as exc:
                    self.dropped += len(batch)
                    self._warn("refused", "log sink dropped %d lines Postgres refused: %r", len(batch), exc)
                    continue
                self.stored += len(batch)
                self.batches += 1

    async def _retention_loop(self) -> None:
        while True:
            try:
                self.deleted += await enforce_retention(
                    self.pool, max_rows=self.max_rows, max_age_days=self.max_age_days
                )
            except Exception as exc:
                self._warn("retention", "log retention failed: %r", exc)
            await asyncio.sleep(self.retention_interval)

    def _warn(self, kind: str, message: str, *args: object) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._warned_at.get(kind, -WARN_EVERY) >= WARN_EVERY:
            self._warned_at[kind] = now
            log.warning(message, *args)

    async def stop(self) -> None:
        """Stop taking lines, store the ones already received, stop retention."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.drain()  # lines already delivered to this process are still handed to _on_msg
            except Exception:  # the connection may already be gone
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self._stopping = True
        self._wake.set()
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retention
        if self._flusher is not None:
            # Not cancelled: it finishes the batch in hand and writes the rest.
            with contextlib.suppress(Exception):
                await self._flusher
        self._flusher = self._retention = None
        with contextlib.suppress(Exception):
            await self.flush()


async def start_log_sink(
    nc: NATS,
    pool: asyncpg.Pool,
    *,
    batch_size: int = 500,
    flush_interval: float = 1.0,
    max_rows: int | None = 100_000,
    max_age_days: float | None = 7.0,
    retention_interval: float = 60.0,
) -> LogSink:
    sink = LogSink(
        nc,
        pool,
        batch_size=batch_size,
        flush_interval=flush_interval,
        max_rows=max_rows,
        max_age_days=max_age_days,
        retention_interval=retention_interval,
    )
    await sink.start()
    return sink
