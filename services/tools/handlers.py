"""Command handlers of the tools settings (one stream, `tools-settings`) and of a call's record."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from bus.eventstore import Decision, Handler, StreamAppend, event_from_struct, fold_stream, payload_of
from schemas.envelope import CommandEnvelope
from schemas.tools import SetDangerous, ToggleCategory, ToggleTool, ToolCalled
from services.tools import domain
from services.tools.domain import SETTINGS_STREAM, SettingsState


async def load_settings(conn: asyncpg.Connection) -> SettingsState:
    return await fold_stream(conn, SETTINGS_STREAM, SettingsState(), domain.evolve, domain.EVENTS)


def _append(state: SettingsState, events: Sequence[msgspec.Struct]) -> list[StreamAppend]:
    return [StreamAppend(SETTINGS_STREAM, state.version, [event_from_struct(e) for e in events])] if events else []


async def toggle(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, ToggleTool)
    state = await load_settings(conn)
    events = domain.decide_toggle(state, cmd.name, cmd.enabled)
    after = domain.evolve(state, events[0]) if events else state
    return Decision(
        _append(state, events),
        result={"name": cmd.name, "enabled": after.enabled.get(cmd.name, True)},
        version=state.version,
    )


async def toggle_category(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, ToggleCategory)
    state = await load_settings(conn)
    events = domain.decide_toggle_category(state, cmd.category, cmd.enabled)
    after = domain.evolve(state, events[0]) if events else state
    enabled = after.categories.get(cmd.category, True)
    return Decision(
        _append(state, events), result={"category": cmd.category, "enabled": enabled}, version=state.version
    )


def set_all(names: list[str], enabled: bool) -> Handler:
    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        state = await load_settings(conn)
        events = domain.decide_set_all(state, names, enabled)
        return Decision(
            _append(state, events), result={"enabled": enabled, "changed": len(events)}, version=state.version
        )

    return handler


def set_dangerous(defaults: dict[str, bool]) -> Handler:
    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        cmd = payload_of(envelope, SetDangerous)
        state = await load_settings(conn)
        events = domain.decide_dangerous(state, cmd, defaults)
        final = functools.reduce(domain.evolve, events, state)
        flagged = sorted(
            n for n in set(defaults) | set(final.dangerous) if final.dangerous.get(n, defaults.get(n, False))
        )
        return Decision(_append(state, events), result={"tools": flagged}, version=state.version)

    return handler


def record_call(event: ToolCalled, result: dict[str, Any]) -> Handler:
    """The call's own stream, at version 0: a second record of the same command id cannot commit."""

    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        return Decision(
            [StreamAppend(domain.call_stream(str(envelope.command_id)), 0, [event_from_struct(event)])], result=result
        )

    return handler


HANDLERS: dict[str, Handler] = {"toggle": toggle, "toggle_category": toggle_category}
