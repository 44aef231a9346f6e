"""The pipeline's bookkeeping against a real database: a message is claimed (recorded, counted) once
however often NapCat or JetStream delivers it, and the claim reads the conversation's preset along."""

from __future__ import annotations

import datetime as dt

import asyncpg

from services.pipeline import store

TODAY = dt.date(2026, 1, 1)


async def _received(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT received FROM platform_stats WHERE platform_id = 'qq'") or 0)


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
