"""Command handlers of the config domain."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from bus import crypto
from bus.eventstore import Decision, EventStore, Handler, StreamAppend, event_from_struct, load_last_event, payload_of
from schemas.config import ConfigChanged, ConfigEvent, RollbackConfig, UpdateConfig
from schemas.envelope import Actor, CommandEnvelope, CommandReply
from schemas.errors import DomainError
from schemas.secrets import mask, refuse_sealed_input
from services.config import domain, queries
from services.config.domain import STREAM, ConfigState


async def load_config(conn: asyncpg.Connection) -> ConfigState:
    """Every config event carries the whole document: the last one is the state."""
    last = await load_last_event(conn, STREAM)
    if last is None:
        return ConfigState()
    return ConfigState(last.data["document"], last.stream_version)


def _result(document: dict[str, Any], version: int, paths: list[str]) -> dict[str, Any]:
    return {"config": mask(document), "version": version, "updated": paths}


def _decision(state: ConfigState, events: list[ConfigEvent]) -> Decision:
    if not events:
        return Decision([], result=_result(state.document, state.version, []), version=state.version)
    event = events[0]
    event = msgspec.structs.replace(event, document=crypto.seal_document(event.document))
    events = [event, *events[1:]]
    append = StreamAppend(STREAM, state.version, [event_from_struct(e) for e in events])
    return Decision([append], result=_result(event.document, state.version + 1, event.paths))


async def update(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, UpdateConfig)
    refuse_sealed_input(cmd.patch)
    state = await load_config(conn)
    expected = cmd.expected_version if cmd.expected_version is not None else envelope.expected_version
    return _decision(state, domain.decide_update(state, cmd.patch, expected))


async def rollback(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, RollbackConfig)
    state = await load_config(conn)
    if cmd.version >= state.version and cmd.version != 0:
        raise DomainError(
            "VALIDATION_ERROR", f"version {cmd.version} is not an earlier version (current {state.version})"
        )
    target = await queries.at_version(conn, cmd.version)
    if target is None:
        raise DomainError("NOT_FOUND", f"config version {cmd.version} not found")
    return _decision(state, domain.decide_rollback(state, target))


async def reseal(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """`chatbus secrets rotate`: the document again, its secrets sealed under the current key."""
    state = await load_config(conn)
    try:
        document, paths = crypto.reseal_document(state.document)
    except crypto.SecretKeyError as exc:
        raise DomainError("INTERNAL_ERROR", f"config: {exc}; restore that key to the keyring") from exc
    if not paths:
        return Decision([], result={"resealed": []}, version=state.version)
    append = StreamAppend(STREAM, state.version, [event_from_struct(ConfigChanged(document=document, paths=paths))])
    return Decision([append], result={"resealed": paths})


HANDLERS: dict[str, Handler] = {"update": update, "rollback": rollback}


async def set_config(store: EventStore, patch: dict[str, Any], *, actor: str = "system") -> CommandReply:
    """Apply a config change without the bus (bootstrap, CLI and test set-up)."""
    envelope = CommandEnvelope(
        command_id=uuid.uuid4(), type="config.update", actor=Actor(actor), payload={"patch": patch}
    )
    return await store.execute(envelope, update)
