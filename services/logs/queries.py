"""Reads of the `logs` table, for `GET /api/logs` and the history of the WebSocket `logs` channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import asyncpg

from schemas.logs import LogEntry
from services.rules import escape_like

_COLUMNS = "id, timestamp, level, service, instance_id, logger, message, request_id, extra"


def row_to_entry(row: asyncpg.Record) -> LogEntry:
    return LogEntry(
        timestamp=row["timestamp"],
        level=row["level"],
        service=row["service"],
        instance_id=row["instance_id"],
        logger=row["logger"],
        message=row["message"],
        request_id=row["request_id"],
        extra=row["extra"],
    )


def _one_or_many(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


async def list_logs(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    level: str | Sequence[str] | None = None,
    service: str | Sequence[str] | None = None,
    search: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    request_id: str | None = None,
    page: int = 1,
    page_size: int = 20,
    order: Literal["asc", "desc"] = "desc",
) -> tuple[list[LogEntry], int]:
    """A page of lines matching every given filter, by time (`desc`: newest first), and the total.
    `since` is inclusive, `until` exclusive; `search` is a case-insensitive substring of message or logger."""
    where: list[str] = []
    params: list[Any] = []
    if levels := _one_or_many(level):
        params.append(levels)
        where.append(f"level = ANY(${len(params)}::text[])")
    if services := _one_or_many(service):
        params.append(services)
        where.append(f"service = ANY(${len(params)}::text[])")
    if search:
        params.append(f"%{escape_like(search)}%")
        where.append(f"(message ILIKE ${len(params)} OR logger ILIKE ${len(params)})")
    if since is not None:
        params.append(since)
        where.append(f"timestamp >= ${len(params)}")
    if until is not None:
        params.append(until)
        where.append(f"timestamp < ${len(params)}")
    if request_id:
        params.append(request_id)
        where.append(f"request_id = ${len(params)}")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    direction = "DESC" if order == "desc" else "ASC"
    params.extend([page_size, (page - 1) * page_size])
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}, count(*) OVER () AS _total FROM logs{clause}"
        f" ORDER BY timestamp {direction}, id {direction} LIMIT ${len(params) - 1} OFFSET ${len(params)}",
        *params,
    )
    if rows:
        return [row_to_entry(r) for r in rows], rows[0]["_total"]
    if page == 1:
        return [], 0  # nothing matched; a second query could count lines stored since, beside an empty page
    total = await conn.fetchval(f"SELECT count(*) FROM logs{clause}", *params[:-2])
    return [], total


async def recent_logs(conn: asyncpg.Connection | asyncpg.Pool, limit: int = 100) -> list[LogEntry]:
    """The newest `limit` lines, oldest first (the backlog a `logs` subscriber gets before live lines)."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM logs ORDER BY timestamp DESC, id DESC LIMIT $1", limit)
    return [row_to_entry(r) for r in reversed(rows)]
