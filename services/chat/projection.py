"""The chat read tables: conversations, messages, channel_stats."""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from schemas.chat import ConversationCleared, ConversationDeleted, ConversationStarted, MessageAdded
from services.chat.domain import EVENTS, PREFIX


def _conversation_id(recorded: RecordedEvent) -> str:
    return recorded.stream_id.removeprefix(PREFIX)


async def started(conn: asyncpg.Connection, recorded: RecordedEvent, event: ConversationStarted) -> None:
    await conn.execute(
        """INSERT INTO conversations (id, user_id, group_id, platform, creator, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           ON CONFLICT (id) DO UPDATE SET message_count = 0, last_message = NULL, context_from = 0,
               title = '', created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at""",
        _conversation_id(recorded),
        event.user_id,
        event.group_id,
        event.platform,
        event.creator,
        recorded.recorded_at,
    )


async def message_added(conn: asyncpg.Connection, recorded: RecordedEvent, event: MessageAdded) -> None:
    conversation_id = _conversation_id(recorded)
    stats = _call_stats(event.metadata) if event.role == "assistant" else []
    # One statement: the conversation's count gives the message its seq (NULL, refused by messages.seq,
    # when the conversation has no row), and a reply counts its channel calls (every data-modifying
    # WITH runs once, referenced or not). Nothing is read back, so a replay can pipeline it.
    await conn.execute(
        """WITH c AS (
               UPDATE conversations SET message_count = message_count + 1, last_message = left($4, 200),
                   updated_at = $7, title = CASE WHEN title = '' AND $3 = 'user' THEN left($4, 60) ELSE title END
               WHERE id = $1 RETURNING message_count),
           m AS (
               INSERT INTO messages (conversation_id, seq, message_id, role, content, tool_calls, metadata, created_at)
               VALUES ($1, (SELECT message_count FROM c), $2, $3, $4, $5, $6, $7)
               RETURNING seq),
           s AS (
               INSERT INTO channel_stats AS s (channel_id, model, calls, success, failed, prompt_tokens,
                                               completion_tokens, latency_ms_sum, ttft_ms_sum, ttft_count)
               SELECT u.channel_id, u.model, 1, u.success, u.failed, u.prompt, u.completion, u.latency, u.ttft, u.ttft_n
               FROM unnest($8::text[], $9::text[], $10::int[], $11::int[], $12::bigint[], $13::bigint[],
                           $14::float8[], $15::float8[], $16::int[])
                    AS u(channel_id, model, success, failed, prompt, completion, latency, ttft, ttft_n)
               ON CONFLICT (channel_id, model) DO UPDATE SET
                   calls = s.calls + 1, success = s.success + EXCLUDED.success, failed = s.failed + EXCLUDED.failed,
                   prompt_tokens = s.prompt_tokens + EXCLUDED.prompt_tokens,
                   completion_tokens = s.completion_tokens + EXCLUDED.completion_tokens,
                   latency_ms_sum = s.latency_ms_sum + EXCLUDED.latency_ms_sum,
                   ttft_ms_sum = s.ttft_ms_sum + EXCLUDED.ttft_ms_sum,
                   ttft_count = s.ttft_count + EXCLUDED.ttft_count)
           SELECT seq FROM m""",
        conversation_id,
        event.message_id,
        event.role,
        event.content,
        event.tool_calls,
        event.metadata,
        recorded.recorded_at,
        *(list(column) for column in zip(*stats, strict=True)) if stats else ([],) * 9,
    )


async def cleared(conn: asyncpg.Connection, recorded: RecordedEvent, event: ConversationCleared) -> None:
    await conn.execute(
        "UPDATE conversations SET context_from = message_count, updated_at = $2 WHERE id = $1",
        _conversation_id(recorded),
        recorded.recorded_at,
    )


async def deleted(conn: asyncpg.Connection, recorded: RecordedEvent, event: ConversationDeleted) -> None:
    await conn.execute("DELETE FROM conversations WHERE id = $1", _conversation_id(recorded))


_Stat = tuple[str, str, int, int, int, int, float, float, int]


def _call_stats(meta: dict[str, Any]) -> list[_Stat]:
    """A reply's channel calls, one row per (channel, model): each channel that failed before the one
    that answered, then that one, with the usage and timings of the reply."""
    model = str(meta.get("model") or "")
    used = meta.get("channelId")
    rows: dict[tuple[str, str], _Stat] = {}
    tried_list = meta.get("channelsTried")
    for tried in tried_list if isinstance(tried_list, list) else []:
        if isinstance(tried, dict) and tried.get("error") and tried.get("id") != used:
            rows[(str(tried["id"]), model)] = (str(tried["id"]), model, 0, 1, 0, 0, 0.0, 0.0, 0)
    if used:
        ok = meta.get("status") == "ok"
        raw_usage = meta.get("usage")
        usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        ttft = meta.get("ttftMs")
        rows[(str(used), model)] = (
            str(used),
            model,
            int(ok),
            int(not ok),
            int(usage.get("promptTokens", 0)),
            int(usage.get("completionTokens", 0)),
            float(meta.get("latencyMs") or 0),
            float(ttft or 0),
            int(ttft is not None),
        )
    return list(rows.values())


PROJECTION = Projection(
    name="chat",
    tables=("conversations", "messages", "channel_stats"),
    handlers={
        ConversationStarted: started,
        MessageAdded: message_added,
        ConversationCleared: cleared,
        ConversationDeleted: deleted,
    },
    catalog=EVENTS,
    per_stream=frozenset({"conversations", "messages"}),
)
