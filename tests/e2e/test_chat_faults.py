"""Chat under concurrency and crashes."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.test_chat import add_channel
from tests.fakes.llm import FakeProvider, reply, stream
from tests.procs import kill, spawn, stop, wait_for_responders
from tests.stack import Stack


async def test_two_chats_in_one_conversation_at_once_keep_a_consistent_order(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "conc")
        fake.script(stream(["one"], interval=0.05), stream(["two"], interval=0.05))
        conversation = "web:concurrent"
        results = await asyncio.gather(
            c.post("/api/chat", json={"message": "first", "conversationId": conversation}),
            c.post("/api/chat", json={"message": "second", "conversationId": conversation}),
        )
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        detail = (await c.get(f"/api/conversations/{conversation}")).json()["data"]
        messages = detail["messages"]
        assert [m["seq"] for m in messages] == [1, 2, 3, 4] and detail["messageCount"] == 4
        users = {m["id"]: m for m in messages if m["role"] == "user"}
        assert sorted(m["content"] for m in users.values()) == ["first", "second"]
        for m in messages:
            if m["role"] == "assistant":  # every reply comes after the message it answers
                assert users[m["metadata"]["replyTo"]]["seq"] < m["seq"]
        # The read table has the order of the event log.
        async with stack.workers[0].pool.acquire() as conn:
            logged = await conn.fetch(
                "SELECT data->>'message_id' AS id FROM events WHERE stream_id = $1 AND event_type = 'MessageAdded'"
                " ORDER BY stream_version",
                f"conversation-{conversation}",
            )
        assert [r["id"] for r in logged] == [m["id"] for m in messages]


async def stream_frames(c, body: dict, headers: dict) -> list[dict]:  # type: ignore[no-untyped-def]
    frames = []
    async with c.stream("POST", "/api/chat/stream", json=body, headers=headers, timeout=60) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
    return frames


@pytest.fixture
async def edge_only(nats_url: str, database: str):  # type: ignore[no-untyped-def]
    s = Stack(nats_url, database)
    await s.start(workers=0, relay=False, edges=0)
    await s.add_edge(command_timeout=5.0)
    try:
        yield s
    finally:
        await s.stop()


@pytest.mark.slow
async def test_worker_killed_mid_reply_then_retry_answers_once(edge_only: Stack) -> None:
    s = edge_only
    worker = spawn(["worker"], s.nats_url, s.dsn)
    import nats

    nc = await nats.connect(s.nats_url)
    try:
        await wait_for_responders(nc, "cmd.chat._ping")
        c = s.client(token=await s.login())
        async with FakeProvider("openai") as fake:
            await add_channel(c, fake, "slow")
            fake.script(stream([f"t{i} " for i in range(30)], interval=0.2), reply("after the crash"))
            headers = {"Idempotency-Key": "turn-1"}
            body = {"message": "tell me a story", "conversationId": "web:crash"}
            frames = []
            async with c.stream("POST", "/api/chat/stream", json=body, headers=headers, timeout=60) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        frames.append(json.loads(line[6:]))
                        if sum(f["type"] == "content" for f in frames) == 2:
                            kill(worker)
            # No worker of the domain is left: the edge says so at once rather than after its timeout.
            assert frames[-1]["type"] == "error" and frames[-1]["code"] == "UNAVAILABLE"

            worker = spawn(["worker"], s.nats_url, s.dsn)
            await wait_for_responders(nc, "cmd.chat._ping")
            retried = await stream_frames(c, body, headers)
            assert "".join(f.get("text", "") for f in retried) == "after the crash"
            assert retried[-1]["type"] == "end" and retried[-1]["response"] == "after the crash"
            again = await stream_frames(c, body, headers)  # the same key once more: the stored answer
            assert again[-1]["type"] == "end" and again[-1]["messageId"] == retried[-1]["messageId"]
            messages = (await c.get("/api/conversations/web:crash")).json()["data"]["messages"]
            assert [(m["role"], m["content"]) for m in messages] == [
                ("user", "tell me a story"),
                ("assistant", "after the crash"),
            ]
    finally:
        await stop(worker)
        await nc.close()
