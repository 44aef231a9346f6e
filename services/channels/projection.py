"""The `channels` read table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection

COLUMNS = {
    "name": "name",
    "adapterType": "adapter_type",
    "baseUrl": "base_url",
    "apiKey": "api_key",
    "apiKeys": "api_keys",
    "models": "models",
    "priority": "priority",
    "weight": "weight",
    "enabled": "enabled",
    "timeout": "timeout",
    "retry": "retry",
    "advanced": "advanced",
    "customHeaders": "custom_headers",
    "proxy": "proxy",
}


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    return {col: fields[key] for key, col in COLUMNS.items() if key in fields}


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if not event.stream_id.startswith("channel-"):
        return
    channel_id = event.stream_id[len("channel-") :]
    data = event.data
    if event.event_type == "ChannelCreated":
        values = _values(data["fields"])
        values["status"] = "idle" if data["fields"].get("enabled", True) else "disabled"
        cols = ["id", "created_at", "updated_at", "version", *values]
        params = [channel_id, event.recorded_at, event.recorded_at, event.stream_version, *values.values()]
        marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
        await conn.execute(f"INSERT INTO channels ({', '.join(cols)}) VALUES ({marks})", *params)
    elif event.event_type == "ChannelUpdated":
        values = _values(data["changes"])
        sets = "".join(f", {col} = ${i}" for i, col in enumerate(values, start=4))
        await conn.execute(
            f"UPDATE channels SET updated_at = $2, version = $3{sets} WHERE id = $1",
            channel_id,
            event.recorded_at,
            event.stream_version,
            *values.values(),
        )
    elif event.event_type == "ChannelDeleted":
        await conn.execute("DELETE FROM channels WHERE id = $1", channel_id)
    elif event.event_type == "ChannelStatusChanged":
        await conn.execute(
            """UPDATE channels SET status = $2, last_error = $3, cooldown_until = $4,
                   tested_at = coalesce($5, tested_at), version = $6
               WHERE id = $1""",
            channel_id,
            data["status"],
            data.get("last_error"),
            _time(data.get("cooldown_until")),
            _time(data.get("tested_at")),
            event.stream_version,
        )


PROJECTION = Projection(name="channels", tables=("channels",), apply=project)
