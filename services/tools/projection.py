"""The tools read tables: tool_settings, tool_categories, and tool_logs (the projection of ToolCalled)."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from schemas.tools import ToolCalled, ToolCategoryToggled, ToolDangerousSet, ToolToggled
from services.tools.domain import CALL_PREFIX, EVENTS


async def toggled(conn: asyncpg.Connection, recorded: RecordedEvent, event: ToolToggled) -> None:
    await conn.execute(
        """INSERT INTO tool_settings (name, enabled) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled""",
        event.name,
        event.enabled,
    )


async def dangerous_set(conn: asyncpg.Connection, recorded: RecordedEvent, event: ToolDangerousSet) -> None:
    await conn.execute(
        """INSERT INTO tool_settings (name, dangerous) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET dangerous = EXCLUDED.dangerous""",
        event.name,
        event.dangerous,
    )


async def category_toggled(conn: asyncpg.Connection, recorded: RecordedEvent, event: ToolCategoryToggled) -> None:
    await conn.execute(
        """INSERT INTO tool_categories (category, enabled) VALUES ($1, $2)
           ON CONFLICT (category) DO UPDATE SET enabled = EXCLUDED.enabled""",
        event.category,
        event.enabled,
    )


async def called(conn: asyncpg.Connection, recorded: RecordedEvent, event: ToolCalled) -> None:
    await conn.execute(
        """INSERT INTO tool_logs (id, position, tool_name, arguments, result, success, error, duration_ms, source,
                                  caller, user_id, group_id, conversation_id, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (id) DO NOTHING""",
        recorded.stream_id.removeprefix(CALL_PREFIX),
        recorded.global_position,
        event.tool_name,
        event.arguments,
        event.result,
        event.success,
        event.error,
        event.duration_ms,
        event.source,
        event.caller,
        event.user_id,
        event.group_id,
        event.conversation_id,
        recorded.recorded_at,
    )


PROJECTION = Projection(
    name="tools",
    tables=("tool_settings", "tool_categories", "tool_logs"),
    handlers={
        ToolToggled: toggled,
        ToolDangerousSet: dangerous_set,
        ToolCategoryToggled: category_toggled,
        ToolCalled: called,
    },
    catalog=EVENTS,
)
