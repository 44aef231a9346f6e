"""A plugin's config may hold API keys: secret-named keys and the properties its configSchema marks
`writeOnly` / `format: password` are sealed in the event log and the read table, masked on every read
(/api/plugins*, /ws), kept when a mask is sent back, refused as `$enc:` input, re-sealed by
`chatbus secrets rotate`; the plugin process alone sees the plaintext."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets

from bus import crypto
from services.registry import make_store
from services.secrets_rotation import reseal_all
from tests.e2e.test_plugins import ask, running
from tests.e2e.test_streams import recv_json, ws_url
from tests.fakes.napcat import FakeNapCat
from tests.fakes.plugins import example_manifest, example_zip, upload
from tests.stack import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.usefixtures("plugin_dir")  # tests/plugin_fixtures.py

API_KEY = "sk-plugin-abcdef123456"
GREETING = "Hush-7f3a9c-"  # writeOnly in the schema below: sealed although its name is not secret


def secret_schema() -> dict[str, Any]:
    schema: dict[str, Any] = example_manifest()["configSchema"]
    schema["properties"]["greeting"]["writeOnly"] = True
    return schema


async def dump(stack: Stack) -> str:
    async with stack.workers[0].pool.acquire() as conn:
        rows = await conn.fetch("SELECT data::text || metadata::text AS t FROM events")
        rows += await conn.fetch("SELECT result::text AS t FROM processed_commands")
        rows += await conn.fetch("SELECT p::text AS t FROM plugins p")
    return "\n".join(r["t"] for r in rows)


def clear(where: str, text: str) -> None:
    for secret in (API_KEY, GREETING):
        assert secret not in text, f"{where} shows {secret!r}"


async def test_plugin_config_secrets_sealed_masked_and_opened_for_the_plugin(stack: Stack, bot: FakeNapCat) -> None:
    token = await stack.login()
    c = stack.client(token=token)
    assert (await upload(c, example_zip(configSchema=secret_schema()))).status_code == 201
    assert (await c.post("/api/plugins/enable", json={"name": "echo-weather"})).status_code == 200
    await running(c, "echo-weather")
    async with websockets.connect(ws_url(stack, token)) as ws:
        await ws.send(json.dumps({"action": "subscribe", "channels": ["events"]}))
        assert (await recv_json(ws))["type"] == "subscribed"
        config = {"unit": "C", "greeting": GREETING, "apiKey": API_KEY}
        r = await c.put("/api/plugins/config", json={"name": "echo-weather", "config": config})
        assert r.status_code == 200, r.text
        clear("PUT answer", r.text)
        frames = []
        while not any("PluginConfigured" in f for f in frames):
            frames.append(json.dumps(await recv_json(ws)))
        clear("/ws", "\n".join(frames))

    # At rest: ciphertext in the event log and the read table.
    stored = await dump(stack)
    clear("the database", stored)
    assert "$enc:v1:" in stored
    # Reads: masks only.
    shown = (await c.get("/api/plugins/config", params={"name": "echo-weather"})).json()["data"]["config"]
    assert shown["apiKey"] == "sk-****3456" and shown["greeting"] == "****a9c-" and shown["unit"] == "C"
    for path in ("/api/plugins", "/api/plugins/list"):
        clear(path, (await c.get(path)).text)

    # A mask sent back means "unchanged"; a copied ciphertext is refused.
    r = await c.put("/api/plugins/config", json={"name": "echo-weather", "config": {**shown, "unit": "F"}})
    assert r.status_code == 200, r.text
    async with stack.workers[0].pool.acquire() as conn:
        row = json.loads(await conn.fetchval("SELECT config::text FROM plugins WHERE name = 'echo-weather'"))
    assert crypto.reveal(row["apiKey"]) == API_KEY and crypto.reveal(row["greeting"]) == GREETING
    assert row["unit"] == "F"
    r = await c.put("/api/plugins/config", json={"name": "echo-weather", "config": {**shown, "apiKey": row["apiKey"]}})
    assert r.status_code == 400 and "$enc:" in r.text, r.text

    # Rotation: the plugin's secrets sealed again under the new key, still the same plaintext.
    previous = crypto.active()
    crypto.install(crypto.Keyring.of(crypto.new_key(), *previous.keys.values()))
    try:
        done = await reseal_all(make_store(stack.workers[0].pool))
        assert done["plugins"] == ["echo-weather"]
        async with stack.workers[0].pool.acquire() as conn:
            row = json.loads(await conn.fetchval("SELECT config::text FROM plugins WHERE name = 'echo-weather'"))
        assert crypto.active().is_current(row["apiKey"]) and crypto.active().is_current(row["greeting"])
        assert crypto.reveal(row["apiKey"]) == API_KEY and crypto.reveal(row["greeting"]) == GREETING
        clear("the database after rotation", await dump(stack))

        # The plugin process gets the plaintext: its `echo` tool prefixes the greeting. (Asked last:
        # the tool's answer, which the plugin chose to make of it, is in the tool-call log.)
        async def greets() -> bool:
            return await ask(bot, "#echo hi", group=True, role="admin") == f"{GREETING}hi"

        await wait_until(greets, timeout=30, message="the plugin answers with the opened greeting")
    finally:
        crypto.install(previous)
