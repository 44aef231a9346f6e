"""The `presets` read table: every SQL write of the presets domain."""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection

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
        values = _values(data["fields"])
        cols = ["id", "type", "created_at", "updated_at", "version", *values]
        params = [preset_id, data["type"], event.recorded_at, event.recorded_at, event.stream_version]
        params.extend(values.values())
        placeholders = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        await conn.execute(f"INSERT INTO presets ({', '.join(cols)}) VALUES ({placeholders})", *params)
    elif event.event_type == "PresetUpdated":
        values = _values(data["changes"])
        sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(values, start=4))
        sets = f", {sets}" if sets else ""
        await conn.execute(
            f"UPDATE presets SET updated_at = $2, version = $3{sets} WHERE id = $1",
            preset_id,
            event.recorded_at,
            event.stream_version,
            *values.values(),
        )
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
