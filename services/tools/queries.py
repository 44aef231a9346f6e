"""Reads of the tools read tables, for the tools workers and the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from bus.db import fetch_page
from services.tools.policy import ToolSettings


async def settings(conn: asyncpg.Connection | asyncpg.Pool) -> ToolSettings:
    tools = await conn.fetch("SELECT name, enabled, dangerous FROM tool_settings")
    categories = await conn.fetch("SELECT category, enabled FROM tool_categories")
    return ToolSettings(
        enabled={r["name"]: r["enabled"] for r in tools if r["enabled"] is not None},
        categories={r["category"]: r["enabled"] for r in categories},
        dangerous={r["name"]: r["dangerous"] for r in tools if r["dangerous"] is not None},
    )


def _log(row: asyncpg.Record) -> dict[str, Any]:
    item = {
        "id": row["id"],
        "timestamp": row["created_at"],
        "toolName": row["tool_name"],
        "args": row["arguments"],
        "result": row["result"],
        "success": row["success"],
        "error": row["error"],
        "duration": row["duration_ms"],
        "userId": row["user_id"],
        "groupId": row["group_id"],
        "source": row["source"],
        "conversationId": row["conversation_id"],
        "caller": row["caller"],
    }
    # ChatAI's panel reads `request` / `response`.
    item["request"] = item["args"]
    item["response"] = item["result"] if row["success"] else {"error": row["error"]}
    return item


async def list_logs(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    tool_name: str | None = None,
    success: bool | None = None,
    user_id: str | None = None,
    group_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    rows, total = await fetch_page(
        conn,
        """SELECT * FROM tool_logs
           WHERE ($1::text IS NULL OR tool_name = $1) AND ($2::boolean IS NULL OR success = $2)
             AND ($3::text IS NULL OR user_id = $3) AND ($4::text IS NULL OR group_id = $4)
             AND ($5::timestamptz IS NULL OR created_at >= $5) AND ($6::timestamptz IS NULL OR created_at < $6)""",
        [tool_name, success, user_id, group_id, since, until],
        order_by="created_at DESC, position DESC",
        page=1,
        page_size=limit,
        offset=offset,
    )
    return [_log(r) for r in rows], total


async def call_stats(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT count(*) AS calls, count(*) FILTER (WHERE NOT success) AS failures FROM tool_logs"
    )
    return {"calls": int(row["calls"]), "failures": int(row["failures"])}
