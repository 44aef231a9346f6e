"""The pipeline's bookkeeping in Postgres: what was done for each inbound message (counted once,
parts sent), daily usage counted atomically across workers, and the preset a user switched to."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import asyncpg

from services.platforms import queries as platform_queries


class Claim(NamedTuple):
    refused: bool  # the turn is refused for usage: the same answer on every delivery of the message
    first: bool  # this is the message's first delivery: none of its reply parts was sent yet
    preset_id: str | None = None  # the preset the conversation switched to (when a conversation was asked)


# A message that uses no daily counter (no limit set, a private chat, a command) is claimed in one
# statement, one round trip: recorded once, counted as received only when this statement recorded
# it, and the conversation's preset read along. $1 dedup id, $2 platform id, $3 conversation id.
_CLAIM_UNCOUNTED = f"""
WITH ins AS (
    INSERT INTO pipeline_messages (dedup_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true AS first
), stats AS (
    INSERT INTO platform_stats (platform_id, shard, received, sent, errors, last_event_at)
    SELECT $2, floor(random() * {platform_queries.STATS_SHARDS}), 1, 0, 0, now() WHERE EXISTS (SELECT FROM ins)
    ON CONFLICT (platform_id, shard) DO UPDATE SET received = platform_stats.received + 1, last_event_at = now()
)
SELECT (SELECT first FROM ins) AS first,
       (SELECT preset_id FROM pipeline_presets WHERE conversation_id = $3) AS preset_id"""


async def _claim(
    pool: asyncpg.Pool, dedup_id: str, platform_id: str, usage: list[tuple[str, int]], today: dt.date
) -> Claim:
    """Record the message once (a redelivery finds it) and count it: received, and each usage counter
    unless one is at its limit."""
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO pipeline_messages (dedup_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", dedup_id
        )
        if not inserted:
            refused = await conn.fetchval("SELECT refused FROM pipeline_messages WHERE dedup_id = $1", dedup_id)
            return Claim(bool(refused), False)
        await platform_queries.bump(conn, platform_id, received=1)
        for key, limit in usage:
            # Row-locked increment below the limit: two workers never both take the last use.
            taken = await conn.fetchval(
                """INSERT INTO pipeline_usage (day, key, count) VALUES ($1, $2, 1)
                   ON CONFLICT (day, key) DO UPDATE SET count = pipeline_usage.count + 1
                   WHERE pipeline_usage.count < $3 RETURNING count""",
                today,
                key,
                limit,
            )
            if taken is None:
                raise _Refused  # rolls back every counter this message took: a refused turn uses nothing
        return Claim(False, True)


class _Refused(Exception):
    pass


async def claim(
    pool: asyncpg.Pool,
    dedup_id: str,
    platform_id: str,
    usage: list[tuple[str, int]],
    today: dt.date,
    conversation_id: str | None = None,
) -> Claim:
    """`claim`, with a refusal rolled back and recorded on its own (nothing counted but `received`);
    with `conversation_id`, the preset that conversation switched to is read along."""
    if not usage:
        row = await pool.fetchrow(_CLAIM_UNCOUNTED, dedup_id, platform_id, conversation_id)
        preset = str(row["preset_id"]) if row["preset_id"] else None
        if row["first"]:
            return Claim(False, True, preset)
        # A redelivery: the statement's snapshot may predate the row (a concurrent delivery that
        # committed while the insert waited on it), so its refusal is read on its own.
        refused = await pool.fetchval("SELECT refused FROM pipeline_messages WHERE dedup_id = $1", dedup_id)
        return Claim(bool(refused), False, preset)
    try:
        claimed = await _claim(pool, dedup_id, platform_id, usage, today)
    except _Refused:
        async with pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """INSERT INTO pipeline_messages (dedup_id, refused) VALUES ($1, true)
                   ON CONFLICT DO NOTHING RETURNING true""",
                dedup_id,
            )
            if inserted:
                await platform_queries.bump(conn, platform_id, received=1)
        return Claim(True, bool(inserted))
    if conversation_id is None or claimed.refused:
        return claimed
    return claimed._replace(preset_id=await chosen_preset(pool, conversation_id))


async def sent_parts(pool: asyncpg.Pool, dedup_id: str) -> int:
    return int(await pool.fetchval("SELECT sent_parts FROM pipeline_messages WHERE dedup_id = $1", dedup_id) or 0)


async def mark_sent(pool: asyncpg.Pool, dedup_id: str, platform_id: str, parts: int, *, counted: bool = True) -> None:
    """The parts sent so far, and a sent message counted: one statement (atomic without a transaction)."""
    if not counted:
        await pool.execute(
            "UPDATE pipeline_messages SET sent_parts = greatest(sent_parts, $2) WHERE dedup_id = $1", dedup_id, parts
        )
        return
    await pool.execute(
        "WITH parts AS (UPDATE pipeline_messages SET sent_parts = greatest(sent_parts, $6) WHERE dedup_id = $5) "
        + platform_queries.BUMP,
        platform_id,
        0,
        1,
        0,
        dedup_id,
        parts,
    )


async def count_error(pool: asyncpg.Pool, platform_id: str) -> None:
    await platform_queries.bump(pool, platform_id, errors=1)


async def chosen_preset(pool: asyncpg.Pool, conversation_id: str) -> str | None:
    value = await pool.fetchval("SELECT preset_id FROM pipeline_presets WHERE conversation_id = $1", conversation_id)
    return str(value) if value else None


async def choose_preset(pool: asyncpg.Pool, conversation_id: str, preset_id: str) -> None:
    await pool.execute(
        """INSERT INTO pipeline_presets (conversation_id, preset_id) VALUES ($1, $2)
           ON CONFLICT (conversation_id) DO UPDATE SET preset_id = $2, updated_at = now()""",
        conversation_id,
        preset_id,
    )


async def admin_username(pool: asyncpg.Pool) -> str | None:
    value = await pool.fetchval("SELECT username FROM users WHERE scope = 'admin' ORDER BY created_at LIMIT 1")
    return str(value) if value else None
