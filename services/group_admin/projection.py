"""The `group_configs` read table."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from schemas.group_admin import GroupConfigDeleted, GroupConfigSet
from services.group_admin.domain import EVENTS


async def config_set(conn: asyncpg.Connection, recorded: RecordedEvent, event: GroupConfigSet) -> None:
    await conn.execute(
        """INSERT INTO group_configs (group_id, overrides, version, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $4)
           ON CONFLICT (group_id) DO UPDATE
           SET overrides = EXCLUDED.overrides, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at""",
        event.group_id,
        event.overrides,
        recorded.stream_version,
        recorded.recorded_at,
    )


async def config_deleted(conn: asyncpg.Connection, recorded: RecordedEvent, event: GroupConfigDeleted) -> None:
    await conn.execute("DELETE FROM group_configs WHERE group_id = $1", event.group_id)


PROJECTION = Projection(
    name="group_admin",
    tables=("group_configs",),
    handlers={GroupConfigSet: config_set, GroupConfigDeleted: config_deleted},
    catalog=EVENTS,
)
