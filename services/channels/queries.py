"""Reads of the `channels` read table."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from bus.db import fetch_page
from schemas.channels import Channel

_SELECT = "SELECT * FROM channels"
SORTABLE = {"priority": "priority", "name": "lower(name)", "createdAt": "created_at", "id": "id"}


def row_to_channel(row: asyncpg.Record) -> Channel:
    return Channel(
        id=row["id"],
        name=row["name"],
        adapter_type=row["adapter_type"],
        base_url=row["base_url"],
        api_key=row["api_key"],
        api_keys=row["api_keys"],
        models=list(row["models"]),
        priority=row["priority"],
        weight=row["weight"],
        enabled=row["enabled"],
        timeout=row["timeout"],
        retry=row["retry"],
        advanced=row["advanced"],
        custom_headers=row["custom_headers"],
        proxy=row["proxy"],
        status=row["status"],
        last_error=row["last_error"],
        tested_at=row["tested_at"],
        cooldown_until=row["cooldown_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


async def get_channel(conn: asyncpg.Connection | asyncpg.Pool, channel_id: str) -> Channel | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", channel_id)
    return row_to_channel(row) if row else None


async def list_channels(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    sort_by: str = "priority",
    order: str = "asc",
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[Channel], int]:
    direction = "DESC" if order == "desc" else "ASC"
    rows, total = await fetch_page(
        conn, "SELECT * FROM channels", order_by=f"{SORTABLE[sort_by]} {direction}, id", page=page, page_size=page_size
    )
    return [row_to_channel(r) for r in rows], total


async def enabled_channels(conn: asyncpg.Connection | asyncpg.Pool) -> list[Channel]:
    rows = await conn.fetch(f"{_SELECT} WHERE enabled ORDER BY priority, id")
    return [row_to_channel(r) for r in rows]


def to_builtins(channel: Channel) -> dict[str, Any]:
    builtins: dict[str, Any] = msgspec.to_builtins(channel)
    return builtins


EMPTY_STATS: dict[str, Any] = {
    "calls": 0,
    "success": 0,
    "failed": 0,
    "tokens": 0,
    "avgLatencyMs": None,
    "avgTtftMs": None,
}
