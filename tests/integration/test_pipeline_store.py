"""The pipeline's bookkeeping against a real database: a message is claimed (recorded, counted) once
however often NapCat or JetStream delivers it, and the claim reads the conversation's preset along."""

from __future__ import annotations

import datetime as dt

import asyncpg

from services.pipeline import store
from services.platforms import queries as platform_queries

TODAY = dt.date(2026, 1, 1)


async def _received(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT sum(received) FROM platform_stats WHERE platform_id = 'qq'") or 0)


async def test_a_claim_without_counters_records_and_counts_once(pool: asyncpg.Pool) -> None:
    first = await store.claim(pool, "qq:1", "qq", [], TODAY, "qq:private:555")
    again = await store.claim(pool, "qq:1", "qq", [], TODAY, "qq:private:555")
    assert first == store.Claim(refused=False, first=True, preset_id=None)
    assert again == store.Claim(refused=False, first=False, preset_id=None)
    assert await _received(pool) == 1
    await store.claim(pool, "qq:2", "qq", [], TODAY)  # an ignored message: counted, no conversation
    assert await _received(pool) == 2


async def test_a_claim_reads_the_chosen_preset(pool: asyncpg.Pool) -> None:
    await store.choose_preset(pool, "qq:private:555", "catgirl")
    assert (await store.claim(pool, "qq:1", "qq", [], TODAY, "qq:private:555")).preset_id == "catgirl"
    assert (await store.claim(pool, "qq:2", "qq", [], TODAY, "qq:private:556")).preset_id is None
    usage = [("group:9:user:555", 5)]
    assert (await store.claim(pool, "qq:3", "qq", usage, TODAY, "qq:private:555")).preset_id == "catgirl"


async def test_a_refused_message_stays_refused_when_redelivered_without_counters(pool: asyncpg.Pool) -> None:
    # Refused for usage on its first delivery; a redelivery that finds no counter (the limit was lifted
    # meanwhile) gives the same answer and counts nothing again.
    usage = [("group:9:user:555", 1)]
    assert (await store.claim(pool, "qq:1", "qq", usage, TODAY)).first
    refused = await store.claim(pool, "qq:2", "qq", usage, TODAY, "qq:group:9")
    assert refused.refused and refused.first
    again = await store.claim(pool, "qq:2", "qq", [], TODAY, "qq:group:9")
    assert again.refused and not again.first
    assert await _received(pool) == 2


async def test_the_counters_spread_over_rows_read_as_one(pool: asyncpg.Pool) -> None:
    await pool.execute(
        """INSERT INTO platforms (id, type, name, display_name, enabled, config, version, created_at, updated_at)
           VALUES ('qq', 'onebot11', 'qq', 'QQ', true, '{}', 1, now(), now())"""
    )
    for n in range(40):
        await store.claim(pool, f"qq:{n}", "qq", [], TODAY, "qq:private:555")
        await store.mark_sent(pool, f"qq:{n}", "qq", 1)
    await store.count_error(pool, "qq")
    rows = await pool.fetchval("SELECT count(*) FROM platform_stats WHERE platform_id = 'qq'")
    assert 1 < rows <= platform_queries.STATS_SHARDS  # concurrent bumps land on different rows
    platform = await platform_queries.get_platform(pool, "qq")
    assert platform is not None
    assert platform["stats"] == {"received": 40, "sent": 40, "errors": 1}
    assert platform["lastEventAt"] is not None and platform["startedAt"] is not None
