"""Command handlers of the plugins domain (cmd.plugins.*): plugin lifecycle and the command registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import asyncpg
import msgspec
from msgspec.structs import replace as replace_struct

from bus import crypto
from bus.eventstore import Decision, Handler, StreamAppend, event_from_struct, fold_stream, payload_of, stream_head
from schemas.envelope import CommandEnvelope
from schemas.errors import DomainError
from schemas.plugins import (
    ConfigurePlugin,
    InstallPlugin,
    Manifest,
    PluginConfigured,
    PluginRef,
    RenameCommand,
    ResolveConflict,
    ToggleCommand,
)
from schemas.secrets import keep_masked, refuse_sealed_input
from services.plugins import commands, domain, queries
from services.plugins.domain import PluginState


async def load(conn: asyncpg.Connection, name: str) -> PluginState:
    return await fold_stream(conn, domain.plugin_stream(name), PluginState(name), domain.evolve, domain.EVENTS)


def _append(state: PluginState, events: Sequence[msgspec.Struct]) -> list[StreamAppend]:
    stream = domain.plugin_stream(state.name)
    return [StreamAppend(stream, state.version, [event_from_struct(e) for e in events])] if events else []


def _read_back(name: str) -> Callable[[asyncpg.Connection], Awaitable[Any]]:
    async def after(conn: asyncpg.Connection) -> Any:
        return await queries.get_plugin(conn, name)

    return after


async def install(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, InstallPlugin)
    manifest = msgspec.convert(cmd.manifest, Manifest)  # checked by the edge; typed again here
    if await conn.fetchval("SELECT 1 FROM plugin_blobs WHERE digest = $1", cmd.digest) is None:
        raise DomainError("VALIDATION_ERROR", "no stored archive has this digest")
    state = await load(conn, manifest.name)
    events = domain.decide_install(state, cmd.digest, cmd.size, cmd.manifest, manifest.version, cmd.overwrite)
    return Decision(_append(state, events), version=state.version, after=_read_back(manifest.name))


def _simple(decide: Callable[[PluginState], list[Any]]) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        cmd = payload_of(envelope, PluginRef)
        state = await load(conn, cmd.name)
        return Decision(_append(state, decide(state)), version=state.version, after=_read_back(cmd.name))

    return handle


async def remove(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, PluginRef)
    state = await load(conn, cmd.name)
    return Decision(_append(state, domain.decide_remove(state)), result={"name": cmd.name, "deleted": True})


def _opened(state: PluginState, what: str) -> PluginState:
    try:
        return replace(state, config=crypto.open_document(state.config))
    except crypto.SecretKeyError as exc:
        raise DomainError("INTERNAL_ERROR", f"plugin '{state.name}' {what}: {exc}; restore that key") from exc


async def configure(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """Secrets (secret-named keys, the schema's write-only properties) are sealed before the event is
    written; a masked value sent back means "unchanged"; the domain validates the plaintext."""
    cmd = payload_of(envelope, ConfigurePlugin)
    refuse_sealed_input(cmd.config, "config", code="VALIDATION_ERROR")
    state = await load(conn, cmd.name)
    merged = keep_masked(state.config, cmd.config)
    opened = _opened(state, "config")
    events = domain.decide_configure(opened, _opened(replace(state, config=merged), "config").config)
    also = domain.secret_paths(state.manifest.get("configSchema"))
    sealed = [replace_struct(e, config=crypto.seal_document(merged, also)) for e in events]
    return Decision(_append(state, sealed), version=state.version, after=_read_back(cmd.name))


async def reseal(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """`chatbus secrets rotate`: the plugin's config again, its secrets sealed under the current key."""
    cmd = payload_of(envelope, PluginRef)
    state = await load(conn, cmd.name)
    also = domain.secret_paths(state.manifest.get("configSchema"))
    try:
        config, paths = crypto.reseal_document(state.config, also)
    except crypto.SecretKeyError as exc:
        raise DomainError("INTERNAL_ERROR", f"plugin '{cmd.name}' config: {exc}; restore that key") from exc
    if not state.exists or not paths:
        return Decision([], result={"resealed": []}, version=state.version)
    event = PluginConfigured(name=state.name, config=config)
    return Decision(_append(state, [event]), result={"resealed": paths})


async def _registry_append(conn: asyncpg.Connection, events: list[Any]) -> Decision:
    # One stream for every registry decision: two admins renaming at once serialise on its version.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('chatbus.commands'))")
    head = await stream_head(conn, domain.COMMANDS_STREAM)
    version = head[0] if head else 0
    appends = [StreamAppend(domain.COMMANDS_STREAM, version, [event_from_struct(e) for e in events])] if events else []
    return Decision(appends, result={"ok": True, "changes": len(events)}, version=version)


async def toggle_command(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, ToggleCommand)
    handlers = await queries.command_handlers(conn)
    return await _registry_append(conn, commands.decide_toggle(handlers, cmd.handler_full_name, cmd.enabled))


async def rename_command(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, RenameCommand)
    handlers = await queries.command_handlers(conn)
    events = commands.decide_rename(handlers, cmd.handler_full_name, cmd.new_name, cmd.aliases)
    return await _registry_append(conn, events)


async def resolve_conflict(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, ResolveConflict)
    handlers = await queries.command_handlers(conn)
    events = commands.decide_resolve(handlers, cmd.conflict_key, cmd.resolution_strategy, cmd.keep_handler_full_name)
    return await _registry_append(conn, events)


HANDLERS: dict[str, Handler] = {
    "install": install,
    "enable": _simple(lambda s: domain.decide_enable(s, True)),
    "disable": _simple(lambda s: domain.decide_enable(s, False)),
    "reload": _simple(domain.decide_reload),
    "remove": remove,
    "configure": configure,
    "toggle_command": toggle_command,
    "rename_command": rename_command,
    "resolve_conflict": resolve_conflict,
}
