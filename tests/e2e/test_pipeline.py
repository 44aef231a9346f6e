"""The message pipeline end to end: a fake NapCat on a real edge, real workers, a fake LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import asyncpg
import httpx
import pytest

from services.config import queries as config_queries
from tests.e2e.test_chat import add_channel
from tests.e2e.test_platforms import make_platform, ws_url
from tests.fakes.llm import FakeProvider, delay
from tests.fakes.napcat import FakeNapCat
from tests.stack import Stack
from tests.waiting import wait_until

TOKEN = "s3cret-token-1234"


@pytest.fixture
async def llm(stack: Stack) -> AsyncIterator[FakeProvider]:
    async with FakeProvider("openai") as fake:
        await add_channel(await stack.admin(), fake, "only")
        yield fake


async def connect_bot(stack: Stack, edge: int = 0) -> FakeNapCat:
    bot = FakeNapCat(ws_url(stack, edge=edge), token=TOKEN)
    await bot.connect()
    return bot


@pytest.fixture
async def bot(stack: Stack, llm: FakeProvider) -> AsyncIterator[FakeNapCat]:
    await make_platform(stack, token=TOKEN)
    bot = await connect_bot(stack)
    try:
        yield bot
    finally:
        await bot.close()


async def set_config(stack: Stack, patch: dict[str, Any]) -> None:
    """Change the config and wait until every worker's cache has it (it follows relayed events)."""
    await stack.set_config(patch)
    pool = stack.workers[0].pool
    version = (await config_queries.current(pool)).version
    await wait_until(
        lambda: all(w.config.version >= version for w in stack.workers), message="workers see the new config"
    )


async def stats(stack: Stack) -> dict[str, int]:
    r = await (await stack.admin()).get("/api/platform/stats")
    return dict(r.json()["data"]["platforms"][0]["messageStats"])


async def test_private_turn_answers_privately(stack: Stack, bot: FakeNapCat, llm: FakeProvider) -> None:
    await bot.private("555", "hello there")
    [call] = await bot.wait_sent(1)
    assert call.action == "send_private_msg" and call.params["user_id"] == 555
    assert bot.texts() == ["hello there"]  # the fake LLM echoes
    assert isinstance(call.echo, str)
    r = await (await stack.admin()).get("/api/conversations/user:555")
    assert r.status_code == 200 and [m["role"] for m in r.json()["data"]["messages"]] == ["user", "assistant"]
    await wait_until(lambda: stats(stack), message="stats")
    assert await stats(stack) == {"sent": 1, "received": 1, "error": 0}
    # A first delivery skips looking its steps up but records both: a redelivery must find them.
    conn = await asyncpg.connect(stack.dsn)
    try:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM processed_commands WHERE stream_id = 'conversation-user:555'"
        )
    finally:
        await conn.close()
    assert recorded == 2


async def test_group_triggers_and_quote(stack: Stack, bot: FakeNapCat, llm: FakeProvider) -> None:
    await set_config(stack, {"trigger": {"group": {"prefixes": ["ai "], "keywords": ["猫"]}}})
    await bot.group("777", "555", [{"type": "text", "data": {"text": "just talking"}}])
    mid = await bot.group("777", "555", bot.at_me(" at you"))
    [call] = await bot.wait_sent(1)
    assert call.action == "send_group_msg" and call.params["group_id"] == 777
    assert call.params["message"][0] == {"type": "reply", "data": {"id": str(mid)}}
    assert bot.texts() == ["at you"]
    await bot.group("777", "555", "ai prefixed")  # a CQ-code string message
    await bot.wait_sent(2)
    await bot.group("777", "556", "我的猫")
    await bot.wait_sent(3)
    assert bot.texts()[1:] == ["prefixed", "我的猫"]
    r = await (await stack.admin()).get("/api/conversations/group:777")
    assert r.status_code == 200 and len(r.json()["data"]["messages"]) == 6
    # A group switched off is not answered, even when @-ed.
    await (await stack.admin()).put("/api/group-admin/777/config", json={"enabled": False})
    await bot.group("777", "555", bot.at_me("still there?"))
    await bot.private("555", "private still works")
    await bot.wait_sent(4)
    assert bot.texts()[3] == "private still works" and len(bot.sent()) == 4


async def test_duplicates_and_own_messages_are_answered_once(stack: Stack, bot: FakeNapCat, llm: FakeProvider) -> None:
    await bot.private("555", "once", message_id=4242)
    await bot.private("555", "once", message_id=4242)  # NapCat replays the same message
    await bot.send_frame(
        {
            "post_type": "message_sent",
            "message_type": "private",
            "message_id": 1,
            "user_id": 10001,
            "self_id": 10001,
            "message": [{"type": "text", "data": {"text": "mine"}}],
        }
    )
    await bot.private(bot.self_id, "from myself")
    await bot.private("555", "after")
    await bot.wait_sent(2)
    assert sorted(bot.texts()) == ["after", "once"]
    assert len(llm.requests) == 2


async def test_usage_limit_refuses_politely(stack: Stack, bot: FakeNapCat, llm: FakeProvider) -> None:
    c = await stack.admin()
    await c.put("/api/group-admin/888/config", json={"usageLimit": {"perUserPerDay": 1, "perGroupPerDay": 2}})
    await bot.group("888", "1", bot.at_me("one"))
    await bot.wait_sent(1)
    await bot.group("888", "1", bot.at_me("two"))
    await bot.wait_sent(2)
    await bot.group("888", "2", bot.at_me("three"))
    await bot.wait_sent(3)
    await bot.group("888", "3", bot.at_me("four"))
    await bot.wait_sent(4)
    texts = bot.texts()
    assert texts[0] == "one" and texts[2] == "three"
    assert "次数" in texts[1] and "次数" in texts[3]  # user 1's second, then the group's third
    assert len(llm.requests) == 2


