"""Counts for /api/system/stats, from the read tables and the event log. Chat, channel and tool
numbers read zero until those domains exist; the fields are there for clients already."""

from __future__ import annotations

from typing import Any

import asyncpg


async def stats(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM presets) AS presets,
             (SELECT count(*) FROM presets WHERE type = 'user') AS user_presets,
             (SELECT count(*) FROM users) AS users,
             (SELECT count(*) FROM group_configs) AS groups,
             (SELECT coalesce(max(version), 0) FROM config_versions) AS config_version,
             (SELECT coalesce(max(global_position), 0) FROM events) AS position,
             (SELECT count(*) FROM events WHERE recorded_at >= date_trunc('day', now())) AS events_today"""
    )
    return {
        "messages": {"total": 0, "today": 0, "byPlatform": {}},
        "tokens": {"total": 0, "byModel": {}, "byChannel": {}},
        "channels": {"calls": 0, "success": 0, "failed": 0, "avgLatencyMs": None, "byChannel": {}},
        "tools": {"calls": 0, "success": 0, "failed": 0},
        "conversations": {"total": 0, "active": 0},
        "presets": {
            "total": row["presets"],
            "user": row["user_presets"],
            "system": row["presets"] - row["user_presets"],
        },
        "users": row["users"],
        "groups": row["groups"],
        "config": {"version": row["config_version"]},
        "eventLog": {"position": row["position"], "eventsToday": row["events_today"]},
    }
