"""The `config_versions` read table: one row per config version (history, rollback, current)."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from schemas.config import ConfigChanged, ConfigEvent, ConfigRolledBack
from services.config.domain import EVENTS


async def _insert(
    conn: asyncpg.Connection, recorded: RecordedEvent, event: ConfigEvent, to_version: int | None
) -> None:
    await conn.execute(
        """INSERT INTO config_versions (version, document, paths, kind, rolled_back_to, actor, request_id, changed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        recorded.stream_version,
        event.document,
        event.paths,
        "update" if to_version is None else "rollback",
        to_version,
        recorded.metadata.get("actor"),
        recorded.metadata.get("request_id"),
        recorded.recorded_at,
    )


async def changed(conn: asyncpg.Connection, recorded: RecordedEvent, event: ConfigChanged) -> None:
    await _insert(conn, recorded, event, None)


async def rolled_back(conn: asyncpg.Connection, recorded: RecordedEvent, event: ConfigRolledBack) -> None:
    await _insert(conn, recorded, event, event.to_version)


PROJECTION = Projection(
    name="config",
    tables=("config_versions",),
    handlers={ConfigChanged: changed, ConfigRolledBack: rolled_back},
    catalog=EVENTS,
)
