"""The `presets` read table: every SQL write of the presets domain."""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection, insert_row, update_row

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


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if not event.stream_id.startswith("preset-"):
        return
    preset_id = event.stream_id[len("preset-") :]
    data = event.data
    if event.event_type == "PresetCreated":
        row = {
            "id": preset_id,
            "type": data["type"],
            "created_at": event.recorded_at,
            "updated_at": event.recorded_at,
            "version": event.stream_version,
            **_values(data["fields"]),
        }
        await insert_row(conn, "presets", row)
    elif event.event_type == "PresetUpdated":
        changes = {"updated_at": event.recorded_at, "version": event.stream_version, **_values(data["changes"])}
        await update_row(conn, "presets", ("id", preset_id), changes)
    elif event.event_type == "PresetDeleted":
        await conn.execute("DELETE FROM presets WHERE id = $1", preset_id)
    elif event.event_type == "PresetDefaultChanged":
        await conn.execute(
            "UPDATE presets SET is_default = $2, updated_at = $3, version = $4 WHERE id = $1",
            preset_id,
            data["is_default"],
            event.recorded_at,
            event.stream_version,
        )


PROJECTION = Projection(name="presets", tables=("presets",), apply=project)
