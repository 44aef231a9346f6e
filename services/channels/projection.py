"""The `channels` read table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection, insert_row, update_row

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
        row = {
            "id": channel_id,
            "created_at": event.recorded_at,
            "updated_at": event.recorded_at,
            "version": event.stream_version,
            **_values(data["fields"]),
            "status": "idle" if data["fields"].get("enabled", True) else "disabled",
        }
        await insert_row(conn, "channels", row)
    elif event.event_type == "ChannelUpdated":
        changes = {"updated_at": event.recorded_at, "version": event.stream_version, **_values(data["changes"])}
        await update_row(conn, "channels", ("id", channel_id), changes)
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
