"""Reads of the `group_configs` read table."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from bus.db import fetch_page

CODE_KEY_NAME = "groupcode"


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
    rows, total = await fetch_page(
        conn,
        "SELECT * FROM group_configs WHERE $1::text IS NULL OR group_id = $1",
        [only],
        order_by="group_id",
        page=page,
        page_size=page_size,
    )
    return [_item(r) for r in rows], total


async def code_key(conn: asyncpg.Connection) -> bytes:
    """The key of the login codes' stream ids: generated once, shared by every worker through Postgres
    (as the JWT key is when CHATBUS_JWT_SECRET is unset)."""
    value = await conn.fetchval("SELECT value FROM instance_secrets WHERE name = $1", CODE_KEY_NAME)
    if value is None:
        await conn.execute(
            "INSERT INTO instance_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            CODE_KEY_NAME,
            secrets.token_urlsafe(32),
        )
        value = await conn.fetchval("SELECT value FROM instance_secrets WHERE name = $1", CODE_KEY_NAME)
    return str(value).encode()
