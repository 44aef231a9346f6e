"""Command handlers of the channels domain (cmd.channels.*)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import msgspec

from bus.eventstore import Decision, Handler, StreamAppend, event_from_struct, fold_stream, payload_of
from schemas.channels import CreateChannel, DeleteChannel, RecordChannelHealth, UpdateChannel
from schemas.envelope import CommandEnvelope
from schemas.secrets import mask
from services.channels import domain, queries
from services.channels.domain import ChannelState, stream_id


async def load_channel(conn: asyncpg.Connection, channel_id: str) -> ChannelState:
    return await fold_stream(conn, stream_id(channel_id), ChannelState(channel_id), domain.evolve, domain.EVENTS)


def _append(state: ChannelState, events: Sequence[msgspec.Struct]) -> list[StreamAppend]:
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
    events = domain.decide_update(state, cmd.changes, expected)
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


HANDLERS: dict[str, Handler] = {"create": create, "update": update, "delete": delete, "record_health": record_health}
