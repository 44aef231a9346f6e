"""A chat turn reads presets, channels, group configs and tool settings from its worker's cache
(services/worker_reads.py): a change made over HTTP applies to the very next turn through one worker,
and reaches a second worker's cache through the relayed event."""

from __future__ import annotations

import asyncpg

from services.worker_reads import _BY_STORE, MAX_AGE, PRESETS, WorkerReads
from tests.e2e.test_chat import add_channel
from tests.fakes.llm import FakeProvider, reply
from tests.stack import Stack
from tests.waiting import wait_until


def reads_of(pool: asyncpg.Pool) -> WorkerReads:
    return next(r for r in list(_BY_STORE.values()) if r.pool is pool)


async def system_prompt_of_turn(c, fake: FakeProvider, **body: str) -> str:  # type: ignore[no-untyped-def]
    fake.script(reply("ok"))
    r = await c.post("/api/chat", json={"message": "hi", **body})
    assert r.status_code == 200, r.text
    first = fake.last.body["messages"][0]
    return str(first["content"]) if first["role"] == "system" else ""


async def test_preset_channel_and_group_changes_apply_to_the_next_turn(stack: Stack) -> None:
    c = await stack.admin()
    # Without the relay no event is published: what the worker learns, it learns from its own commits.
    assert stack.relay is not None
    await stack.relay.stop()
    stack.relay = None
    async with FakeProvider("openai") as one, FakeProvider("openai") as two:
        await add_channel(c, one, "one")
        r = await c.post("/api/presets", json={"id": "tutor", "name": "Tutor", "systemPrompt": "Be brief."})
        assert r.status_code == 201, r.text
        assert await system_prompt_of_turn(c, one, presetId="tutor") == "Be brief."
        assert await system_prompt_of_turn(c, one, presetId="tutor") == "Be brief."  # now from the cache

        # No wait in between: the worker that committed the change reads it fresh.
        r = await c.put("/api/presets/tutor", json={"systemPrompt": "Be thorough."})
        assert r.status_code == 200, r.text
        assert await system_prompt_of_turn(c, one, presetId="tutor") == "Be thorough."

        # A channel added, the old one disabled: the next turn goes to the new one.
        await add_channel(c, two, "two")
        assert (await c.put("/api/channels/one", json={"enabled": False})).status_code == 200
        calls_before = len(one.requests)
        assert await system_prompt_of_turn(c, two, presetId="tutor") == "Be thorough."
        assert len(one.requests) == calls_before

        # A group's own preset, then another; a second group never sees the first one's.
        assert await system_prompt_of_turn(c, two, groupId="g1") != "Be thorough."
        r = await c.put("/api/group-admin/g1/config", json={"presetId": "tutor"})
        assert r.status_code == 200, r.text
        assert await system_prompt_of_turn(c, two, groupId="g1") == "Be thorough."
        assert await system_prompt_of_turn(c, two, groupId="g2") != "Be thorough."


async def test_a_change_committed_by_one_worker_reaches_the_other_workers_cache(stack: Stack) -> None:
    c = await stack.admin()
    await stack.add_worker()
    both = [reads_of(worker.pool) for worker in stack.workers]
    await wait_until(lambda: all(r._live for r in both), message="both workers listen to relayed events")
    r = await c.post("/api/presets", json={"id": "shared", "name": "Shared", "systemPrompt": "Old."})
    assert r.status_code == 201, r.text

    async def both_cache_old() -> bool:
        # (The relayed PresetCreated may still drop an entry loaded before it arrives.)
        presets = [await reads.preset("shared") for reads in both]
        cached = all("shared" in reads._entries.get(PRESETS, {}) for reads in both)
        return cached and all(p is not None and p.system_prompt == "Old." for p in presets)

    await wait_until(both_cache_old, message="each worker caches the preset as it is now")

    # One worker commits the update (whichever takes it); the other learns it from the relayed event,
    # well before its safety-net refresh (MAX_AGE) would reload it.
    r = await c.put("/api/presets/shared", json={"systemPrompt": "New."})
    assert r.status_code == 200, r.text

    async def both_see_new() -> bool:
        presets = [await reads.preset("shared") for reads in both]
        return all(p is not None and p.system_prompt == "New." for p in presets)

    assert MAX_AGE > 10.0
    await wait_until(both_see_new, timeout=10.0, message="both workers' caches took the update")
