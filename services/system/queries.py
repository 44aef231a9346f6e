"""Counts for /api/system/stats, from the read tables and the event log. Tool numbers read zero
until the tools domain exists; the fields are there for clients already."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from bus.heartbeat import Instance


def supervisor_component(instances: list[Instance]) -> dict[str, Any] | None:
    """What `chatbus up` supervisors report of their children: ok unless a role is crash-looping,
    with that role named under `failing`. None when no supervisor runs (a compose deployment)."""
    supervisors = [i for i in instances if i.role == "supervisor" and i.children is not None]
    if not supervisors:
        return None
    children: dict[str, Any] = {}
    for sup in supervisors:
        for role, status in (sup.children or {}).items():
            key = role if len(supervisors) == 1 else f"{sup.instance_id}/{role}"
            children[key] = msgspec.to_builtins(status)
    failing = sorted(role for role, status in children.items() if status["state"] != "running")
    return {"ok": not failing, "failing": failing, "children": children}


async def stats(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM presets) AS presets,
             (SELECT count(*) FROM presets WHERE type = 'user') AS user_presets,
             (SELECT count(*) FROM users) AS users,
             (SELECT count(*) FROM group_configs) AS groups,
             (SELECT coalesce(max(version), 0) FROM config_versions) AS config_version,
             (SELECT coalesce(max(global_position), 0) FROM events) AS position,
             (SELECT count(*) FROM events WHERE recorded_at >= date_trunc('day', now())) AS events_today,
             (SELECT count(*) FROM messages) AS messages,
             (SELECT count(*) FROM messages WHERE created_at >= date_trunc('day', now())) AS messages_today,
             (SELECT count(*) FROM conversations) AS conversations,
             (SELECT count(*) FROM conversations WHERE updated_at >= date_trunc('day', now())) AS active_today"""
    )
    by_platform = {
        r["platform"]: r["n"]
        for r in await conn.fetch(
            "SELECT c.platform, count(*) AS n FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " GROUP BY c.platform"
        )
    }
    calls = await conn.fetch(
        """SELECT channel_id, model, calls, success, failed, prompt_tokens + completion_tokens AS tokens,
                  latency_ms_sum, ttft_ms_sum, ttft_count FROM channel_stats"""
    )
    by_model: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    channels: dict[str, dict[str, Any]] = {}
    for r in calls:
        by_model[r["model"]] = by_model.get(r["model"], 0) + r["tokens"]
        by_channel[r["channel_id"]] = by_channel.get(r["channel_id"], 0) + r["tokens"]
        ch = channels.setdefault(r["channel_id"], {"calls": 0, "success": 0, "failed": 0, "_lat": 0.0})
        ch["calls"] += r["calls"]
        ch["success"] += r["success"]
        ch["failed"] += r["failed"]
        ch["_lat"] += r["latency_ms_sum"]
    for ch in channels.values():
        latency = ch.pop("_lat")
        ch["avgLatencyMs"] = round(latency / ch["success"], 1) if ch["success"] else None
    total_success = sum(ch["success"] for ch in channels.values())
    total_latency = sum(r["latency_ms_sum"] for r in calls)
    return {
        "messages": {"total": row["messages"], "today": row["messages_today"], "byPlatform": by_platform},
        "tokens": {"total": sum(by_model.values()), "byModel": by_model, "byChannel": by_channel},
        "channels": {
            "calls": sum(ch["calls"] for ch in channels.values()),
            "success": total_success,
            "failed": sum(ch["failed"] for ch in channels.values()),
            "avgLatencyMs": round(total_latency / total_success, 1) if total_success else None,
            "byChannel": channels,
        },
        "tools": {"calls": 0, "success": 0, "failed": 0},
        "conversations": {"total": row["conversations"], "active": row["active_today"]},
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
