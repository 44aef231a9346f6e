"""The `channels` read table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection, insert_row, update_row
from schemas.channels import ChannelCreated, ChannelDeleted, ChannelStatusChanged, ChannelUpdated
from services.channels.domain import EVENTS

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


def _channel_id(recorded: RecordedEvent) -> str:
    return recorded.stream_id.removeprefix("channel-")


async def created(conn: asyncpg.Connection, recorded: RecordedEvent, event: ChannelCreated) -> None:
    row = {
        "id": _channel_id(recorded),
        "created_at": recorded.recorded_at,
        "updated_at": recorded.recorded_at,
        "version": recorded.stream_version,
        **_values(event.fields),
        "status": "idle" if event.fields.get("enabled", True) else "disabled",
    }
    await insert_row(conn, "channels", row)


async def updated(conn: asyncpg.Connection, recorded: RecordedEvent, event: ChannelUpdated) -> None:
    changes = {"updated_at": recorded.recorded_at, "version": recorded.stream_version, **_values(event.changes)}
    await update_row(conn, "channels", ("id", _channel_id(recorded)), changes)


async def deleted(conn: asyncpg.Connection, recorded: RecordedEvent, event: ChannelDeleted) -> None:
    await conn.execute("DELETE FROM channels WHERE id = $1", _channel_id(recorded))


async def status_changed(conn: asyncpg.Connection, recorded: RecordedEvent, event: ChannelStatusChanged) -> None:
    await conn.execute(
        """UPDATE channels SET status = $2, last_error = $3, cooldown_until = $4,
               tested_at = coalesce($5, tested_at), version = $6
           WHERE id = $1""",
        _channel_id(recorded),
        event.status,
        event.last_error,
        _time(event.cooldown_until),
        _time(event.tested_at),
        recorded.stream_version,
    )


PROJECTION = Projection(
    name="channels",
    tables=("channels",),
    handlers={
        ChannelCreated: created,
        ChannelUpdated: updated,
        ChannelDeleted: deleted,
        ChannelStatusChanged: status_changed,
    },
    catalog=EVENTS,
)
