"""Command handlers of the channels domain (cmd.channels.*)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import asyncpg
import msgspec

from bus import crypto
from bus.eventstore import Decision, Handler, StreamAppend, event_from_struct, fold_stream, payload_of
from schemas.channels import (
    ChannelCreated,
    ChannelUpdated,
    CreateChannel,
    DeleteChannel,
    RecordChannelHealth,
    ResealChannel,
    UpdateChannel,
)
from schemas.envelope import CommandEnvelope
from schemas.errors import DomainError
from schemas.secrets import mask
from services.channels import domain, queries
from services.channels.domain import ChannelState, stream_id
from services.channels.secrets import seal_fields, stale_fields, unseal_fields


async def load_channel(conn: asyncpg.Connection, channel_id: str) -> ChannelState:
    return await fold_stream(conn, stream_id(channel_id), ChannelState(channel_id), domain.evolve, domain.EVENTS)


def _plain(state: ChannelState) -> ChannelState:
    """The state as the domain rules see it: secrets opened (compared, merged, validated)."""
    if not state.exists:
        return state
    try:
        return replace(state, fields=unseal_fields(state.fields))
    except crypto.SecretKeyError as exc:
        raise DomainError("INTERNAL_ERROR", f"channel '{state.id}': {exc}; restore that key to the keyring") from exc


def _sealed(event: msgspec.Struct) -> msgspec.Struct:
    """Secrets leave the worker only sealed: in the event log, the read table and on JetStream."""
    if isinstance(event, ChannelCreated):
        return ChannelCreated(id=event.id, fields=seal_fields(event.fields))
    if isinstance(event, ChannelUpdated):
        return ChannelUpdated(changes=seal_fields(event.changes))
    return event


def _append(state: ChannelState, events: Sequence[msgspec.Struct]) -> list[StreamAppend]:
    events = [_sealed(e) for e in events]
    return [StreamAppend(stream_id(state.id), state.version, [event_from_struct(e) for e in events])] if events else []


def _read_back(channel_id: str) -> Callable[[asyncpg.Connection], Awaitable[Any]]:
    async def after(conn: asyncpg.Connection) -> Any:
        channel = await queries.get_channel(conn, channel_id)
        return mask(queries.to_builtins(channel)) if channel else None

    return after


async def create(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, CreateChannel)
    state = await load_channel(conn, cmd.id)
    events = domain.decide_create(state, cmd.fields)
    return Decision(_append(state, events), version=state.version, after=_read_back(cmd.id))


async def update(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, UpdateChannel)
    state = await load_channel(conn, cmd.id)
    expected = cmd.expected_version if cmd.expected_version is not None else envelope.expected_version
    events = domain.decide_update(_plain(state), cmd.changes, expected)
    return Decision(_append(state, events), version=state.version, after=_read_back(cmd.id))


async def delete(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, DeleteChannel)
    state = await load_channel(conn, cmd.id)
    return Decision(_append(state, domain.decide_delete(state)), result={"id": cmd.id, "deleted": True})


async def record_health(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, RecordChannelHealth)
    state = await load_channel(conn, cmd.id)
    events = domain.decide_health(
        state, ok=cmd.ok, error=cmd.error, retry_after=cmd.retry_after, tested=cmd.tested, now=time.time()
    )
    return Decision(_append(state, events), version=state.version, after=_read_back(cmd.id))


async def reseal(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """`chatbus secrets rotate`: the secret fields not sealed under the current key, sealed again
    (a ChannelUpdated with the same values), so the read table and the latest events hold the new
    key's ciphertext. Older events keep theirs; the keyring keeps the old keys to replay them."""
    cmd = payload_of(envelope, ResealChannel)
    state = await load_channel(conn, cmd.id)
    stale = stale_fields(state.fields) if state.exists else []
    if not stale:
        return Decision([], result={"id": cmd.id, "resealed": []})
    plain = _plain(state).fields
    events: list[msgspec.Struct] = [ChannelUpdated(changes={f: plain[f] for f in stale})]
    return Decision(_append(state, events), result={"id": cmd.id, "resealed": stale})


HANDLERS: dict[str, Handler] = {"create": create, "update": update, "delete": delete, "record_health": record_health}
