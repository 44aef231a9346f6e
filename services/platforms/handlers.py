"""Command handlers of the platforms domain (cmd.platforms.*). The access token leaves the worker only
sealed (event log, read table, JetStream); the rules see it in plaintext."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import asyncpg
import msgspec

from bus import crypto
from bus.eventstore import Decision, Handler, StreamAppend, event_from_struct, fold_stream, payload_of
from schemas.envelope import CommandEnvelope
from schemas.errors import DomainError
from schemas.platforms import (
    AuthenticateBot,
    CreatePlatform,
    DeletePlatform,
    PlatformCreated,
    PlatformId,
    PlatformUpdated,
    UpdatePlatform,
)
from services.platforms import domain, queries
from services.platforms.domain import PlatformState


def _seal_config(fields: dict[str, Any]) -> dict[str, Any]:
    config = fields.get("config")
    if not isinstance(config, dict) or not config.get("accessToken"):
        return fields
    token = str(config["accessToken"])
    hint = f"****{token[-4:]}" if len(token) > 8 else "****"
    return {**fields, "config": {**config, "accessToken": crypto.seal(token, hint)}}


def _open_config(fields: dict[str, Any]) -> dict[str, Any]:
    config = fields.get("config")
    if not isinstance(config, dict) or not config.get("accessToken"):
        return fields
    return {**fields, "config": {**config, "accessToken": crypto.reveal(str(config["accessToken"]))}}


def _sealed(event: msgspec.Struct) -> msgspec.Struct:
    if isinstance(event, PlatformCreated):
        return PlatformCreated(id=event.id, fields=_seal_config(event.fields))
    if isinstance(event, PlatformUpdated):
        return PlatformUpdated(id=event.id, changes=_seal_config(event.changes))
    return event


def _check_id(platform_id: str) -> str:
    try:
        return msgspec.convert(platform_id, PlatformId)
    except msgspec.ValidationError as exc:
        raise DomainError("VALIDATION_ERROR", "id must be 1..64 characters of [A-Za-z0-9_-]") from exc


async def load(conn: asyncpg.Connection, platform_id: str) -> PlatformState:
    state = await fold_stream(
        conn, domain.platform_stream(platform_id), PlatformState(platform_id), domain.evolve, domain.EVENTS
    )
    if not state.exists:
        return state
    try:
        return replace(state, fields=_open_config(state.fields))
    except crypto.SecretKeyError as exc:
        raise DomainError("INTERNAL_ERROR", f"platform '{platform_id}': {exc}") from exc


def _append(state: PlatformState, events: Sequence[msgspec.Struct]) -> list[StreamAppend]:
    stream = domain.platform_stream(state.id)
    return [StreamAppend(stream, state.version, [event_from_struct(_sealed(e)) for e in events])] if events else []


def _read_back(platform_id: str) -> Callable[[asyncpg.Connection], Awaitable[Any]]:
    async def after(conn: asyncpg.Connection) -> Any:
        return await queries.get_platform(conn, platform_id)

    return after


async def _self_ids(conn: asyncpg.Connection, but: str) -> dict[str, str]:
    return {pid: sid for pid, sid in (await queries.self_ids(conn)).items() if pid != but}


async def create(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, CreatePlatform)
    state = await load(conn, _check_id(cmd.id))
    events = domain.decide_create(state, cmd.body, await _self_ids(conn, cmd.id))
    return Decision(_append(state, events), version=state.version, after=_read_back(cmd.id))


async def update(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, UpdatePlatform)
    state = await load(conn, _check_id(cmd.id))
    expected = cmd.expected_version if cmd.expected_version is not None else envelope.expected_version
    events = domain.decide_update(state, cmd.body, expected, await _self_ids(conn, cmd.id))
    return Decision(_append(state, events), version=state.version, after=_read_back(cmd.id))


async def delete(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, DeletePlatform)
    state = await load(conn, _check_id(cmd.id))
    return Decision(_append(state, domain.decide_delete(state)), result={"id": cmd.id, "deleted": True})


async def authenticate(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """The edge asks before it accepts a bot: the token is compared here, where the key is."""
    cmd = payload_of(envelope, AuthenticateBot)
    candidates = [(pid, _open_config(fields)) for pid, fields in await queries.onebot_candidates(conn, cmd.self_id)]
    platform_id = domain.pick_platform(candidates, cmd.self_id, cmd.token)
    if platform_id is None:
        named = domain.refused_platform(candidates, cmd.self_id)
        details = [{"platformId": named}] if named else None  # the edge marks that platform `error`
        raise DomainError("INVALID_TOKEN", "no enabled platform accepts this bot with this token", details=details)
    return Decision([], result={"platformId": platform_id})


HANDLERS: dict[str, Handler] = {"create": create, "update": update, "delete": delete, "authenticate": authenticate}
