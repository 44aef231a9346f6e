"""Secrets are never shown and never stored in clear (issue 7 item 6): API reads, the event log, the
read tables, JetStream and the /ws frames hold masks or ciphertext; the provider still gets the real
key, header and proxy password; `chatbus secrets rotate` re-encrypts; the MCP stdio allow-list is not
a config setting."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nats
import pytest
import websockets

from bus import crypto
from bus.projections import check
from services.registry import PROJECTIONS
from services.tools.mcp.allowlist import load_allow_list
from tests.e2e.test_presets import envelope_error
from tests.e2e.test_streams import recv_json, sse_events, ws_url
from tests.fakes.llm import FakeProvider, reply
from tests.stack import Stack

KEY = "sk-live-abcdefghijklmnop4242"
HEADER = "sekret-123"
PROXY_PASSWORD = "pw123"
BOT_TOKEN = "bot-token-0987654321"
PLAINTEXTS = (KEY, HEADER, PROXY_PASSWORD, BOT_TOKEN, "abcdefghijklmnop")


def channel_body(fake: FakeProvider) -> dict[str, Any]:
    # The fake is its own proxy: an HTTP proxy gets the absolute URL and `Proxy-Authorization`.
    return {
        "id": "secret",
        "name": "Secret",
        "adapterType": "openai",
        "baseUrl": fake.base_url,
        "apiKey": KEY,
        "models": ["m-1"],
        "customHeaders": {"x-api-key": HEADER, "X-Org": "neko"},
        "proxy": f"http://u:{PROXY_PASSWORD}@127.0.0.1:{fake.port}",
    }


def assert_clear_of_secrets(where: str, text: str) -> None:
    for secret in PLAINTEXTS:
        assert secret not in text, f"{where} shows {secret!r}"


def assert_real_credentials(request: Any) -> None:
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-api-key"] == HEADER
    proxy_auth = base64.b64encode(f"u:{PROXY_PASSWORD}".encode()).decode()
    assert request.headers["proxy-authorization"] == f"Basic {proxy_auth}"


async def jetstream_text(stack: Stack, want: int) -> str:
    """Every event on `events.>` as a raw outside subscriber receives it."""
    nc = await nats.connect(stack.nats_url)
    try:
        sub = await nc.jetstream().subscribe("events.>", ordered_consumer=True)
        bodies: list[str] = []
        async with asyncio.timeout(20):
            while sum('"Channel' in b or '"Config' in b for b in bodies) < want:
                bodies.append((await sub.next_msg(timeout=10)).data.decode())
        return "\n".join(bodies)
    finally:
        await nc.close()


async def dump(stack: Stack) -> str:
    """What a database dump shows: the event log and every read table that holds secrets."""
    async with stack.workers[0].pool.acquire() as conn:
        rows = await conn.fetch("SELECT data::text AS t FROM events")
        rows += await conn.fetch("SELECT c::text AS t FROM channels c")
        rows += await conn.fetch("SELECT v::text AS t FROM config_versions v")
    return "\n".join(r["t"] for r in rows)


async def test_secrets_are_masked_everywhere_and_sealed_at_rest(stack: Stack) -> None:
    token = await stack.login()
    c = stack.client(token=token)
    sse_params = {"token": token, "types": "ChannelCreated,ConfigChanged"}
    async with (
        FakeProvider("openai") as fake,
        websockets.connect(ws_url(stack, token)) as ws,
        stack.client().stream("GET", "/api/events/sse", params=sse_params) as sse,
    ):
        assert sse.status_code == 200
        await ws.send(json.dumps({"action": "subscribe", "channels": ["events"]}))
        assert (await recv_json(ws))["type"] == "subscribed"
        r = await c.post("/api/channels", json=channel_body(fake))
        assert r.status_code == 201, r.text
        shown = r.json()["data"]
        assert shown["apiKey"] == "sk-****4242"
        assert shown["customHeaders"] == {"x-api-key": "****", "X-Org": "****"}
        assert shown["proxy"] == f"http://u:****@127.0.0.1:{fake.port}"
        r = await c.put("/api/bot/config", json={"token": BOT_TOKEN})
        assert r.status_code == 200, r.text

        # Reads: ChatAI and NekoBot views, the audit log.
        for path in ("/api/channels", "/api/channels/secret", "/api/llm/providers", "/api/bot/config", "/api/config"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)
            assert_clear_of_secrets(path, r.text)
        r = await c.get("/api/audit/events")
        assert r.status_code == 200 and "ChannelCreated" in r.text
        assert_clear_of_secrets("audit", r.text)

        # The /ws events frames.
        frames: list[str] = []
        async with asyncio.timeout(20):
            while not any('"ChannelCreated"' in f for f in frames):
                frames.append(json.dumps(await recv_json(ws)))
        assert_clear_of_secrets("/ws", "\n".join(frames))
        sse_frames = await sse_events(sse, 2)
        assert {e["event"] for e in sse_frames} == {"ChannelCreated", "ConfigChanged"}
        assert_clear_of_secrets("/api/events/sse", json.dumps(sse_frames))

        # A raw JetStream subscriber, and a database dump.
        assert_clear_of_secrets("JetStream", await jetstream_text(stack, want=2))
        text = await dump(stack)
        assert "$enc:v1:" in text
        assert_clear_of_secrets("database", text)

        # The provider still gets the real key, header and proxy password: a chat turn and a test.
        fake.script(reply("pong"), reply("Hello!"))
        r = await c.post("/api/channels/secret/test", json={})
        assert r.status_code == 200, r.text
        assert_real_credentials(fake.last)
        r = await c.post("/api/chat", json={"message": "hi"})
        assert r.status_code == 200, r.text
        assert r.json()["data"]["response"] == "Hello!"
        assert_real_credentials(fake.last)

        # Masked values sent back (a client saving what it read) keep the stored secrets.
        r = await c.put("/api/channels/secret", json=_writable(shown))
        assert r.status_code == 200, r.text
        fake.script(reply("Again."))
        r = await c.post("/api/chat", json={"message": "again"})
        assert r.status_code == 200, r.text
        assert_real_credentials(fake.last)
        assert_clear_of_secrets("database", await dump(stack))


def _writable(shown: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "baseUrl", "apiKey", "models", "customHeaders", "proxy")
    return {k: shown[k] for k in keys} | {"name": "Renamed"}


async def test_a_copied_ciphertext_is_never_opened_for_a_client(stack: Stack) -> None:
    """Someone who read a dump posts the sealed key as an unsaved channel's key, pointing at a server
    of their own: the server receives the ciphertext string, not the key."""
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        body = channel_body(fake)
        body.pop("proxy")
        assert (await c.post("/api/channels", json=body)).status_code == 201
        async with stack.workers[0].pool.acquire() as conn:
            sealed = await conn.fetchval("SELECT api_key FROM channels WHERE id = 'secret'")
        fake.script(reply("pong"), reply("pong"))
        unsaved = {**body, "id": None, "apiKey": sealed, "customHeaders": {}}
        r = await c.post("/api/channels/test", json={k: v for k, v in unsaved.items() if v is not None})
        assert r.status_code == 200, r.text
        assert fake.last.headers["authorization"] == f"Bearer {sealed}"
        # Saved as a new channel, the literal is sealed again: still not the key.
        r = await c.post("/api/channels", json={**body, "id": "copy", "apiKey": sealed})
        assert r.status_code == 201
        r = await c.post("/api/channels/copy/test", json={})
        assert r.status_code == 200, r.text
        assert fake.last.headers["authorization"] == f"Bearer {sealed}"
        envelope_error(await c.put("/api/bot/config", json={"token": sealed}), 400, "INVALID_CONFIG")


async def test_the_stdio_allow_list_is_not_a_config_setting(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await stack.admin()
    error = envelope_error(
        await c.put("/api/config", json={"mcp": {"stdioAllowedCommands": ["bash"]}}), 400, "INVALID_CONFIG"
    )
    assert error["details"][0]["path"] == "mcp.stdioAllowedCommands"
    assert "CHATBUS_MCP_STDIO_ALLOW" in error["message"]
    body = {"path": "mcp.stdioAllowedCommands", "value": ["sh -c"]}
    envelope_error(await c.put("/api/config", json=body), 400, "INVALID_CONFIG")
    # A client saving back the whole document it read is not refused for it.
    document = (await c.get("/api/config")).json()["data"]["config"]
    r = await c.put("/api/config", json=document | {"basic": {"commandPrefix": "!", "debug": False}})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["config"]["mcp"] == {"stdioAllowedCommands": []}

    # The effective list comes from the host only (tests/unit/test_mcp_allowlist.py covers its rules).
    monkeypatch.delenv("CHATBUS_MCP_STDIO_ALLOW", raising=False)
    assert load_allow_list(directory=str(tmp_path)).prefixes == ()
    (tmp_path / "mcp-stdio-allow.txt").write_text("# allowed\nuvx mcp-server-git\n")
    assert load_allow_list(directory=str(tmp_path)).prefixes == (("uvx", "mcp-server-git"),)


async def test_rotate_reencrypts_by_appending_events(stack: Stack, database: str, tmp_path: Path) -> None:
    previous = crypto.active()
    crypto.install(crypto.load(tmp_path, create=True))
    old_kid = crypto.active().current
    try:
        c = await stack.admin()
        async with FakeProvider("openai") as fake:
            assert (await c.post("/api/channels", json=channel_body(fake))).status_code == 201
            assert (await c.put("/api/bot/config", json={"token": BOT_TOKEN})).status_code == 200
            mcp = {"name": "m", "url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "mcp-secret-1"}, "enabled": False}
            assert (await c.post("/api/mcp/servers", json=mcp)).status_code == 201
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
            env |= {"CHATBUS_DATABASE_URL": database, "CHATBUS_DATA_DIR": str(tmp_path)}
            done = subprocess.run(
                [sys.executable, "-m", "chatbus", "secrets", "rotate"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert "re-encrypted 3 secret fields of 1 channels and 1 config secrets" in done.stdout, done.stdout
            assert "; 1 MCP servers" in done.stdout, done.stdout
            keyring = json.loads((tmp_path / crypto.KEYRING_FILE).read_text())
            assert len(keyring["keys"]) == 2 and keyring["current"] != old_kid
            assert (tmp_path / crypto.KEYRING_FILE).stat().st_mode & 0o777 == 0o600
            new_kid = keyring["current"]

            # The read tables hold only the new key's ciphertext; the log gained events, kept the old.
            async with stack.workers[0].pool.acquire() as conn:
                row = await conn.fetchval("SELECT c::text FROM channels c")
                config = await conn.fetchval("SELECT document::text FROM config_versions ORDER BY version DESC LIMIT 1")
                server = await conn.fetchval("SELECT config::text FROM mcp_servers")
                last = await conn.fetchrow(
                    "SELECT event_type, data::text AS data, metadata FROM events"
                    " WHERE stream_id = 'channel-secret' ORDER BY stream_version DESC LIMIT 1"
                )
            assert f"$enc:v1:{new_kid}:" in row and old_kid not in row
            assert f"$enc:v1:{new_kid}:" in config and old_kid not in config
            assert f"$enc:v1:{new_kid}:" in server and old_kid not in server
            assert last["event_type"] == "ChannelUpdated" and old_kid not in last["data"]
            assert_clear_of_secrets("after rotation", await dump(stack))

            # A running worker picks the new key up from the file; chat still authenticates.
            fake.script(reply("Rotated."))
            r = await c.post("/api/chat", json={"message": "hi"})
            assert r.status_code == 200, r.text
            assert_real_credentials(fake.last)
            r = await c.get("/api/channels/secret")
            assert r.json()["data"]["apiKey"] == "sk-****4242"
            # Replay reads the sealed values as they are: the rebuilt tables equal the live ones.
            assert (await check(stack.workers[0].pool, PROJECTIONS)).equal
            # Rotating again moves every secret to the next key.
            again = subprocess.run(
                [sys.executable, "-m", "chatbus", "secrets", "rotate"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert again.returncode == 0 and "3 secret fields" in again.stdout, again.stdout + again.stderr
    finally:
        crypto.install(previous)


async def test_no_key_is_a_clear_start_up_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crypto.ENV_KEY, raising=False)
    with pytest.raises(crypto.SecretKeyError, match="CHATBUS_SECRET_KEY"):
        crypto.load(tmp_path)
    monkeypatch.setenv(crypto.ENV_KEY, base64.b64encode(b"k" * 32).decode())
    ring = crypto.load(tmp_path)
    assert ring.open(ring.seal("x", "****")) == "x"
    monkeypatch.setenv(crypto.ENV_KEY, "short")
    with pytest.raises(crypto.SecretKeyError, match="32 bytes"):
        crypto.load(tmp_path)
