"""Command handlers of the presets domain: load state, call the pure deciders, return a Decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import msgspec

from bus.eventstore import (
    Decision,
    Handler,
    StreamAppend,
    event_from_struct,
    fold_cached,
    fold_stream,
    payload_of,
    remembered_row,
)
from schemas.envelope import CommandEnvelope
from schemas.errors import DomainError
from schemas.presets import (
    CopyPreset,
    CreatePreset,
    DeletePreset,
    ImportPresets,
    SetDefaultPreset,
    UpdatePreset,
)
from services.presets import domain, projection, queries
from services.presets.domain import DEFAULT_STREAM, DefaultState, PresetState, stream_id


async def load_preset(conn: asyncpg.Connection, preset_id: str) -> PresetState:
    return await fold_stream(conn, stream_id(preset_id), PresetState(preset_id), domain.evolve, domain.EVENTS)


async def decide_on(conn: asyncpg.Connection, preset_id: str, *, new: bool = False) -> PresetState:
    """The state of a preset the decision appends to: from the worker's stream cache when it has it
    (checked by the append's expected version); a create assumes a new stream (`new`)."""
    return await fold_cached(conn, stream_id(preset_id), PresetState(preset_id), domain.evolve, domain.EVENTS, new=new)


async def load_default(conn: asyncpg.Connection) -> DefaultState:
    return await fold_stream(conn, DEFAULT_STREAM, DefaultState(), domain.evolve_default, domain.EVENTS)


def _append(state: PresetState, events: Sequence[msgspec.Struct]) -> StreamAppend:
    return StreamAppend(stream_id(state.id), state.version, [event_from_struct(e) for e in events])


def _read_back(preset_id: str) -> Callable[[asyncpg.Connection], Awaitable[Any]]:
    async def after(conn: asyncpg.Connection) -> Any:
        # The row the inline projection just wrote, else read back (a decision that appended nothing).
        written = remembered_row(projection.written_key(preset_id))
        return queries.row_to_preset(written) if written is not None else await queries.get_preset(conn, preset_id)

    return after


async def create(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, CreatePreset)
    state = await decide_on(conn, cmd.id, new=True)
    events = domain.decide_create(state, cmd.fields, cmd.type)
    return Decision([_append(state, events)], after=_read_back(cmd.id))


async def update(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, UpdatePreset)
    state = await decide_on(conn, cmd.id)
    expected = cmd.expected_version if cmd.expected_version is not None else envelope.expected_version
    events = domain.decide_update(state, cmd.changes, expected)
    return Decision([_append(state, events)], after=_read_back(cmd.id))


async def delete(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, DeletePreset)
    state = await decide_on(conn, cmd.id)
    expected = cmd.expected_version if cmd.expected_version is not None else envelope.expected_version
    events = domain.decide_delete(state, expected)
    return Decision([_append(state, events)], result={"id": cmd.id, "deleted": True})


async def set_default(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, SetDefaultPreset)
    default = await load_default(conn)
    target = await load_preset(conn, cmd.id)
    previous = await load_preset(conn, default.preset_id) if default.preset_id else None
    versions = {DEFAULT_STREAM: default.version, stream_id(target.id): target.version}
    if previous is not None:
        versions[stream_id(previous.id)] = previous.version
    per_stream = domain.decide_set_default(default, target, previous)
    appends = [
        StreamAppend(sid, versions[sid], [event_from_struct(e) for e in events]) for sid, events in per_stream.items()
    ]
    return Decision(appends, after=_read_back(cmd.id))


async def copy(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, CopyPreset)
    fields = domain.copy_fields(await load_preset(conn, cmd.id), cmd.new_name)
    target = await load_preset(conn, cmd.new_id)
    events = domain.decide_create(target, fields, "user")
    return Decision([_append(target, events)], after=_read_back(cmd.new_id))


async def import_presets(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """All-or-nothing: every valid preset is written in one transaction; existing ones are skipped
    unless `overwrite`, and system presets are never overwritten."""
    cmd = payload_of(envelope, ImportPresets)
    appends: list[StreamAppend] = []
    imported: list[str] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(cmd.presets):
        doc = dict(raw)
        preset_id = str(doc.pop("id", "") or domain.derive_id(str(doc.get("name", ""))))
        if preset_id in seen:
            skipped.append({"id": preset_id, "reason": "duplicate id in the import"})
            continue
        seen.add(preset_id)
        try:
            state = await load_preset(conn, preset_id)
            if not state.exists:
                events = domain.decide_create(state, doc, "user")
            elif not cmd.overwrite:
                skipped.append({"id": preset_id, "reason": "exists"})
                continue
            elif state.type == "system":
                skipped.append({"id": preset_id, "reason": "system preset"})
                continue
            else:
                events = domain.decide_update(state, domain.validate_fields(doc), None)
        except DomainError as exc:
            raise DomainError(
                "VALIDATION_ERROR", f"preset #{index} ({preset_id}): {exc.message}", details=exc.details
            ) from exc
        if events:
            appends.append(_append(state, events))
        imported.append(preset_id)
    return Decision(appends, result={"imported": imported, "skipped": skipped})


HANDLERS: dict[str, Handler] = {
    "create": create,
    "update": update,
    "delete": delete,
    "set_default": set_default,
    "copy": copy,
    "import": import_presets,
}
