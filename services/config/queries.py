"""Reads of the config read table."""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.db import fetch_page
from services.config.domain import ConfigState


async def current(conn: asyncpg.Connection | asyncpg.Pool) -> ConfigState:
    """The latest document, or the defaults (version 0) before the first change."""
    row = await conn.fetchrow("SELECT version, document FROM config_versions ORDER BY version DESC LIMIT 1")
    return ConfigState(row["document"], row["version"]) if row else ConfigState()


async def at_version(conn: asyncpg.Connection | asyncpg.Pool, version: int) -> ConfigState | None:
    if version == 0:
        return ConfigState()
    row = await conn.fetchrow("SELECT version, document FROM config_versions WHERE version = $1", version)
    return ConfigState(row["document"], row["version"]) if row else None


async def history(
    conn: asyncpg.Connection | asyncpg.Pool, *, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    rows, total = await fetch_page(
        conn,
        "SELECT version, paths, kind, rolled_back_to, actor, request_id, changed_at FROM config_versions",
        order_by="version DESC",
        page=page,
        page_size=page_size,
    )
    items = [
        {
            "version": r["version"],
            "actor": r["actor"],
            "changedAt": r["changed_at"],
            "paths": r["paths"],
            "kind": r["kind"],
            "rolledBackTo": r["rolled_back_to"],
            "requestId": r["request_id"],
        }
        for r in rows
    ]
    return items, total
