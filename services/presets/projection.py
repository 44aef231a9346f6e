"""The `presets` read table: every SQL write of the presets domain."""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.eventstore import RecordedEvent, remember_row
from bus.projections import Projection, insert_row, update_row
from schemas.presets import PresetCreated, PresetDefaultChanged, PresetDeleted, PresetUpdated
from services.presets import queries
from services.presets.domain import EVENTS

# camelCase document key -> column
COLUMNS = {
    "name": "name",
    "description": "description",
    "category": "category",
    "systemPrompt": "system_prompt",
    "model": "model",
    "modelParams": "model_params",
    "persona": "persona",
    "context": "context",
    "tools": "tools",
    "enabled": "enabled",
}


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    return {col: fields[key] for key, col in COLUMNS.items() if key in fields}


def _preset_id(recorded: RecordedEvent) -> str:
    return recorded.stream_id.removeprefix("preset-")


def written_key(preset_id: str) -> tuple[str, str]:
    """Under which key a command's inline projection keeps the row it wrote (its reply needs no read-back)."""
    return ("presets", preset_id)


async def created(conn: asyncpg.Connection, recorded: RecordedEvent, event: PresetCreated) -> None:
    row = {
        "id": _preset_id(recorded),
        "type": event.type,
        "created_at": recorded.recorded_at,
        "updated_at": recorded.recorded_at,
        "version": recorded.stream_version,
        **_values(event.fields),
    }
    remember_row(written_key(row["id"]), await insert_row(conn, "presets", row, returning=queries.COLUMNS))


async def updated(conn: asyncpg.Connection, recorded: RecordedEvent, event: PresetUpdated) -> None:
    changes = {"updated_at": recorded.recorded_at, "version": recorded.stream_version, **_values(event.changes)}
    preset_id = _preset_id(recorded)
    written = await update_row(conn, "presets", ("id", preset_id), changes, returning=queries.COLUMNS)
    remember_row(written_key(preset_id), written)


async def deleted(conn: asyncpg.Connection, recorded: RecordedEvent, event: PresetDeleted) -> None:
    await conn.execute("DELETE FROM presets WHERE id = $1", _preset_id(recorded))
    remember_row(written_key(_preset_id(recorded)), None)


async def default_changed(conn: asyncpg.Connection, recorded: RecordedEvent, event: PresetDefaultChanged) -> None:
    written = await conn.fetchrow(
        f"UPDATE presets SET is_default = $2, updated_at = $3, version = $4 WHERE id = $1 RETURNING {queries.COLUMNS}",
        _preset_id(recorded),
        event.is_default,
        recorded.recorded_at,
        recorded.stream_version,
    )
    remember_row(written_key(_preset_id(recorded)), written)


PROJECTION = Projection(
    name="presets",
    tables=("presets",),
    handlers={
        PresetCreated: created,
        PresetUpdated: updated,
        PresetDeleted: deleted,
        PresetDefaultChanged: default_changed,
    },
    catalog=EVENTS,
    per_stream=frozenset({"presets"}),
)
