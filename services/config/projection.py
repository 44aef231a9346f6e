"""The `config_versions` read table: one row per config version (history, rollback, current)."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from services.config.domain import STREAM


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if event.stream_id != STREAM or event.event_type not in ("ConfigChanged", "ConfigRolledBack"):
        return
    await conn.execute(
        """INSERT INTO config_versions (version, document, paths, kind, rolled_back_to, actor, request_id, changed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        event.stream_version,
        event.data["document"],
        event.data["paths"],
        "rollback" if event.event_type == "ConfigRolledBack" else "update",
        event.data.get("to_version"),
        event.metadata.get("actor"),
        event.metadata.get("request_id"),
        event.recorded_at,
    )


PROJECTION = Projection(name="config", tables=("config_versions",), apply=project)
