"""Presets, NekoBot dialect: /api/personalities over the same aggregate."""

from __future__ import annotations

from tests.stack import Stack


async def test_personalities_share_the_preset_aggregate(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.get("/api/personalities")
    items = r.json()["data"]["items"]
    assert {
        "id": "default",
        "name": "Default assistant",
        "prompt": "You are a helpful assistant. Answer concisely and accurately.",
        "description": "A helpful, concise assistant.",
        "enabled": True,
        "isDefault": True,
    } in items

    r = await c.post("/api/personalities", json={"id": "tsundere", "name": "Tsun", "prompt": "Hmph."})
    assert r.status_code == 201, r.text
    assert r.json()["data"] == {
        "id": "tsundere",
        "name": "Tsun",
        "prompt": "Hmph.",
        "description": "",
        "enabled": True,
        "isDefault": False,
    }
    preset = (await c.get("/api/presets/tsundere")).json()["data"]
    assert preset["systemPrompt"] == "Hmph." and preset["type"] == "user"

    r = await c.put("/api/personalities/default", json={"id": "tsundere"})
    assert r.status_code == 200 and r.json()["data"]["isDefault"] is True
    assert (await c.get("/api/presets/default")).json()["data"]["isDefault"] is False

    r = await c.delete("/api/personalities/tsundere")
    assert r.status_code == 403 and r.json()["code"] == "SYSTEM_PRESET"
    await c.put("/api/personalities/default", json={"id": "default"})
    assert (await c.delete("/api/personalities/tsundere")).status_code == 200
    assert (await c.get("/api/presets/tsundere")).status_code == 404

    r = await c.post("/api/personalities", json={"prompt": "no name"})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"
    r = await c.put("/api/personalities/default", json={"id": "nope-nope"})
    assert r.status_code == 404 and r.json()["code"] == "PRESET_NOT_FOUND"
    r = await c.post("/api/personalities", json={"id": "tsundere2", "name": "x"})
    assert r.status_code == 201
    r = await c.post("/api/personalities", json={"id": "tsundere2", "name": "x"})
    assert r.status_code == 409 and r.json()["code"] == "PRESET_EXISTS"
