"""The chat read tables: conversations, messages, channel_stats."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection

PREFIX = "conversation-"


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if not event.stream_id.startswith(PREFIX):
        return
    conversation_id = event.stream_id[len(PREFIX) :]
    data = event.data
    kind = event.event_type
    if kind == "ConversationStarted":
        await conn.execute(
            """INSERT INTO conversations (id, user_id, group_id, platform, creator, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $6)
               ON CONFLICT (id) DO UPDATE SET message_count = 0, last_message = NULL, context_from = 0,
                   title = '', created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at""",
            conversation_id,
            data.get("user_id"),
            data.get("group_id"),
            data.get("platform", "web"),
            data.get("creator", ""),
            event.recorded_at,
        )
    elif kind == "MessageAdded":
        seq = await conn.fetchval(
            """UPDATE conversations SET message_count = message_count + 1, last_message = left($2, 200),
                   updated_at = $3, title = CASE WHEN title = '' AND $4 = 'user' THEN left($2, 60) ELSE title END
               WHERE id = $1 RETURNING message_count""",
            conversation_id,
            data["content"],
            event.recorded_at,
            data["role"],
        )
        await conn.execute(
            """INSERT INTO messages (conversation_id, seq, message_id, role, content, tool_calls, metadata, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            conversation_id,
            seq,
            data["message_id"],
            data["role"],
            data["content"],
            data.get("tool_calls", []),
            data.get("metadata", {}),
            event.recorded_at,
        )
        if data["role"] == "assistant":
            await _count_call(conn, data.get("metadata", {}))
    elif kind == "ConversationCleared":
        await conn.execute(
            "UPDATE conversations SET context_from = message_count, updated_at = $2 WHERE id = $1",
            conversation_id,
            event.recorded_at,
        )
    elif kind == "ConversationDeleted":
        await conn.execute("DELETE FROM conversations WHERE id = $1", conversation_id)


async def _count_call(conn: asyncpg.Connection, meta: dict[str, object]) -> None:
    tried_list = meta.get("channelsTried")
    for tried in tried_list if isinstance(tried_list, list) else []:
        if isinstance(tried, dict) and tried.get("error") and tried.get("id") != meta.get("channelId"):
            await _upsert(conn, str(tried["id"]), str(meta.get("model") or ""), ok=False, meta={})
    if meta.get("channelId"):
        await _upsert(
            conn, str(meta["channelId"]), str(meta.get("model") or ""), ok=meta.get("status") == "ok", meta=meta
        )


async def _upsert(conn: asyncpg.Connection, channel_id: str, model: str, *, ok: bool, meta: dict[str, object]) -> None:
    usage = meta.get("usage") or {}
    ttft = meta.get("ttftMs")
    await conn.execute(
        """INSERT INTO channel_stats AS s (channel_id, model, calls, success, failed, prompt_tokens, completion_tokens,
                                           latency_ms_sum, ttft_ms_sum, ttft_count)
           VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (channel_id, model) DO UPDATE SET
               calls = s.calls + 1, success = s.success + EXCLUDED.success, failed = s.failed + EXCLUDED.failed,
               prompt_tokens = s.prompt_tokens + EXCLUDED.prompt_tokens,
               completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
               latency_ms_sum = s.latency_ms_sum + EXCLUDED.latency_ms_sum,
               ttft_ms_sum = s.ttft_ms_sum + EXCLUDED.ttft_ms_sum, ttft_count = s.ttft_count + EXCLUDED.ttft_count""",
        channel_id,
        model,
        int(ok),
        int(not ok),
        int(usage.get("promptTokens", 0)) if isinstance(usage, dict) else 0,
        int(usage.get("completionTokens", 0)) if isinstance(usage, dict) else 0,
        float(meta.get("latencyMs") or 0),  # type: ignore[arg-type]
        float(ttft or 0),  # type: ignore[arg-type]
        int(ttft is not None),
    )


PROJECTION = Projection(name="chat", tables=("conversations", "messages", "channel_stats"), apply=project)
