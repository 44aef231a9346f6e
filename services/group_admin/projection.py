"""The `group_configs` read table."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if not event.stream_id.startswith("groupconfig-"):
        return
    group_id = event.data["group_id"]
    if event.event_type == "GroupConfigSet":
        await conn.execute(
            """INSERT INTO group_configs (group_id, overrides, version, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $4)
               ON CONFLICT (group_id) DO UPDATE
               SET overrides = EXCLUDED.overrides, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at""",
            group_id,
            event.data["overrides"],
            event.stream_version,
            event.recorded_at,
        )
    elif event.event_type == "GroupConfigDeleted":
        await conn.execute("DELETE FROM group_configs WHERE group_id = $1", group_id)


PROJECTION = Projection(name="group_admin", tables=("group_configs",), apply=project)
