"""The `platforms` read table (the access token stays sealed in it)."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from schemas.platforms import PlatformCreated, PlatformDeleted, PlatformUpdated
from services.platforms.domain import EVENTS


async def created(conn: asyncpg.Connection, recorded: RecordedEvent, event: PlatformCreated) -> None:
    f = event.fields
    await conn.execute(
        """INSERT INTO platforms
             (id, type, name, display_name, enabled, config, self_id, version, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
           ON CONFLICT (id) DO UPDATE SET type = EXCLUDED.type, name = EXCLUDED.name,
             display_name = EXCLUDED.display_name, enabled = EXCLUDED.enabled, config = EXCLUDED.config,
             self_id = EXCLUDED.self_id, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at""",
        event.id,
        f["type"],
        f["name"],
        f["display_name"],
        f["enabled"],
        f["config"],
        f["config"].get("selfId", ""),
        recorded.stream_version,
        recorded.recorded_at,
    )


async def updated(conn: asyncpg.Connection, recorded: RecordedEvent, event: PlatformUpdated) -> None:
    c = event.changes
    await conn.execute(
        """UPDATE platforms SET type = coalesce($2, type), name = coalesce($3, name),
             display_name = coalesce($4, display_name), enabled = coalesce($5, enabled),
             config = config || coalesce($6::jsonb, '{}'::jsonb),
             self_id = coalesce($6::jsonb ->> 'selfId', self_id), version = $7, updated_at = $8
           WHERE id = $1""",
        event.id,
        c.get("type"),
        c.get("name"),
        c.get("display_name"),
        c.get("enabled"),
        c.get("config"),
        recorded.stream_version,
        recorded.recorded_at,
    )


async def deleted(conn: asyncpg.Connection, recorded: RecordedEvent, event: PlatformDeleted) -> None:
    await conn.execute("DELETE FROM platforms WHERE id = $1", event.id)


PROJECTION = Projection(
    name="platforms",
    tables=("platforms",),
    handlers={PlatformCreated: created, PlatformUpdated: updated, PlatformDeleted: deleted},
    catalog=EVENTS,
)
