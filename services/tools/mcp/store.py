"""MCP server configs as events of the tools domain: one stream per server (`mcp-server-<name>`),
the `mcp_servers` read table, and the reads of it.

Secrets: every `env` and `headers` value, and a password in the URL, are sealed (bus/crypto.py)
before the config becomes an event, so the event log, the read table and JetStream hold ciphertext
only. The seal's hint is the masked form, so the edge masks a read without holding the key; only a
tools worker opens them, to start the server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from bus import crypto
from bus.eventstore import Decision, Handler, RecordedEvent, StreamAppend, event_from_struct, fold_stream, payload_of
from bus.projections import Projection
from schemas.envelope import CommandEnvelope
from schemas.errors import DomainError
from schemas.mcp import (
    McpImport,
    McpServerAdded,
    McpServerBody,
    McpServerConfig,
    McpServerRef,
    McpServerRemoved,
    McpServerUpdated,
    keep_masked_secrets,
    mask_url,
    normalize_server,
    parse_import,
)
from schemas.secrets import has_url_password, hint_of, is_sealed, mask_value
from services.tools.domain import EVENTS

log = logging.getLogger("chatbus.mcp")

EVENT_TYPES = (McpServerAdded, McpServerUpdated, McpServerRemoved)
STREAM_PREFIX = "mcp-server-"
TRANSPORT_FIELDS = frozenset({"type", "command", "args", "env", "cwd", "url", "headers", "package", "transport"})

Check = Callable[[McpServerConfig], str | None]


def stream(name: str) -> str:
    return f"{STREAM_PREFIX}{name}"


# ---- sealing -----------------------------------------------------------------------------------


def seal_config(config: McpServerConfig) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(config)
    doc["env"] = {k: crypto.seal(v, str(mask_value(v))) for k, v in config.env.items()}
    doc["headers"] = {k: crypto.seal(v, str(mask_value(v))) for k, v in config.headers.items()}
    if config.url and has_url_password(config.url):
        doc["url"] = crypto.seal(config.url, str(mask_url(config.url)))
    return doc


def open_config(sealed: Mapping[str, Any]) -> McpServerConfig:
    doc = dict(sealed)
    doc["env"] = {k: crypto.reveal(v) for k, v in (doc.get("env") or {}).items()}
    doc["headers"] = {k: crypto.reveal(v) for k, v in (doc.get("headers") or {}).items()}
    if is_sealed(doc.get("url")):
        doc["url"] = crypto.reveal(doc["url"])
    return msgspec.convert(doc, McpServerConfig)


def read_view(sealed: Mapping[str, Any]) -> dict[str, Any]:
    """The stored config as a read shows it: every secret as its masked hint."""
    doc = dict(sealed)
    doc["env"] = {k: hint_of(v) if is_sealed(v) else mask_value(v) for k, v in (doc.get("env") or {}).items()}
    doc["headers"] = {k: hint_of(v) if is_sealed(v) else mask_value(v) for k, v in (doc.get("headers") or {}).items()}
    url = doc.get("url")
    doc["url"] = hint_of(url) if is_sealed(url) else mask_url(url)
    return doc


# ---- the domain: one stream per server ---------------------------------------------------------


@dataclass(frozen=True)
class ServerState:
    version: int = 0
    config: dict[str, Any] | None = None  # sealed; None: never added, or removed


def evolve(state: ServerState, event: msgspec.Struct) -> ServerState:
    if isinstance(event, McpServerAdded | McpServerUpdated):
        return ServerState(state.version + 1, event.config)
    return ServerState(state.version + 1, None)


async def load(conn: asyncpg.Connection, name: str) -> ServerState:
    return await fold_stream(conn, stream(name), ServerState(), evolve, EVENTS)


def _refuse(check: Check, config: McpServerConfig) -> None:
    """A stdio command outside the allow-list is refused before anything is stored."""
    why = check(config)
    if why is not None:
        raise DomainError("INVALID_ARGS", f"stdio command not allowed: {why}")


def _flat(body: Mapping[str, Any]) -> dict[str, Any]:
    nested = body.get("config")
    if isinstance(nested, Mapping):
        return {**{k: v for k, v in body.items() if k != "config"}, **nested}
    return dict(body)


def merged_update(current: McpServerConfig, body: Mapping[str, Any], name: str) -> McpServerConfig:
    """A PUT may carry only what changes (`{enabled: false}`); a new transport replaces the old one's
    fields; a masked secret sent back from a read means "unchanged"."""
    flat = _flat(body)
    base: dict[str, Any] = msgspec.to_builtins(current)
    if TRANSPORT_FIELDS & flat.keys():
        base = {k: v for k, v in base.items() if k not in TRANSPORT_FIELDS}
    incoming = normalize_server({**base, **flat}, name=name)
    return keep_masked_secrets(current, incoming)


def handlers(check: Check) -> dict[str, Handler]:
    async def add(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        cmd = payload_of(envelope, McpServerBody)
        config = normalize_server(cmd.body, name=cmd.name)
        _refuse(check, config)
        state = await load(conn, config.name)
        if state.config is not None:
            raise DomainError("CONFLICT", f"MCP server '{config.name}' already exists")
        sealed = seal_config(config)
        event = McpServerAdded(name=config.name, config=sealed)
        return Decision(
            [StreamAppend(stream(config.name), state.version, [event_from_struct(event)])], read_view(sealed)
        )

    async def update(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        cmd = payload_of(envelope, McpServerBody)
        name = cmd.name or str(cmd.body.get("name") or "")
        state = await load(conn, name) if name else ServerState()
        if state.config is None:
            raise DomainError("SERVER_NOT_FOUND", f"MCP server '{name}' not found")
        current = open_config(state.config)
        config = merged_update(current, cmd.body, name)
        _refuse(check, config)
        if config == current:
            return Decision([], read_view(state.config), version=state.version)
        sealed = seal_config(config)
        event = McpServerUpdated(name=name, config=sealed)
        return Decision([StreamAppend(stream(name), state.version, [event_from_struct(event)])], read_view(sealed))

    async def remove(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        name = payload_of(envelope, McpServerRef).name
        state = await load(conn, name)
        if state.config is None:
            raise DomainError("SERVER_NOT_FOUND", f"MCP server '{name}' not found")
        event = McpServerRemoved(name=name)
        return Decision([StreamAppend(stream(name), state.version, [event_from_struct(event)])], {"name": name})

    async def import_(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        """Claude Desktop's document: each entry added, or replacing a server of that name; a refused
        entry is one of `errors`, never a failed import."""
        parsed = parse_import(payload_of(envelope, McpImport).document)
        appends: list[StreamAppend] = []
        errors = list(parsed.errors)
        imported: list[str] = []
        for config in parsed.configs:
            why = check(config)
            if why is not None:
                errors.append({"name": config.name, "error": f"stdio command not allowed: {why}"})
                continue
            state = await load(conn, config.name)
            sealed = seal_config(config)
            event: msgspec.Struct = (
                McpServerAdded(name=config.name, config=sealed)
                if state.config is None
                else McpServerUpdated(name=config.name, config=sealed)
            )
            if state.config is not None and open_config(state.config) == config:
                imported.append(config.name)
                continue
            appends.append(StreamAppend(stream(config.name), state.version, [event_from_struct(event)]))
            imported.append(config.name)
        result = {"success": len(imported), "failed": len(errors), "total": parsed.total, "errors": errors}
        return Decision(appends, {**result, "imported": imported})

    return {"mcp_add": add, "mcp_update": update, "mcp_remove": remove, "mcp_import": import_}


def stale_secrets(sealed: Mapping[str, Any]) -> bool:
    """Any secret not sealed under the current key (an older key, or plaintext from before)."""
    ring = crypto.active()
    values = [*(sealed.get("env") or {}).values(), *(sealed.get("headers") or {}).values()]
    if has_url_password(sealed.get("url")) or is_sealed(sealed.get("url")):
        values.append(sealed["url"])
    return any(not ring.is_current(v) for v in values)


async def reseal(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """`chatbus secrets rotate`: the server's secrets sealed again under the current key (one event)."""
    name = payload_of(envelope, McpServerRef).name
    state = await load(conn, name)
    if state.config is None or not stale_secrets(state.config):
        return Decision([], {"name": name, "resealed": False}, version=state.version)
    event = McpServerUpdated(name=name, config=seal_config(open_config(state.config)))
    return Decision(
        [StreamAppend(stream(name), state.version, [event_from_struct(event)])], {"name": name, "resealed": True}
    )


