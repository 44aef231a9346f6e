"""Reads of the `group_configs` read table."""

from __future__ import annotations

from typing import Any

import asyncpg


def _item(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "groupId": row["group_id"],
        "overrides": row["overrides"],
        "version": row["version"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


async def get_group(conn: asyncpg.Connection | asyncpg.Pool, group_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM group_configs WHERE group_id = $1", group_id)
    return _item(row) if row else None


async def list_groups(
    conn: asyncpg.Connection | asyncpg.Pool, *, only: str | None, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    rows = await conn.fetch(
        """SELECT *, count(*) OVER () AS total FROM group_configs
           WHERE $1::text IS NULL OR group_id = $1 ORDER BY group_id LIMIT $2 OFFSET $3""",
        only,
        page_size,
        (page - 1) * page_size,
    )
    if rows:
        return [_item(r) for r in rows], rows[0]["total"]
    total = await conn.fetchval("SELECT count(*) FROM group_configs WHERE $1::text IS NULL OR group_id = $1", only)
    return [], int(total)