async def test_admin_link_and_group_code_end_to_end(stack: Stack, bot: FakeNapCat, llm: FakeProvider) -> None:
    await set_config(stack, {"admin": {"masterUsers": ["555"]}})
    await bot.private("666", "#ai管理面板")
    await bot.wait_sent(1)
    assert "主人" in bot.texts()[0]
    await bot.private("555", "#ai管理面板")
    await bot.wait_sent(2)
    url = bot.texts()[1].split("\n")[-1]
    assert "/login/token?token=" in url
    parsed = urlparse(url)
    async with httpx.AsyncClient(base_url=stack.edges[0].url) as c:
        r = await c.get(f"{parsed.path}?{parsed.query}")
        assert r.status_code in (302, 303, 307), r.text
        assert "auth_token" in r.cookies
    await bot.group("999", "700", "#群管理面板", role="member")
    await bot.wait_sent(3)
    assert "群主" in bot.texts()[2]
    await bot.group("999", "701", "#群管理面板", role="admin")
    await bot.wait_sent(5)
    private = next(c for c in bot.sent()[3:] if c.action == "send_private_msg")
    assert private.params["user_id"] == 701
    code = bot.texts()[bot.sent().index(private)].split("：")[1].split("\n")[0]
    async with httpx.AsyncClient(base_url=stack.edges[0].url) as c:
        r = await c.post("/api/group-admin/login", json={"code": code})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["scope"] == "group:999"
    assert len(llm.requests) == 0


async def test_reset_switch_and_help(stack: Stack, bot: FakeNapCat, llm: FakeProvider) -> None:
    await bot.private("555", "remember me")
    await bot.wait_sent(1)
    await bot.private("555", "#重置对话")
    await bot.wait_sent(2)
    await bot.private("555", "#切换预设 catgirl")
    await bot.wait_sent(3)
    await bot.private("555", "#帮助")
    await bot.wait_sent(4)
    texts = bot.texts()
    assert texts[1] == "对话已重置。" and "catgirl" not in texts[2] and "切换" in texts[2]
    assert "#结束对话" in texts[3]
    await bot.private("555", "who are you")
    await bot.wait_sent(5)
    sent = llm.last.body["messages"]
    assert "Neko" in sent[0]["content"] and [m["content"] for m in sent[1:]] == ["who are you"]


async def test_bot_moves_to_another_edge_mid_conversation(stack: Stack, llm: FakeProvider) -> None:
    await stack.add_edge()
    await make_platform(stack, token=TOKEN)
    first = await connect_bot(stack, edge=0)
    try:
        await first.private("555", "on edge zero")
        await first.wait_sent(1)
        second = await connect_bot(stack, edge=1)
        try:
            await wait_until(lambda: first.closed.is_set(), message="old socket closed")
            await second.private("555", "on edge one")
            await second.wait_sent(1)
            assert second.texts() == ["on edge one"] and len(first.sent()) == 1
        finally:
            await second.close()
    finally:
        await first.close()


async def test_a_send_lost_with_the_socket_is_resent_without_a_second_llm_call(stack: Stack, llm: FakeProvider) -> None:
    await make_platform(stack, token=TOKEN)
    first = await connect_bot(stack)
    llm.script(delay(1.0))
    await first.private("555", "slow one")
    await wait_until(lambda: len(llm.requests) == 1, message="the LLM was asked")
    await first.close()  # the edge loses the socket while the turn runs

    async def send_failed() -> bool:
        return (await stats(stack))["error"] >= 1

    await wait_until(send_failed, timeout=15, message="the reply found no bot to send through")
    second = await connect_bot(stack)
    try:
        await second.wait_sent(1, timeout=30)  # the redelivered message, answered from the stored reply
        assert second.texts() == ["slow one"] and first.sent() == []
        assert len(llm.requests) == 1
        counted = await stats(stack)
        assert counted["received"] == 1 and counted["sent"] == 1
    finally:
        await second.close()


async def test_a_bot_that_misses_two_heartbeats_is_closed(stack: Stack) -> None:
    await make_platform(stack, token=TOKEN)
    bot = FakeNapCat(ws_url(stack), token=TOKEN, heartbeat_ms=1000)
    await bot.connect()
    try:
        await bot.heartbeat()  # then silence
        await wait_until(lambda: bot.closed.is_set(), timeout=15, message="edge closed the stale socket")
        r = await (await stack.admin()).get("/api/platform/stats")
        assert r.json()["data"]["summary"]["running"] == 0
    finally:
        await bot.close()


async def test_persona_reaches_the_system_prompt(stack: Stack, bot: FakeNapCat, llm: FakeProvider) -> None:
    c = await stack.admin()
    r = await c.post(
        "/api/presets",
        json={
            "id": "mimi",
            "name": "Mimi",
            "systemPrompt": "Be brief.",
            "persona": {"name": "咪咪", "speakingStyle": "软萌", "traits": ["好奇"]},
        },
    )
    assert r.status_code == 201, r.text
    await bot.private("555", "#切换预设 mimi")
    await bot.wait_sent(1)
    await bot.private("555", "hi")
    await bot.wait_sent(2)
    system = llm.last.body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.")
    assert "咪咪" in system["content"] and "软萌" in system["content"] and "好奇" in system["content"]
