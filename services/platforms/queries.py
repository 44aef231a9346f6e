"""Reads of the `platforms` and `platform_stats` tables, and the counters the pipeline bumps."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

from bus.db import fetch_page
from schemas.secrets import mask_value

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def _item(row: asyncpg.Record) -> dict[str, Any]:
    config = dict(row["config"])
    config["accessToken"] = mask_value(config.get("accessToken", ""))
    return {
        "id": row["id"],
        "type": row["type"],
        "name": row["name"],
        "display_name": row["display_name"],
        "enabled": row["enabled"],
        "config": config,
        "selfId": row["self_id"] or None,
        "stats": {
            "received": row["received"] or 0,
            "sent": row["sent"] or 0,
            "errors": row["errors"] or 0,
        },
        "startedAt": row["started_at"],
        "lastEventAt": row["last_event_at"],
        "version": row["version"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


# The counters are spread over a few rows per platform (see BUMP): summed here.
_SELECT = """SELECT p.*, s.received, s.sent, s.errors, s.started_at, s.last_event_at
             FROM platforms p LEFT JOIN (
               SELECT platform_id, sum(received)::bigint AS received, sum(sent)::bigint AS sent,
                      sum(errors)::bigint AS errors, min(started_at) AS started_at,
                      max(last_event_at) AS last_event_at
               FROM platform_stats GROUP BY platform_id
             ) s ON s.platform_id = p.id"""


async def get_platform(conn: Conn, platform_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE p.id = $1", platform_id)
    return _item(row) if row else None


async def list_platforms(conn: Conn) -> list[dict[str, Any]]:
    return [_item(r) for r in await conn.fetch(f"{_SELECT} ORDER BY p.id")]


async def page_platforms(conn: Conn, *, page: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
    rows, total = await fetch_page(conn, _SELECT, order_by="id", page=page, page_size=page_size)
    return [_item(r) for r in rows], total


async def self_ids(conn: Conn) -> dict[str, str]:
    return {r["id"]: r["self_id"] for r in await conn.fetch("SELECT id, self_id FROM platforms")}


async def onebot_candidates(conn: Conn, self_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Platforms a bot with this self id may connect as (its own, and those naming no self id)."""
    rows = await conn.fetch(
        """SELECT id, type, enabled, config FROM platforms
           WHERE type = 'onebot11' AND (self_id = $1 OR self_id = '') ORDER BY self_id DESC, id""",
        self_id,
    )
    return [(r["id"], {"type": r["type"], "enabled": r["enabled"], "config": r["config"]}) for r in rows]


# Rows per platform the counters are spread over: concurrent bumps land on different rows, so they
# neither queue on one row lock nor walk one row's chain of dead versions.
STATS_SHARDS = 16
# $1 platform id, $2 received, $3 sent, $4 errors; a caller may put a data-modifying WITH before it.
BUMP = f"""INSERT INTO platform_stats (platform_id, shard, received, sent, errors, last_event_at)
           VALUES ($1, floor(random() * {STATS_SHARDS}), $2, $3, $4, now())
           ON CONFLICT (platform_id, shard) DO UPDATE SET received = platform_stats.received + $2,
             sent = platform_stats.sent + $3, errors = platform_stats.errors + $4, last_event_at = now()"""


async def bump(conn: Conn, platform_id: str, *, received: int = 0, sent: int = 0, errors: int = 0) -> None:
    await conn.execute(
        BUMP,
        platform_id,
        received,
        sent,
        errors,
    )
