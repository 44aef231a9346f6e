"""The `plugins` and `command_overrides` read tables."""

from __future__ import annotations

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from schemas.plugins import (
    CommandRenamed,
    CommandToggled,
    ConflictResolved,
    PluginConfigured,
    PluginDisabled,
    PluginEnabled,
    PluginInstalled,
    PluginReloaded,
    PluginRemoved,
)
from services.plugins.domain import EVENTS


async def installed(conn: asyncpg.Connection, recorded: RecordedEvent, event: PluginInstalled) -> None:
    m = event.manifest
    await conn.execute(
        """INSERT INTO plugins (name, version, description, author, digest, size, manifest, stream_version,
             installed_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
           ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, description = EXCLUDED.description,
             author = EXCLUDED.author, digest = EXCLUDED.digest, size = EXCLUDED.size,
             manifest = EXCLUDED.manifest, stream_version = EXCLUDED.stream_version,
             updated_at = EXCLUDED.updated_at""",
        event.name,
        event.version,
        str(m.get("description", "")),
        str(m.get("author", "")),
        event.digest,
        event.size,
        m,
        recorded.stream_version,
        recorded.recorded_at,
    )


async def _set(conn: asyncpg.Connection, recorded: RecordedEvent, name: str, assignment: str, *args: object) -> None:
    await conn.execute(
        f"UPDATE plugins SET {assignment}, stream_version = $2, updated_at = $3 WHERE name = $1",
        name,
        recorded.stream_version,
        recorded.recorded_at,
        *args,
    )


async def enabled(conn: asyncpg.Connection, recorded: RecordedEvent, event: PluginEnabled) -> None:
    await _set(conn, recorded, event.name, "enabled = true, enabled_seq = $4", recorded.global_position)


async def disabled(conn: asyncpg.Connection, recorded: RecordedEvent, event: PluginDisabled) -> None:
    await _set(conn, recorded, event.name, "enabled = false, enabled_seq = NULL")


async def configured(conn: asyncpg.Connection, recorded: RecordedEvent, event: PluginConfigured) -> None:
    await _set(conn, recorded, event.name, "config = $4", event.config)


async def reloaded(conn: asyncpg.Connection, recorded: RecordedEvent, event: PluginReloaded) -> None:
    await _set(conn, recorded, event.name, "revision = $4", event.revision)


async def removed(conn: asyncpg.Connection, recorded: RecordedEvent, event: PluginRemoved) -> None:
    await conn.execute("DELETE FROM plugins WHERE name = $1", event.name)


async def toggled(conn: asyncpg.Connection, recorded: RecordedEvent, event: CommandToggled) -> None:
    await conn.execute(
        """INSERT INTO command_overrides (handler_full_name, enabled, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (handler_full_name) DO UPDATE SET enabled = EXCLUDED.enabled,
             updated_at = EXCLUDED.updated_at""",
        event.handler_full_name,
        event.enabled,
        recorded.recorded_at,
    )


async def renamed(conn: asyncpg.Connection, recorded: RecordedEvent, event: CommandRenamed) -> None:
    await conn.execute(
        """INSERT INTO command_overrides (handler_full_name, new_name, aliases, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (handler_full_name) DO UPDATE SET new_name = EXCLUDED.new_name,
             aliases = EXCLUDED.aliases, updated_at = EXCLUDED.updated_at""",
        event.handler_full_name,
        event.new_name,
        event.aliases,
        recorded.recorded_at,
    )


async def resolved(conn: asyncpg.Connection, recorded: RecordedEvent, event: ConflictResolved) -> None:
    await conn.execute(
        """INSERT INTO command_overrides (handler_full_name, resolved, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (handler_full_name) DO UPDATE SET resolved = EXCLUDED.resolved,
             updated_at = EXCLUDED.updated_at""",
        event.kept,
        f"{event.strategy}:{event.conflict_key}",
        recorded.recorded_at,
    )


PROJECTION = Projection(
    name="plugins",
    tables=("plugins", "command_overrides"),
    handlers={
        PluginInstalled: installed,
        PluginEnabled: enabled,
        PluginDisabled: disabled,
        PluginConfigured: configured,
        PluginReloaded: reloaded,
        PluginRemoved: removed,
        CommandToggled: toggled,
        CommandRenamed: renamed,
        ConflictResolved: resolved,
    },
    catalog=EVENTS,
)
