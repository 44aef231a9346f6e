"""Platforms (API.md §9): CRUD in NekoBot's shapes, sealed tokens, and the OneBot v11 socket."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import websockets

from tests.fakes.napcat import FakeNapCat
from tests.stack import Stack
from tests.waiting import wait_until


def ws_url(stack: Stack, path: str = "/onebot/v11/ws", edge: int = 0) -> str:
    return stack.edges[edge].url.replace("http://", "ws://") + path


async def make_platform(stack: Stack, token: str = "s3cret-token-1234", self_id: str = "10001") -> str:
    c = await stack.admin()
    r = await c.post(
        "/api/platforms",
        json={
            "type": "aiocqhttp",
            "display_name": "QQ",
            "enable": True,
            "config": {"access_token": token, "self_id": self_id},
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


async def status_of(stack: Stack, platform_id: str) -> str:
    c = await stack.admin()
    r = await c.get(f"/api/platforms/{platform_id}")
    return str(r.json()["data"]["status"])


async def test_platform_crud_nekobot_shapes_and_sealed_token(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post(
        "/api/platforms",
        json={
            "id": "qq1",
            "type": "onebot11",
            "name": "qq",
            "enable": False,
            "config": {"accessToken": "tok-abcdefgh1234"},
        },
    )
    assert r.status_code == 201, r.text
    p = r.json()["data"]
    assert p["id"] == "qq1" and p["enabled"] is False and p["type"] == "onebot11"
    assert p["config"]["accessToken"] == "****1234" and p["status"] == "disconnected" and p["connected"] is False
    assert p["stats"] == {"received": 0, "sent": 0, "errors": 0}
    r = await c.put("/api/platforms/qq1", json={"enable": True, "config": {"accessToken": "****1234", "selfId": "42"}})
    assert r.status_code == 200, r.text
    p = r.json()["data"]
    assert p["enabled"] is True and p["config"]["accessToken"] == "****1234" and p["config"]["selfId"] == "42"
    r = await c.get("/api/platforms")
    assert [i["id"] for i in r.json()["data"]["items"]] == ["qq1"]
    conn = await asyncpg.connect(stack.dsn)
    try:
        stored = await conn.fetchval(
            "SELECT data::text FROM events WHERE stream_id = 'platform-qq1' ORDER BY stream_version LIMIT 1"
        )
        table = await conn.fetchval("SELECT config::text FROM platforms WHERE id = 'qq1'")
    finally:
        await conn.close()
    assert "tok-abcdefgh1234" not in stored and "tok-abcdefgh1234" not in table and "$enc:v1:" in table
    r = await c.get("/api/platform/stats")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["summary"] == {"total": 1, "running": 0, "error": 0, "total_errors": 0}
    assert data["platforms"][0]["messageStats"] == {"sent": 0, "received": 0, "error": 0}
    assert (await c.post("/api/platforms", json={"type": "telegram"})).status_code == 400
    assert (await c.get("/api/platforms/nope")).json()["code"] == "PLATFORM_NOT_FOUND"
    assert (await c.delete("/api/platforms/qq1")).status_code == 200
    assert (await c.get("/api/platforms/qq1")).status_code == 404
    anonymous = stack.client()
    assert (await anonymous.get("/api/platforms")).status_code == 401
    assert (await anonymous.get("/api/platform/stats")).status_code == 401


@pytest.mark.parametrize("variant", ["bearer", "token", "query", "slash", "ws"])
async def test_bot_connects_with_every_token_form(stack: Stack, variant: str) -> None:
    platform_id = await make_platform(stack)
    bot = FakeNapCat(ws_url(stack), token="s3cret-token-1234")
    headers = bot.headers()
    if variant == "token":
        headers["Authorization"] = "Token s3cret-token-1234"
    if variant == "query":
        del headers["Authorization"]
        bot.url += "?access_token=s3cret-token-1234"
    if variant == "slash":
        bot.url += "/"
    if variant == "ws":
        bot.url = ws_url(stack, "/ws")
    await bot.connect(headers=headers)
    try:
        await wait_until(lambda: status_of(stack, platform_id), message="connected")
        await wait_until(lambda: _is(status_of(stack, platform_id), "connected"), message="status connected")
    finally:
        await bot.close()
    await wait_until(lambda: _is(status_of(stack, platform_id), "disconnected"), message="status disconnected")


async def _is(value: object, expected: str) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_wrong_or_missing_token_is_refused_before_accept(stack: Stack) -> None:
    await make_platform(stack)
    for headers in (
        {"X-Self-ID": "10001", "Authorization": "Bearer wrong"},
        {"X-Self-ID": "10001", "Authorization": "Bearer "},
        {"X-Self-ID": "10001"},
        {"Authorization": "Bearer s3cret-token-1234"},  # no X-Self-ID
        {"X-Self-ID": "99999", "Authorization": "Bearer s3cret-token-1234"},  # another bot
    ):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(ws_url(stack), additional_headers=headers, open_timeout=5)
        assert refused.value.response.status_code == 403, headers
    # /ws with X-Self-ID is the bot endpoint too, and refuses the same way (no JWT needed, none accepted).
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(ws_url(stack, "/ws"), additional_headers={"X-Self-ID": "10001"}, open_timeout=5)


async def test_empty_bearer_accepted_only_by_a_tokenless_platform_naming_the_bot(stack: Stack) -> None:
    platform_id = await make_platform(stack, token="", self_id="10001")
    bot = FakeNapCat(ws_url(stack), token="")
    await bot.connect()
    try:
        await wait_until(lambda: _is(status_of(stack, platform_id), "connected"), message="connected")
    finally:
        await bot.close()
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(
            ws_url(stack), additional_headers={"X-Self-ID": "20002", "Authorization": "Bearer "}, open_timeout=5
        )


async def test_bad_frames_are_ignored_and_api_calls_answered(stack: Stack) -> None:
    await make_platform(stack)
    bot = FakeNapCat(ws_url(stack), token="s3cret-token-1234")
    await bot.connect()
    try:
        for frame in ("not json", "[1,2]", '{"post_type": "message"}', '{"echo": 5}', "\x00\xff"):
            await bot.send_frame(frame)
        await bot.heartbeat()
        await asyncio.sleep(0)
        assert not bot.closed.is_set()
    finally:
        await bot.close()


async def _refused(url: str, token: str = "s3cret-token-1234") -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            url, additional_headers={"X-Self-ID": "10001", "Authorization": f"Bearer {token}"}, open_timeout=5
        )
    return refused.value.response.status_code


async def test_disabling_or_deleting_a_platform_closes_its_bot_on_any_edge(stack: Stack) -> None:
    await stack.add_edge()
    platform_id = await make_platform(stack)
    c = await stack.admin()  # edge 0 takes the API calls; edge 1 holds the bot
    bot = FakeNapCat(ws_url(stack, edge=1), token="s3cret-token-1234")
    await bot.connect()
    try:
        await wait_until(lambda: _is(status_of(stack, platform_id), "connected"), message="connected")
        r = await c.put(f"/api/platforms/{platform_id}", json={"enable": False})
        assert r.status_code == 200, r.text
        await wait_until(lambda: bot.closed.is_set(), message="the disabled platform's bot is closed")
        assert await _refused(ws_url(stack, edge=1)) == 403
        assert await status_of(stack, platform_id) == "disconnected"  # switched off, not broken

        assert (await c.put(f"/api/platforms/{platform_id}", json={"enable": True})).status_code == 200
        await bot.connect()
        await wait_until(lambda: _is(status_of(stack, platform_id), "connected"), message="reconnected")
        assert (await c.delete(f"/api/platforms/{platform_id}")).status_code == 200
        await wait_until(lambda: bot.closed.is_set(), message="the deleted platform's bot is closed")
        assert await _refused(ws_url(stack, edge=1)) == 403
    finally:
        await bot.close()


async def test_a_refused_token_sets_status_error_until_the_bot_connects(stack: Stack) -> None:
    platform_id = await make_platform(stack)
    c = await stack.admin()
    assert await _refused(ws_url(stack), token="wrong") == 403
    await wait_until(lambda: _is(status_of(stack, platform_id), "error"), message="status error")
    summary = (await c.get("/api/platform/stats")).json()["data"]["summary"]
    assert summary["error"] == 1 and summary["running"] == 0
    bot = FakeNapCat(ws_url(stack), token="s3cret-token-1234")
    await bot.connect()
    try:
        await wait_until(lambda: _is(status_of(stack, platform_id), "connected"), message="connected")
        # A stranger's wrong token while the bot is connected does not mark a working bot broken.
        assert await _refused(ws_url(stack), token="wrong") == 403
        assert await status_of(stack, platform_id) == "connected"
    finally:
        await bot.close()
    await wait_until(lambda: _is(status_of(stack, platform_id), "disconnected"), message="disconnected")


async def test_platform_list_pages_like_every_list(stack: Stack) -> None:
    c = await stack.admin()
    for i in range(23):
        assert (await c.post("/api/platforms", json={"id": f"p{i:02d}", "type": "onebot11"})).status_code == 201
    first = (await c.get("/api/platforms")).json()["data"]
    assert (first["total"], first["page"], first["page_size"], len(first["items"])) == (23, 1, 20, 20)
    assert [i["id"] for i in first["items"]] == [f"p{i:02d}" for i in range(20)]
    second = (await c.get("/api/platforms", params={"page": 2})).json()["data"]
    assert [i["id"] for i in second["items"]] == ["p20", "p21", "p22"] and second["total"] == 23
    middle = (await c.get("/api/platforms", params={"page": 3, "page_size": 5})).json()["data"]
    assert [i["id"] for i in middle["items"]] == [f"p{i}" for i in range(10, 15)]
    past = (await c.get("/api/platforms", params={"page": 9})).json()["data"]
    assert past["items"] == [] and past["total"] == 23
    for bad in ({"page": 0}, {"page_size": 101}, {"page": "x"}):
        assert (await c.get("/api/platforms", params=bad)).status_code == 400, bad
    # The stats summary still counts every platform, not a page of them.
    assert (await c.get("/api/platform/stats")).json()["data"]["summary"]["total"] == 23
