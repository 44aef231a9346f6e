"""Config as an event-sourced document (API.md §4)."""

from __future__ import annotations

import pytest

from bus import crypto
from tests.e2e.test_presets import envelope_error
from tests.stack import TEST_RATE_LIMIT, Stack
from tests.waiting import wait_until


async def test_get_put_deep_merge_and_path_value(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.get("/api/config")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["version"] == 1  # the test stack's own rate-limit setting
    assert data["config"]["rateLimit"]["requestsPerMinute"] == TEST_RATE_LIMIT
    assert data["config"]["trigger"]["group"]["at"] is True

    r = await c.put("/api/config", json={"trigger": {"group": {"prefixes": ["!", "/ai"]}}, "basic": {"debug": True}})
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    assert out["version"] == 2 and sorted(out["updated"]) == ["basic.debug", "trigger.group.prefixes"]
    assert out["config"]["trigger"]["group"]["at"] is True  # merged, not replaced
    assert out["config"]["trigger"]["group"]["prefixes"] == ["!", "/ai"]

    r = await c.put("/api/config", json={"path": "trigger.group.prefixes", "value": ["?"]})
    assert r.status_code == 200 and r.json()["data"]["config"]["trigger"]["group"]["prefixes"] == ["?"]
    r = await c.put("/api/config", json={"path": "context.maxMessages", "value": 50})
    assert r.json()["data"]["updated"] == ["context.maxMessages"] and r.json()["data"]["version"] == 4
    # The same value again changes nothing and makes no version.
    r = await c.put("/api/config", json={"context": {"maxMessages": 50}})
    assert r.json()["data"]["version"] == 4 and r.json()["data"]["updated"] == []


@pytest.mark.parametrize(
    ("body", "status", "code", "path"),
    [
        ({"nosuch": {"x": 1}}, 404, "SECTION_NOT_FOUND", "nosuch"),
        ({"path": "nosuch.x", "value": 1}, 404, "SECTION_NOT_FOUND", "nosuch"),
        ({"rateLimit": {"requestsPerMinute": -5}}, 400, "INVALID_CONFIG", "rateLimit.requestsPerMinute"),
        ({"trigger": {"group": {"randomRate": 2}}}, 400, "INVALID_CONFIG", "trigger.group.randomRate"),
        ({"trigger": {"group": {"bogus": True}}}, 400, "INVALID_CONFIG", "trigger.group"),
        ({"settings": {"theme": "purple"}}, 400, "INVALID_CONFIG", "settings.theme"),
        ({"path": "context.maxMessages", "value": "many"}, 400, "INVALID_CONFIG", "context.maxMessages"),
        ({"basic": "not an object"}, 400, "INVALID_CONFIG", "basic"),
    ],
)
async def test_bad_config_is_refused_with_its_path(stack: Stack, body: dict, status: int, code: str, path: str) -> None:
    c = await stack.admin()
    err = envelope_error(await c.put("/api/config", json=body), status, code)
    assert err["details"][0]["path"] == path, err
    assert (await c.get("/api/config")).json()["data"]["version"] == 1  # nothing written


async def test_bad_bodies(stack: Stack) -> None:
    c = await stack.admin()
    envelope_error(
        await c.put("/api/config", content=b"{nope", headers={"content-type": "application/json"}), 400, "PARSE_ERROR"
    )
    envelope_error(await c.put("/api/config", json=[1]), 400, "VALIDATION_ERROR")
    envelope_error(await c.put("/api/config", json={}), 400, "INVALID_CONFIG")
    envelope_error(await c.put("/api/config", json={"path": "a..b", "value": 1}), 400, "VALIDATION_ERROR")
    envelope_error(await c.post("/api/config/rollback", json={"version": -1}), 400, "VALIDATION_ERROR")
    envelope_error(await c.post("/api/config/rollback", json={"version": 99}), 400, "VALIDATION_ERROR")


async def test_if_match_on_config(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.put("/api/config", json={"basic": {"debug": True}}, headers={"If-Match": "1"})
    assert r.status_code == 200
    envelope_error(
        await c.put("/api/config", json={"basic": {"debug": False}}, headers={"If-Match": "1"}), 409, "VERSION_CONFLICT"
    )
    envelope_error(
        await c.put("/api/config", json={"basic": {"debug": False}, "expectedVersion": 1}), 409, "VERSION_CONFLICT"
    )
    assert (await c.put("/api/config", json={"basic": {"debug": False}, "expectedVersion": 2})).status_code == 200


async def test_history_and_rollback(stack: Stack) -> None:
    c = await stack.admin()
    await c.put("/api/config", json={"basic": {"commandPrefix": "!"}})
    await c.put("/api/config", json={"basic": {"commandPrefix": "?"}, "llm": {"defaultModel": "gpt-x"}})
    r = await c.get("/api/config/history")
    items = r.json()["data"]["items"]
    assert [i["version"] for i in items] == [3, 2, 1]
    assert items[0]["actor"] == "admin" and items[0]["paths"] == ["basic.commandPrefix", "llm.defaultModel"]
    assert items[0]["changedAt"] and items[0]["requestId"]
    r = await c.post("/api/config/rollback", json={"version": 2})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["version"] == 4 and data["config"]["basic"]["commandPrefix"] == "!"
    assert data["config"]["llm"]["defaultModel"] == ""
    items = (await c.get("/api/config/history")).json()["data"]["items"]
    assert items[0]["kind"] == "rollback" and items[0]["rolledBackTo"] == 2
    # Back to the built-in defaults.
    r = await c.post("/api/config/rollback", json={"version": 0})
    assert r.json()["data"]["config"]["rateLimit"]["requestsPerMinute"] == 60


async def test_bot_config_and_settings_are_views_of_sections(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.get("/api/settings")
    assert r.json()["data"] == {
        "theme": "auto",
        "language": "zh-CN",
        "notifications": {"enabled": True, "types": []},
        "auto_restart": False,
    }
    r = await c.put("/api/settings", json={"theme": "dark", "notifications": {"types": ["error"]}})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["settings"]["notifications"] == {"enabled": True, "types": ["error"]}
    assert (await c.get("/api/config")).json()["data"]["config"]["settings"]["theme"] == "dark"
    envelope_error(await c.put("/api/settings", json={"theme": "neon"}), 400, "INVALID_CONFIG")

    r = await c.put("/api/bot/config", json={"nickname": "neko", "adapter": {"ws": "ws://127.0.0.1:3001"}})
    assert r.status_code == 200, r.text
    r = await c.get("/api/bot/config")
    assert r.json()["data"] == {"nickname": "neko", "adapter": {"ws": "ws://127.0.0.1:3001"}}


async def test_secrets_are_masked_and_write_only(stack: Stack) -> None:
    c = await stack.admin()
    await c.put("/api/bot/config", json={"api_key": "sk-abcdefghijklmnop1234", "accessToken": "tok-0987654321"})
    shown = (await c.get("/api/bot/config")).json()["data"]
    assert shown == {"api_key": "sk-****1234", "accessToken": "****4321"}
    # Sending the masked value back keeps the secret; the audit/event stream never shows it either.
    await c.put("/api/bot/config", json={"api_key": "sk-****1234", "nickname": "n"})
    async with stack.workers[0].pool.acquire() as conn:
        doc = await conn.fetchval("SELECT document FROM config_versions ORDER BY version DESC LIMIT 1")
    stored = doc["bot"]["api_key"]
    assert "abcdefghijklmnop" not in stored and crypto.reveal(stored) == "sk-abcdefghijklmnop1234"


async def test_a_change_is_pushed_to_every_edge_and_worker(nats_url: str, database: str) -> None:
    s = Stack(nats_url, database)
    await s.start(edges=2, workers=2)
    try:
        token = await s.login()
        one = s.client(0, token=token)
        r = await one.put("/api/config", json={"context": {"maxMessages": 77}})
        assert r.status_code == 200
        version = r.json()["data"]["version"]
        caches = [edge.server.config.app.state["edge"].config_cache for edge in s.edges]  # type: ignore[attr-defined]
        caches += [worker.config for worker in s.workers]
        # Bounded well under the caches' periodic re-read: the push, not a refresh, brings it.
        await wait_until(
            lambda: all(cache.version >= version for cache in caches), interval=0.01, message="every cache updated"
        )
        assert all(cache.document.context.max_messages == 77 for cache in caches)
    finally:
        await s.stop()
