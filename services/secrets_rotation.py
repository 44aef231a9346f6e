"""`chatbus secrets rotate`: every stored secret sealed again under the keyring's current key, by
appending events (one per channel / config document / MCP server / plugin config whose secrets were
under an older key or still plain).
Events already in the log keep their ciphertext; the keyring keeps the old keys for them."""

from __future__ import annotations

import uuid
from typing import Any

from bus.eventstore import EventStore
from schemas.envelope import Actor, CommandEnvelope
from services.channels import handlers as channel_handlers
from services.config import handlers as config_handlers
from services.plugins import handlers as plugin_handlers
from services.tools.mcp import store as mcp_store

ACTOR = Actor("system:secrets-rotate")


def _envelope(kind: str, payload: dict[str, Any]) -> CommandEnvelope:
    return CommandEnvelope(command_id=uuid.uuid4(), type=kind, actor=ACTOR, payload=payload)


async def reseal_all(store: EventStore) -> dict[str, Any]:
    """What was sealed again: `{"channels": {id: [fields]}, "config": [paths], "mcpServers": [names],
    "plugins": [names]}`.
    Raises on a refusal."""
    channel_ids = [r["id"] for r in await store.pool.fetch("SELECT id FROM channels ORDER BY id")]
    channels: dict[str, list[str]] = {}
    for channel_id in channel_ids:
        reply = await store.execute(_envelope("channels.reseal", {"id": channel_id}), channel_handlers.reseal)
        if not reply.ok:
            raise RuntimeError(f"channel {channel_id}: {reply.error}")
        if reply.result and reply.result.get("resealed"):
            channels[channel_id] = reply.result["resealed"]
    reply = await store.execute(_envelope("config.reseal", {}), config_handlers.reseal)
    if not reply.ok:
        raise RuntimeError(f"config: {reply.error}")
    resealed = (reply.result or {}).get("resealed", [])
    servers = []
    for name in [r["name"] for r in await store.pool.fetch("SELECT name FROM mcp_servers ORDER BY name")]:
        reply = await store.execute(_envelope("tools.mcp_reseal", {"name": name}), mcp_store.reseal)
        if not reply.ok:
            raise RuntimeError(f"MCP server {name}: {reply.error}")
        if reply.result and reply.result.get("resealed"):
            servers.append(name)
    plugins = []
    for name in [r["name"] for r in await store.pool.fetch("SELECT name FROM plugins ORDER BY name")]:
        reply = await store.execute(_envelope("plugins.reseal", {"name": name}), plugin_handlers.reseal)
        if not reply.ok:
            raise RuntimeError(f"plugin {name}: {reply.error}")
        if reply.result and reply.result.get("resealed"):
            plugins.append(name)
    return {"channels": channels, "config": resealed, "mcpServers": servers, "plugins": plugins}