# ---- the read table ----------------------------------------------------------------------------


async def _put(conn: asyncpg.Connection, recorded: RecordedEvent, event: McpServerAdded | McpServerUpdated) -> None:
    await conn.execute(
        """INSERT INTO mcp_servers (name, config, position, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
           ON CONFLICT (name) DO UPDATE SET config = EXCLUDED.config, position = EXCLUDED.position,
                                            updated_at = EXCLUDED.updated_at""",
        event.name,
        event.config,
        recorded.global_position,
        recorded.recorded_at,
    )


async def _removed(conn: asyncpg.Connection, recorded: RecordedEvent, event: McpServerRemoved) -> None:
    await conn.execute("DELETE FROM mcp_servers WHERE name = $1", event.name)


PROJECTION = Projection(
    name="mcp_servers",
    tables=("mcp_servers",),
    handlers={McpServerAdded: _put, McpServerUpdated: _put, McpServerRemoved: _removed},
    catalog=EVENTS,
)


# ---- reads -------------------------------------------------------------------------------------


async def stored(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every server's sealed config, by name."""
    rows = await conn.fetch("SELECT config FROM mcp_servers ORDER BY name")
    return [dict(r["config"]) for r in rows]


async def stored_one(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT config FROM mcp_servers WHERE name = $1", name)
    return dict(row["config"]) if row else None


async def load_configs(conn: asyncpg.Connection | asyncpg.Pool) -> list[McpServerConfig]:
    """Every server, secrets opened (tools workers only). One that does not open is skipped and
    logged: a key problem fails that server, not every other."""
    out = []
    for doc in await stored(conn):
        try:
            out.append(open_config(doc))
        except (crypto.SecretKeyError, msgspec.ValidationError, ValueError) as exc:
            log.warning("MCP server %s cannot be started: %s", doc.get("name"), exc)
    return out
