"""The pipeline under crashes: a worker OS process killed while it holds a chat message from the
fake NapCat. The message goes back to the INBOUND work queue after the ack wait, another worker
answers it, and the bot sends exactly one reply (DESIGN.md "Platforms: the message pipeline")."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import nats.js.errors
import pytest
from nats.aio.client import Client as NATS

from bus import nats_conn, subjects
from tests.e2e.test_chat import add_channel
from tests.e2e.test_pipeline import TOKEN, connect_bot
from tests.e2e.test_platforms import make_platform
from tests.fakes.llm import FakeProvider, delay
from tests.procs import kill, spawn, stop, wait_for_responders
from tests.stack import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
ACK_WAIT = "2"  # seconds: the production default is 30


@pytest.fixture
async def edge_only(nats_url: str, database: str) -> AsyncIterator[Stack]:
    s = Stack(nats_url, database)
    await s.start(workers=0, edges=1)
    try:
        yield s
    finally:
        await s.stop()


async def _pipeline_ready(nc: NATS) -> bool:
    try:
        await nc.jetstream().consumer_info(subjects.INBOUND_STREAM, subjects.PIPELINE_CONSUMER)
    except nats.js.errors.NotFoundError:
        return False
    return True


async def _queue_empty(nc: NATS) -> bool:
    info = await nc.jetstream().stream_info(subjects.INBOUND_STREAM)
    return info.state.messages == 0


async def _user_message_stored(s: Stack) -> bool:
    r = await (await s.admin()).get("/api/conversations/user:555")
    return r.status_code == 200 and [m["role"] for m in r.json()["data"]["messages"]] == ["user"]


async def test_worker_killed_mid_turn_ends_in_exactly_one_reply(edge_only: Stack) -> None:
    s = edge_only
    nc = await nats_conn.connect(s.nats_url, name="test")
    env = {"CHATBUS_PIPELINE_ACK_WAIT": ACK_WAIT}
    first = spawn(["worker"], s.nats_url, s.dsn, **env)
    second = None
    try:
        await wait_for_responders(nc, subjects.command("platforms", "create"))
        await wait_until(lambda: _pipeline_ready(nc), timeout=20, message="the pipeline consumer exists")
        async with FakeProvider("openai") as llm:
            await add_channel(await s.admin(), llm, "only")
            await make_platform(s, token=TOKEN)
            bot = await connect_bot(s)
            try:
                llm.script(delay(120))  # the first answer never comes: the worker dies waiting for it
                await bot.private("555", "slow one")
                await wait_until(lambda: len(llm.requests) == 1, timeout=20, message="the LLM was asked")
                # The turn's first step (its first delivery skipped the look-up) committed before the
                # crash: the redelivery must find it rather than store the message twice.
                await wait_until(lambda: _user_message_stored(s), timeout=20, message="the user message stored")
                kill(first)
                killed_at = time.monotonic()
                second = spawn(["worker"], s.nats_url, s.dsn, **env)
                await bot.wait_sent(1, timeout=20)  # under the 30 s default: the ack wait must be set
                waited = time.monotonic() - killed_at
                print(f"\nworker kill: one reply {waited:.1f}s after the kill, {len(llm.requests)} LLM calls")
                # Acked only after the send: once the queue is empty, no other delivery can follow.
                await wait_until(lambda: _queue_empty(nc), timeout=20, message="the message is acked")
                assert len(bot.sent()) == 1 and bot.texts() == ["slow one"]
                assert len(llm.requests) <= 2
                r = await (await s.admin()).get("/api/conversations/user:555")
                assert r.status_code == 200, r.text
                messages = r.json()["data"]["messages"]
                assert [m["role"] for m in messages] == ["user", "assistant"]
            finally:
                await bot.close()
    finally:
        kill(first)
        if second is not None:
            await stop(second)
        await nc.close()
