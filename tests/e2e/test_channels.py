"""Channels CRUD (ChatAI) and the NekoBot providers view over the same aggregate."""

from __future__ import annotations

import pytest

from bus import crypto
from tests.e2e.test_presets import envelope_error
from tests.stack import Stack

KEY = "sk-test-abcdefghijklmnop9876"


async def test_channel_crud_with_masked_keys(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post(
        "/api/channels",
        json={
            "id": "main",
            "name": "Main",
            "adapterType": "openai",
            "baseUrl": "http://127.0.0.1:9/v1",
            "apiKey": KEY,
            "apiKeys": [{"key": "sk-second-key-0000111122", "name": "backup", "weight": 3}],
            "models": ["gpt-4o-mini"],
            "priority": 10,
            "weight": 5,
            "timeout": {"connect": 2000, "read": 30000},
            "advanced": {"temperature": 0.3},
            "customHeaders": {"X-Org": "neko"},
        },
    )
    assert r.status_code == 201, r.text
    ch = r.json()["data"]
    assert ch["apiKey"] == "sk-****9876" and ch["apiKeys"][0]["key"] == "sk-****1122"
    assert ch["status"] == "idle" and ch["priority"] == 10 and ch["version"] == 1
    assert KEY not in r.text

    r = await c.get("/api/channels/main")
    assert r.status_code == 200 and r.json()["data"]["apiKey"] == "sk-****9876"
    # A masked key sent back keeps the stored one; a new key replaces it.
    r = await c.put("/api/channels/main", json={"apiKey": "sk-****9876", "name": "Main 2"})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Main 2"
    async with stack.workers[0].pool.acquire() as conn:
        stored = await conn.fetchval("SELECT api_key FROM channels WHERE id = 'main'")
    assert KEY not in stored and crypto.reveal(stored) == KEY  # sealed at rest, and still the same key
    r = await c.put("/api/channels/main", json={"enabled": False})
    assert r.json()["data"]["status"] == "disabled"
    r = await c.get("/api/channels", params={"withStats": 1})
    item = r.json()["data"]["items"][0]
    assert item["stats"] == {
        "calls": 0,
        "success": 0,
        "failed": 0,
        "tokens": 0,
        "avgLatencyMs": None,
        "avgTtftMs": None,
    }
    assert (await c.delete("/api/channels/main")).status_code == 200
    envelope_error(await c.get("/api/channels/main"), 404, "CHANNEL_NOT_FOUND")
    envelope_error(await c.put("/api/channels/main", json={"name": "x"}), 404, "CHANNEL_NOT_FOUND")
    envelope_error(await c.delete("/api/channels/main"), 404, "CHANNEL_NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "baseUrl": "ftp://host"}, "baseUrl"),
        ({"name": "x"}, "baseUrl"),
        ({"name": "", "baseUrl": "http://h"}, "name"),
        ({"name": "x", "baseUrl": "http://h", "adapterType": "llama"}, "adapterType"),
        ({"name": "x", "baseUrl": "http://h", "weight": 0}, "weight"),
        ({"name": "x", "baseUrl": "http://h", "timeout": {"connect": 1}}, "timeout.connect"),
        ({"name": "x", "baseUrl": "http://h", "advanced": {"temperature": 3}}, "advanced.temperature"),
        ({"name": "x", "baseUrl": "http://h", "bogus": 1}, "body"),
        ({"name": "x", "baseUrl": "http://h", "proxy": "gopher://p"}, "proxy"),
    ],
)
async def test_bad_channels_are_400(stack: Stack, body: dict, field: str) -> None:
    c = await stack.admin()
    err = envelope_error(await c.post("/api/channels", json=body), 400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == field, err
    assert (await c.get("/api/channels")).json()["data"]["total"] == 0


async def test_nekobot_providers_view(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post(
        "/api/llm/providers",
        json={
            "id": "neko",
            "name": "Neko",
            "type": "claude",
            "api_key": KEY,
            "base_url": "https://api.anthropic.com",
            "model": "claude-3-haiku",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["data"] == {
        "id": "neko",
        "name": "Neko",
        "type": "claude",
        "api_key": "sk-****9876",
        "base_url": "https://api.anthropic.com",
        "model": "claude-3-haiku",
        "enabled": True,
    }
    ch = (await c.get("/api/channels/neko")).json()["data"]
    assert ch["adapterType"] == "claude" and ch["models"] == ["claude-3-haiku"]
    items = (await c.get("/api/llm/providers")).json()["data"]["items"]
    assert [p["id"] for p in items] == ["neko"]
    assert (await c.delete("/api/llm/providers/neko")).status_code == 200
    assert (await c.get("/api/llm/providers")).json()["data"]["items"] == []
    envelope_error(await c.post("/api/llm/providers", json={"name": "x"}), 400, "VALIDATION_ERROR")
