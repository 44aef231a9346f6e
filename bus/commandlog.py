"""processed_commands: the record of each executed command and its reply (idempotency).

A command id seen again returns the stored reply; the same Idempotency-Key sent with another request
(another request hash) is a conflict, never another request's answer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from bus.db import UNAVAILABLE
from schemas.envelope import CommandEnvelope, CommandReply, ErrorInfo

log = logging.getLogger("chatbus.eventstore")

_json_text = msgspec.json.Encoder().encode


async def stored_result(conn: asyncpg.Connection, envelope: CommandEnvelope) -> CommandReply | None:
    """The reply of the command already processed under this id, if any. A command whose request
    differs from the stored one (the same Idempotency-Key, another body) gets a conflict, never the
    stored result: an idempotency key must not hand out another request's answer."""
    row = await conn.fetchrow(
        "SELECT result, request_hash FROM processed_commands WHERE command_id = $1", envelope.command_id
    )
    return None if row is None else _stored(row, envelope)


async def stored_results(
    conn: asyncpg.Connection, envelopes: Sequence[CommandEnvelope]
) -> dict[uuid.UUID, CommandReply]:
    """`stored_result` of several commands in one query, by command id (those not processed are absent)."""
    by_id = {e.command_id: e for e in envelopes}
    rows = await conn.fetch(
        "SELECT command_id, result, request_hash FROM processed_commands WHERE command_id = ANY($1::uuid[])",
        list(by_id),
    )
    return {row["command_id"]: _stored(row, by_id[row["command_id"]]) for row in rows}


def _stored(row: asyncpg.Record, envelope: CommandEnvelope) -> CommandReply:
    if row["request_hash"] != envelope.request_hash:
        return CommandReply(
            ok=False,
            error=ErrorInfo("CONFLICT", "this Idempotency-Key was already used with a different request", 409),
        )
    return msgspec.convert(row["result"], CommandReply)


async def rollback(conn: asyncpg.Connection) -> None:
    if conn.is_closed() or not conn.is_in_transaction():
        return
    try:
        await conn.execute("ROLLBACK")
    except (asyncpg.PostgresError, *UNAVAILABLE):
        # The connection is broken (the server went away mid-transaction): never hand it out again.
        log.debug("rollback failed; the connection is dropped", exc_info=True)
        conn.terminate()


def _literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings on: only the quote is special)."""
    return "'" + value.replace("'", "''") + "'"


async def record_and_commit(
    conn: asyncpg.Connection, envelope: CommandEnvelope, stream_id: str | None, reply: CommandReply
) -> None:
    """Insert the processed_commands row and COMMIT in one round trip. A duplicate command id fails
    the INSERT, which skips the COMMIT: the caller rolls back and returns the stored reply.

    The two statements go as one simple query, so the values are literals; a NUL would end the query
    text early (and could drop the COMMIT), so any value holding one takes the two-trip path."""
    stored = msgspec.to_builtins(reply)
    text = (_json_text(stored).decode(), stream_id, envelope.request_hash)
    if conn.get_settings().standard_conforming_strings != "on" or any(v is not None and "\x00" in v for v in text):
        await conn.execute(
            "INSERT INTO processed_commands (command_id, stream_id, result, request_hash) VALUES ($1, $2, $3, $4)",
            envelope.command_id,
            stream_id,
            stored,
            envelope.request_hash,
        )
        await conn.execute("COMMIT")
        return
    result, stream, request_hash = (_literal(v) if v is not None else "NULL" for v in text)
    await conn.execute(
        "INSERT INTO processed_commands (command_id, stream_id, result, request_hash)"
        f" VALUES ('{envelope.command_id}'::uuid, {stream}, {result}::jsonb, {request_hash}); COMMIT"
    )
