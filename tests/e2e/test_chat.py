"""Chat end to end against local servers that speak the real provider protocols."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx

from tests.e2e.test_presets import envelope_error
from tests.fakes.llm import FakeProvider, reply, status, stream
from tests.stack import Stack
from tests.waiting import wait_until


async def add_channel(c: httpx.AsyncClient, fake: FakeProvider, channel_id: str, **extra: Any) -> None:
    adapter = fake.protocol
    body = {
        "id": channel_id,
        "name": channel_id,
        "adapterType": adapter,
        "baseUrl": fake.base_url,
        "apiKey": "sk-test-key-0000",
        "models": ["m-1"],
        **extra,
    }
    r = await c.post("/api/channels", json=body)
    assert r.status_code == 201, r.text


async def sse(response: httpx.Response) -> list[dict[str, Any]]:
    frames = []
    async with asyncio.timeout(20):
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
    return frames


async def test_chatai_chat_json_and_conversation(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "only")
        fake.script(reply("Hello there!", usage=(12, 3)))
        r = await c.post("/api/chat", json={"message": "hi", "presetId": "catgirl"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["response"] == "Hello there!" and data["channelId"] == "only" and data["model"] == "m-1"
        assert data["usage"] == {"promptTokens": 12, "completionTokens": 3, "totalTokens": 15}
        sent = fake.last.body
        assert sent["messages"][0] == {
            "role": "system",
            # The preset's prompt, then its persona.
            "content": "You are Neko, a cheerful cat-girl who ends sentences with 'nya'.\n"
            "你的名字是Neko。\n性格：cheerful, curious\n特点：playful",
        }
        assert sent["messages"][-1] == {"role": "user", "content": "hi"}
        conversation_id = data["conversationId"]

        fake.script(reply("Second."))
        r = await c.post("/api/chat", json={"message": "again", "conversationId": conversation_id})
        assert r.status_code == 200
        assert [m["content"] for m in fake.last.body["messages"] if m["role"] != "system"] == [
            "hi",
            "Hello there!",
            "again",
        ]

        detail = (await c.get(f"/api/conversations/{conversation_id}")).json()["data"]
        assert detail["messageCount"] == 4
        roles = [(m["role"], m["content"]) for m in detail["messages"]]
        assert roles == [("user", "hi"), ("assistant", "Hello there!"), ("user", "again"), ("assistant", "Second.")]
        meta = detail["messages"][1]["metadata"]
        assert meta["channelId"] == "only" and meta["status"] == "ok" and meta["latencyMs"] >= 0
        assert meta["channelsTried"] == [{"id": "only"}]
        listed = (await c.get("/api/conversations")).json()["data"]
        assert [i["id"] for i in listed["items"]] == [conversation_id]

        # Clear: history stays, context restarts.
        assert (await c.post(f"/api/conversations/{conversation_id}/clear")).status_code == 200
        fake.script(reply("Fresh."))
        await c.post("/api/chat", json={"message": "new topic", "conversationId": conversation_id})
        assert [m["content"] for m in fake.last.body["messages"] if m["role"] != "system"] == ["new topic"]
        assert (await c.delete(f"/api/conversations/{conversation_id}")).status_code == 200
        envelope_error(await c.get(f"/api/conversations/{conversation_id}"), 404, "CONVERSATION_NOT_FOUND")

        stats = (await c.get("/api/channels", params={"withStats": 1})).json()["data"]["items"][0]["stats"]
        assert stats["calls"] == 3 and stats["success"] == 3 and stats["tokens"] >= 15


async def test_chatai_streaming_frames(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "s1")
        fake.script(stream(["Hel", "lo", " world"], usage=(5, 3)))
        async with c.stream("POST", "/api/chat/stream", json={"message": "hi"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            frames = await sse(r)
        assert frames[0]["type"] == "start" and frames[0]["conversationId"].startswith("web:")
        assert [f["text"] for f in frames if f["type"] == "content"] == ["Hel", "lo", " world"]
        assert frames[-1]["type"] == "end" and frames[-1]["usage"]["totalTokens"] == 8
        fake.script(stream(["a", "b"]))
        async with c.stream("POST", "/api/chat", json={"message": "hi", "stream": True}) as r:
            frames = await sse(r)
        assert "".join(f.get("text", "") for f in frames) == "ab" and frames[-1]["type"] == "end"


async def test_failover_500_then_429_then_success(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as first, FakeProvider("claude") as second, FakeProvider("gemini") as third:
        await add_channel(c, first, "first", priority=1)
        await add_channel(c, second, "second", priority=2)
        await add_channel(c, third, "third", priority=3)
        first.script(status(500))
        second.script(status(429, headers={"Retry-After": "120"}))
        third.script(reply("from gemini"))
        r = await c.post("/api/chat", json={"message": "hi"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["response"] == "from gemini" and data["channelId"] == "third"
        detail = (await c.get(f"/api/conversations/{data['conversationId']}")).json()["data"]
        tried = detail["messages"][-1]["metadata"]["channelsTried"]
        assert [t["id"] for t in tried] == ["first", "second", "third"]
        assert tried[0]["status"] == 500 and tried[1]["kind"] == "rate_limited" and "error" not in tried[2]
        channels = {ch["id"]: ch for ch in (await c.get("/api/channels")).json()["data"]["items"]}
        assert channels["second"]["status"] == "cooldown" and channels["second"]["cooldownUntil"]
        assert channels["third"]["status"] == "active"
        # The cooled-down channel is skipped next time; the first is tried again (1 failure < 3).
        first.script(reply("back"))
        r = await c.post("/api/chat", json={"message": "again"})
        assert r.json()["data"]["channelId"] == "first" and len(second.requests) == 1


async def test_broken_stream_gives_error_frame_and_stores_failed_partial(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake, FakeProvider("openai") as spare:
        await add_channel(c, fake, "flaky", priority=1)
        await add_channel(c, spare, "spare", priority=2)
        fake.script(stream(["Par", "tial", " never"], break_after=1))
        async with c.stream("POST", "/api/chat/stream", json={"message": "hi"}) as r:
            frames = await sse(r)
        assert [f["type"] for f in frames] == ["start", "content", "error"]
        assert frames[1]["text"] == "Par" and frames[-1]["code"] == "CHANNEL_UNAVAILABLE"
        assert spare.requests == []  # no switch after the first token
        conversation_id = frames[0]["conversationId"]
        messages = (await c.get(f"/api/conversations/{conversation_id}")).json()["data"]["messages"]
        assert messages[-1]["role"] == "assistant" and messages[-1]["content"] == "Par"
        assert messages[-1]["metadata"]["status"] == "failed"


async def test_nekobot_sessions_and_send(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "neko")
        r = await c.post("/chat/new_session")
        session_id = r.json()["data"]["session_id"]
        fake.script(stream(["nya", "~"]))
        async with c.stream("POST", "/chat/send", json={"message": "meow", "session_id": session_id}) as r:
            frames = await sse(r)
        assert frames == [{"type": "plain", "text": "nya"}, {"type": "plain", "text": "~"}, {"type": "end"}]
        sessions = (await c.get("/chat/sessions")).json()["data"]["sessions"]
        assert (
            sessions[0]["id"] == session_id and sessions[0]["message_count"] == 2 and sessions[0]["creator"] == "admin"
        )
        got = (await c.get("/chat/get_session", params={"session_id": session_id})).json()["data"]
        assert [m["content"] for m in got["messages"]] == ["meow", "nya~"] and got["is_running"] is False
        r = await c.post("/api/llm/chat", json={"message": "plain", "session_id": session_id, "provider_id": "neko"})
        assert r.status_code == 200 and r.json()["data"]["session_id"] == session_id
        assert (await c.delete("/chat/delete_session", params={"session_id": session_id})).status_code == 200
        assert (await c.get("/chat/get_session", params={"session_id": session_id})).status_code == 404
        envelope_error(await c.get("/chat/get_session"), 400, "VALIDATION_ERROR")


async def test_bad_chat_input_and_no_channel(stack: Stack) -> None:
    c = await stack.admin()
    envelope_error(await c.post("/api/chat", json={}), 400, "VALIDATION_ERROR")
    envelope_error(await c.post("/api/chat", json={"message": ""}), 400, "VALIDATION_ERROR")
    envelope_error(
        await c.post("/api/chat", json={"message": "x", "conversationId": "bad id"}), 400, "VALIDATION_ERROR"
    )
    envelope_error(await c.post("/chat/send", json={"message": "x"}), 400, "VALIDATION_ERROR")
    r = await c.post("/api/chat", json={"message": "nobody home"})
    assert r.status_code == 503 and r.json()["code"] == "CHANNEL_UNAVAILABLE"
    async with c.stream("POST", "/api/chat/stream", json={"message": "nobody"}) as resp:
        frames = await sse(resp)
    assert frames[-1] == {"type": "error", "code": "CHANNEL_UNAVAILABLE", "message": frames[-1]["message"]}
    envelope_error(await c.post("/api/chat", json={"message": "x", "presetId": "no-such"}), 404, "PRESET_NOT_FOUND")


async def test_usage_reaches_system_stats(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "stats")
        fake.script(reply("one", usage=(10, 2)), reply("two", usage=(20, 4)))
        await c.post("/api/chat", json={"message": "a"})
        await c.post("/api/chat", json={"message": "b"})
    data = (await c.get("/api/system/stats")).json()["data"]
    assert data["messages"]["total"] == 4 and data["messages"]["byPlatform"] == {"web": 4}
    assert data["tokens"] == {"total": 36, "byModel": {"m-1": 36}, "byChannel": {"stats": 36}}
    assert data["channels"]["calls"] == 2 and data["channels"]["success"] == 2
    assert data["channels"]["byChannel"]["stats"]["avgLatencyMs"] is not None
    assert data["conversations"]["total"] == 2


async def test_context_window_follows_the_preset(stack: Stack) -> None:
    c = await stack.admin()
    await c.post(
        "/api/presets",
        json={
            "id": "short-memory",
            "name": "Short",
            "systemPrompt": "Be brief.",
            "context": {"maxMessages": 3},
            "modelParams": {"temperature": 0.2},
        },
    )
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "ctx")
        conversation = "web:window"
        for word in ("one", "two", "three"):
            await c.post(
                "/api/chat", json={"message": word, "conversationId": conversation, "presetId": "short-memory"}
            )
        sent = fake.last.body
        # maxMessages 3 counts the new message: the last two before it, then it, after the system prompt.
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ]
        assert sent["temperature"] == 0.2


async def test_a_client_that_leaves_mid_stream_does_not_stop_the_reply(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "leave")
        fake.script(stream([f"w{i} " for i in range(10)], interval=0.05))
        body = {"message": "long answer please", "conversationId": "web:leaver"}
        async with c.stream("POST", "/api/chat/stream", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["type"] == "content":
                    break  # the client goes away after the first token

        async def both_messages() -> list[dict[str, Any]] | None:
            # The user message commits while the first tokens already flow: the conversation may
            # not be readable yet when the client leaves.
            r = await c.get("/api/conversations/web:leaver")
            found: list[dict[str, Any]] = r.json()["data"]["messages"] if r.status_code == 200 else []
            return found if len(found) == 2 else None

        messages = await wait_until(both_messages, interval=0.1, message="the reply stored after the client left")
        assert messages[1]["content"] == "".join(f"w{i} " for i in range(10))
        assert messages[1]["metadata"]["status"] == "ok"


async def test_only_a_turn_that_may_come_again_records_its_steps(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "only")
        fake.script(reply("first"), reply("keyed"), reply("never asked"))
        plain = await c.post("/api/chat", json={"message": "no key"})
        keyed = await c.post("/api/chat", json={"message": "with a key"}, headers={"Idempotency-Key": "turn-1"})
        again = await c.post("/api/chat", json={"message": "with a key"}, headers={"Idempotency-Key": "turn-1"})
        assert plain.status_code == keyed.status_code == again.status_code == 200, (plain.text, keyed.text)
        assert again.json()["data"] == keyed.json()["data"] and len(fake.requests) == 2  # the stored reply
        for r, n in ((plain, 2), (keyed, 2)):
            conversation = r.json()["data"]["conversationId"]
            detail = await c.get(f"/api/conversations/{conversation}")
            assert detail.status_code == 200 and detail.json()["data"]["messageCount"] == n, detail.text
    conn = await asyncpg.connect(stack.dsn)
    try:
        recorded = await conn.fetch(
            "SELECT stream_id FROM processed_commands WHERE stream_id = ANY($1)",
            [f"conversation-{r.json()['data']['conversationId']}" for r in (plain, keyed)],
        )
    finally:
        await conn.close()
    # The keyed turn's two steps are kept for its retries; the plain turn's id can never come again.
    assert sorted(r["stream_id"] for r in recorded) == [f"conversation-{keyed.json()['data']['conversationId']}"] * 2
