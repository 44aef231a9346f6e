"""Reads of the chat read tables."""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.db import fetch_page


def _conversation(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "userId": row["user_id"],
        "groupId": row["group_id"],
        "platform": row["platform"],
        "creator": row["creator"],
        "title": row["title"],
        "messageCount": row["message_count"],
        "lastMessage": row["last_message"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _message(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["message_id"],
        "seq": row["seq"],
        "role": row["role"],
        "content": row["content"],
        "toolCalls": row["tool_calls"],
        "timestamp": row["created_at"],
        "metadata": row["metadata"],
    }


async def get_conversation(conn: asyncpg.Connection | asyncpg.Pool, conversation_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM conversations WHERE id = $1", conversation_id)
    return _conversation(row) if row else None


async def list_conversations(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: str | None,
    group_id: str | None,
    platform: str | None,
    page: int,
    page_size: int,
) -> tuple[list[dict[str, Any]], int]:
    rows, total = await fetch_page(
        conn,
        """SELECT * FROM conversations
           WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR group_id = $2)
             AND ($3::text IS NULL OR platform = $3)""",
        [user_id, group_id, platform],
        order_by="updated_at DESC, id",
        page=page,
        page_size=page_size,
    )
    return [_conversation(r) for r in rows], total


async def messages(
    conn: asyncpg.Connection | asyncpg.Pool, conversation_id: str, *, limit: int, before: int | None = None
) -> list[dict[str, Any]]:
    """The newest `limit` messages (before seq `before`), oldest first."""
    rows = await conn.fetch(
        """SELECT * FROM (SELECT * FROM messages WHERE conversation_id = $1 AND ($2::int IS NULL OR seq < $2)
                          ORDER BY seq DESC LIMIT $3) m ORDER BY seq""",
        conversation_id,
        before,
        limit,
    )
    return [_message(r) for r in rows]


async def context_messages(
    conn: asyncpg.Connection | asyncpg.Pool, conversation_id: str, limit: int
) -> list[dict[str, Any]]:
    """The messages an LLM sees: the newest `limit` since the last clear, successful turns only."""
    rows = await conn.fetch(
        """SELECT * FROM (SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id
                          WHERE m.conversation_id = $1 AND m.seq > c.context_from
                            AND coalesce(m.metadata->>'status', 'ok') = 'ok'
                          ORDER BY m.seq DESC LIMIT $2) x ORDER BY seq""",
        conversation_id,
        limit,
    )
    return [_message(r) for r in rows]


async def channel_stats(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT channel_id, sum(calls)::bigint AS calls, sum(success)::bigint AS success,
                  sum(failed)::bigint AS failed, sum(prompt_tokens + completion_tokens)::bigint AS tokens,
                  sum(latency_ms_sum)::float8 AS lat, sum(ttft_ms_sum)::float8 AS ttft,
                  sum(ttft_count)::bigint AS ttft_n
           FROM channel_stats GROUP BY channel_id"""
    )
    return {
        r["channel_id"]: {
            "calls": r["calls"],
            "success": r["success"],
            "failed": r["failed"],
            "tokens": r["tokens"],
            "avgLatencyMs": round(r["lat"] / r["success"], 1) if r["success"] else None,
            "avgTtftMs": round(r["ttft"] / r["ttft_n"], 1) if r["ttft_n"] else None,
        }
        for r in rows
    }
