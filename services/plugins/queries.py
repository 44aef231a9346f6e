"""Reads of the plugins tables for the edge, the runtime and the pipeline, and the blob store."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

from services.plugins import commands
from services.tools.registry import mcp_tool_name

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_COLUMNS = """name, version, description, author, digest, size, manifest, enabled, enabled_seq, config,
    revision, stream_version, installed_at, updated_at"""


async def put_blob(pool: Conn, digest: str, data: bytes) -> None:
    """Store an archive under its sha256 (idempotent: the same bytes are the same row)."""
    await pool.execute(
        "INSERT INTO plugin_blobs (digest, data, size) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
        digest,
        data,
        len(data),
    )


async def get_blob(pool: Conn, digest: str) -> bytes | None:
    data = await pool.fetchval("SELECT data FROM plugin_blobs WHERE digest = $1", digest)
    return bytes(data) if data is not None else None


async def list_plugins(pool: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(f"SELECT {_COLUMNS} FROM plugins ORDER BY name")]


async def get_plugin(pool: Conn, name: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM plugins WHERE name = $1", name)
    return dict(row) if row else None


async def enabled_plugins(pool: Conn) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM plugins WHERE enabled ORDER BY enabled_seq, name")
    return [dict(r) for r in rows]


async def overrides(pool: Conn) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch("SELECT handler_full_name, enabled, new_name, aliases FROM command_overrides")
    return {r["handler_full_name"]: dict(r) for r in rows}


async def command_handlers(pool: Conn) -> list[commands.Handler]:
    """The registry as every instance sees it: built-ins, enabled plugins in enabling order, overrides."""
    plugins = [commands.PluginCommands(p["name"], p["manifest"]) for p in await enabled_plugins(pool)]
    return commands.handlers(plugins, await overrides(pool), mcp_tool_name)
