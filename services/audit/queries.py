"""Reads of the event log for the audit routes (API.md §11). The `events` table is the only source:
audit shows what happened, not what a projection made of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from schemas.audit import AuditEvent
from schemas.secrets import mask
from services.rules import escape_like

Order = Literal["asc", "desc"]

_COLUMNS = (
    "global_position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at"
)


@dataclass(frozen=True)
class EventFilter:
    """Conditions of an audit page; None means no condition. `stream` ending in `*` is a prefix."""

    stream: str | None = None
    type: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def row_to_event(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        position=row["global_position"],
        id=row["event_id"],
        stream=row["stream_id"],
        version=row["stream_version"],
        type=row["event_type"],
        schema_version=row["schema_version"],
        # The same rule as events published to outside subscribers: hashes hidden, keys masked.
        data=mask(row["data"]),
        metadata={_camel(k): v for k, v in mask(row["metadata"]).items()},
        recorded_at=row["recorded_at"],
    )


def _where(f: EventFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []

    def add(condition: str, value: Any) -> None:
        params.append(value)
        where.append(condition.format(f"${len(params)}"))

    if f.stream is not None and f.stream.endswith("*"):
        prefix = f.stream[:-1]
        if prefix:
            # A left-anchored LIKE: served by events_stream_prefix_idx (text_pattern_ops).
            add("stream_id LIKE {}", escape_like(prefix) + "%")
    elif f.stream is not None:
        add("stream_id = {}", f.stream)
    if f.type is not None:
        add("event_type = {}", f.type)
    if f.actor is not None:
        add("metadata->>'actor' = {}", f.actor)
    if f.since is not None:
        add("recorded_at >= {}", f.since)
    if f.until is not None:
        add("recorded_at <= {}", f.until)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


async def list_events(
    conn: asyncpg.Connection | asyncpg.Pool,
    f: EventFilter,
    *,
    order: Order = "desc",
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[AuditEvent], int]:
    """A page of events by global position, and the number of events that match.

    The count sits beside the page in one statement (LEFT JOIN LATERAL), so a page past the end
    still reports the total and both read the same snapshot."""
    clause, params = _where(f)
    direction = "DESC" if order == "desc" else "ASC"
    params.extend([page_size, (page - 1) * page_size])
    rows = await conn.fetch(
        f"SELECT t.total, e.* FROM (SELECT count(*) AS total FROM events{clause}) t"
        f" LEFT JOIN LATERAL (SELECT {_COLUMNS} FROM events{clause}"
        f" ORDER BY global_position {direction} LIMIT ${len(params) - 1} OFFSET ${len(params)}) e ON true",
        *params,
    )
    items = [row_to_event(r) for r in rows if r["global_position"] is not None]
    return items, int(rows[0]["total"])


async def stream_events(
    conn: asyncpg.Connection | asyncpg.Pool, stream_id: str, *, order: Order = "asc"
) -> list[AuditEvent]:
    """Every event of one stream by version; empty when the stream does not exist."""
    direction = "DESC" if order == "desc" else "ASC"
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version {direction}", stream_id
    )
    return [row_to_event(r) for r in rows]
