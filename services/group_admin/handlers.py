"""Command handlers of the group admin domain (cmd.group_admin.*)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import msgspec

from bus.eventstore import Decision, Handler, StreamAppend, event_from_struct, fold_stream, payload_of
from schemas.envelope import CommandEnvelope
from schemas.errors import DomainError
from schemas.group_admin import DeleteGroupConfig, IssueGroupCode, RedeemGroupCode, UpdateGroupConfig
from services.channels import queries as channel_queries
from services.group_admin import domain, queries
from services.group_admin.domain import CodeState, GroupState
from services.presets import queries as preset_queries

# The wall clock codes are issued and redeemed by (the deciders take `now`); tests replace it.
clock: Callable[[], float] = time.time


async def load_group(conn: asyncpg.Connection, group_id: str) -> GroupState:
    return await fold_stream(conn, domain.group_stream(group_id), GroupState(group_id), domain.evolve, domain.EVENTS)


def _append(stream: str, version: int, events: Sequence[msgspec.Struct]) -> list[StreamAppend]:
    return [StreamAppend(stream, version, [event_from_struct(e) for e in events])] if events else []


async def update(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, UpdateGroupConfig)
    state = await load_group(conn, cmd.group_id)
    expected = cmd.expected_version if cmd.expected_version is not None else envelope.expected_version
    events = domain.decide_update(state, cmd.patch, expected)
    await _check_references(conn, cmd.patch)

    async def after(c: asyncpg.Connection) -> Any:
        return await queries.get_group(c, cmd.group_id)

    return Decision(_append(domain.group_stream(cmd.group_id), state.version, events), after=after)


async def _check_references(conn: asyncpg.Connection, patch: dict[str, Any]) -> None:
    """A preset or channel the update names must exist (only those it sets now: one deleted since an
    earlier update does not block unrelated changes)."""
    checks = (
        ("presetId", preset_queries.get_preset, "PRESET_NOT_FOUND"),
        ("channelId", channel_queries.get_channel, "CHANNEL_NOT_FOUND"),
    )
    for field, lookup, reason in checks:
        value = patch.get(field)
        if isinstance(value, str) and await lookup(conn, value) is None:
            raise DomainError(
                "INVALID_CONFIG",
                f"invalid group config at '{field}': no such {field.removesuffix('Id')} '{value}'",
                details=[{"path": field, "reason": reason}],
            )


async def delete(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, DeleteGroupConfig)
    state = await load_group(conn, cmd.group_id)
    events = domain.decide_delete(state)
    return Decision(_append(domain.group_stream(cmd.group_id), state.version, events), result={"groupId": cmd.group_id})


async def issue_code(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, IssueGroupCode)
    code = domain.new_code()
    stream = domain.code_stream(code, await queries.code_key(conn))
    existing = await fold_stream(conn, stream, CodeState(), domain.evolve_code, domain.EVENTS)
    events = domain.decide_issue(existing, cmd.group_id, cmd.issued_by, clock())
    expires_at = events[0].expires_at
    return Decision(_append(stream, 0, events), result={"code": code, "groupId": cmd.group_id, "expiresAt": expires_at})


async def redeem_code(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, RedeemGroupCode)
    stream = domain.code_stream(cmd.code, await queries.code_key(conn))
    state = await fold_stream(conn, stream, CodeState(), domain.evolve_code, domain.EVENTS)
    events = domain.decide_redeem(state, clock())
    return Decision(_append(stream, 1, events), result={"groupId": state.group_id})


HANDLERS: dict[str, Handler] = {
    "update": update,
    "delete": delete,
    "issue_code": issue_code,
    "redeem_code": redeem_code,
}
