"""Reads of the `presets` read table, for the edge and for command results."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
import msgspec

from bus.db import fetch_page
from schemas.presets import Preset
from services.rules import escape_like

SORTABLE = {
    "id": "id",
    "name": "lower(name)",
    "createdAt": "created_at",
    "created_at": "created_at",
    "updatedAt": "updated_at",
    "updated_at": "updated_at",
    "type": "type",
    "category": "category",
}

# Every column of a Preset (also what the projection returns from its writes).
COLUMNS = (
    "id, name, description, category, system_prompt, model, model_params, persona, context, tools,"
    " type, is_default, enabled, created_at, updated_at, version"
)
_SELECT = f"SELECT {COLUMNS} FROM presets"


def row_to_preset(row: asyncpg.Record) -> Preset:
    return msgspec.convert(
        {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "category": row["category"],
            "systemPrompt": row["system_prompt"],
            "model": row["model"],
            "modelParams": row["model_params"],
            "persona": row["persona"],
            "context": row["context"],
            "tools": row["tools"],
            "type": row["type"],
            "isDefault": row["is_default"],
            "enabled": row["enabled"],
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
            "version": row["version"],
        },
        Preset,
        from_attributes=False,
    )


async def get_preset(conn: asyncpg.Connection | asyncpg.Pool, preset_id: str) -> Preset | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", preset_id)
    return row_to_preset(row) if row else None


async def get_default_preset(conn: asyncpg.Connection | asyncpg.Pool) -> Preset | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE is_default LIMIT 1")
    return row_to_preset(row) if row else None


async def list_presets(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    type_: Literal["system", "user", "all"] = "all",
    search: str | None = None,
    sort_by: str = "createdAt",
    order: Literal["asc", "desc"] = "asc",
    page: int = 1,
    page_size: int = 20,
) -> tuple[list[Preset], int]:
    where: list[str] = []
    params: list[Any] = []
    if type_ != "all":
        params.append(type_)
        where.append(f"type = ${len(params)}")
    if search:
        params.append(f"%{escape_like(search)}%")
        n = len(params)
        where.append(f"(id ILIKE ${n} OR name ILIKE ${n} OR description ILIKE ${n} OR category ILIKE ${n})")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    direction = "DESC" if order == "desc" else "ASC"
    rows, total = await fetch_page(
        conn,
        f"{_SELECT}{clause}",
        params,
        order_by=f"{SORTABLE[sort_by]} {direction}, id {direction}",
        page=page,
        page_size=page_size,
    )
    return [row_to_preset(r) for r in rows], total
