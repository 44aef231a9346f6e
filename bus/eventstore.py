"""The Postgres event store: append with expected versions, load streams, read the global feed
behind the xid8 fence, and run one command as one transaction with idempotency."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import msgspec

from bus.commandlog import record_and_commit, rollback, stored_result, stored_results
from bus.events import EventCatalog
from bus.streamcache import Attempt, Folded, StreamCache, current_attempt
from schemas.envelope import CommandEnvelope, CommandReply, ErrorInfo
from schemas.errors import DomainError

log = logging.getLogger("chatbus.eventstore")

S = TypeVar("S")

MAX_CONFLICT_RETRIES = 30
# Backoff between conflict retries: jittered and growing, so N writers racing on one stream
# spread out instead of colliding again in lockstep.
RETRY_BASE_DELAY = 0.001
RETRY_MAX_DELAY = 0.05


class NewEvent(msgspec.Struct, frozen=True):
    event_type: str
    data: dict[str, Any]
    schema_version: int = 1


class StreamAppend(msgspec.Struct, frozen=True):
    stream_id: str
    expected_version: int
    events: Sequence[NewEvent]


class RecordedEvent(msgspec.Struct, frozen=True):
    global_position: int
    transaction_id: int
    stream_id: str
    stream_version: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


class VersionConflict(Exception):
    pass


def event_from_struct(event: msgspec.Struct) -> NewEvent:
    """An event Struct -> the stored form (its class name is the event type)."""
    return NewEvent(type(event).__name__, msgspec.to_builtins(event))


@dataclass
class Decision:
    """What a domain handler decided: events per stream, and the result for the caller."""

    appends: list[StreamAppend] = field(default_factory=list)
    result: Any = None
    # The version the reply (and its ETag) reports. The store fills it in from the first stream
    # appended to; a handler sets it only for a decision that appends nothing (the current version).
    version: int | None = None

    @property
    def new_version(self) -> int | None:
        if self.appends:
            first = self.appends[0]
            return first.expected_version + len(first.events)
        return self.version

    # Computes the result inside the transaction, after the inline projections ran (read-your-write).
    after: Callable[[asyncpg.Connection], Awaitable[Any]] | None = None


Projector = Callable[[asyncpg.Connection, RecordedEvent], Awaitable[None]]
Handler = Callable[[asyncpg.Connection, CommandEnvelope], Awaitable[Decision]]

EVENT_COLUMNS = (
    "global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version, event_id,"
    " event_type, schema_version, data, metadata, recorded_at"
)


def _row_to_event(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(**dict(row))


async def load_stream(conn: asyncpg.Connection, stream_id: str) -> list[RecordedEvent]:
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version", stream_id
    )
    return [_row_to_event(r) for r in rows]


async def append_events(
    conn: asyncpg.Connection, appends: Sequence[StreamAppend], metadata: dict[str, Any]
) -> list[RecordedEvent]:
    """Insert the events of every stream at the expected versions. Must run inside a transaction;
    a concurrent writer makes the unique (stream_id, stream_version) fail: VersionConflict."""
    stream_ids: list[str] = []
    versions: list[int] = []
    event_ids: list[uuid.UUID] = []
    types: list[str] = []
    schema_versions: list[int] = []
    datas: list[str] = []
    for append in appends:
        for offset, ev in enumerate(append.events, start=1):
            stream_ids.append(append.stream_id)
            versions.append(append.expected_version + offset)
            event_ids.append(uuid.uuid4())
            types.append(ev.event_type)
            schema_versions.append(ev.schema_version)
            datas.append(msgspec.json.encode(ev.data).decode())
    if not stream_ids:
        return []
    try:
        rows = await conn.fetch(
            f"""INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
                SELECT s, v, e, t, sv, d::jsonb, $7::jsonb
                FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::smallint[], $6::text[])
                     AS u(s, v, e, t, sv, d)
                RETURNING {EVENT_COLUMNS}""",
            stream_ids,
            versions,
            event_ids,
            types,
            schema_versions,
            datas,
            metadata,
        )
    except asyncpg.UniqueViolationError as exc:
        raise VersionConflict(str(exc)) from exc
    return sorted((_row_to_event(r) for r in rows), key=lambda e: e.global_position)


async def read_feed(conn: asyncpg.Connection, after_tx: int, after_pos: int, limit: int) -> list[RecordedEvent]:
    """Events committed after (tx, pos), never past the oldest transaction still in flight,
    so an event committed late is not skipped."""
    rows = await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM events
            WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
              AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY transaction_id, global_position
            LIMIT $3""",
        str(after_tx),
        after_pos,
        limit,
    )
    return [_row_to_event(r) for r in rows]


async def load_checkpoint(conn: asyncpg.Connection, name: str) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT last_tx::text::bigint AS tx, last_pos FROM checkpoints WHERE name = $1", name)
    return (row["tx"], row["last_pos"]) if row else (0, 0)


async def save_checkpoint(conn: asyncpg.Connection, name: str, tx: int, pos: int) -> None:
    await conn.execute(
        """INSERT INTO checkpoints (name, last_tx, last_pos, updated_at)
           VALUES ($1, $2::text::xid8, $3, now())
           ON CONFLICT (name) DO UPDATE SET last_tx = EXCLUDED.last_tx, last_pos = EXCLUDED.last_pos,
                                            updated_at = now()""",
        name,
        str(tx),
        pos,
    )


def command_metadata(envelope: CommandEnvelope) -> dict[str, Any]:
    return {
        "command_id": str(envelope.command_id),
        "command_type": envelope.type,
        "actor": envelope.actor.subject if envelope.actor else None,
        "actor_scope": envelope.actor.scope if envelope.actor else None,
        "request_id": envelope.request_id,
        "causation_id": str(envelope.command_id),
        "correlation_id": envelope.request_id or str(envelope.command_id),
        "client_ip": envelope.client_ip,
    }


def error_reply(exc: DomainError) -> CommandReply:
    return CommandReply(ok=False, error=ErrorInfo(exc.code, exc.message, exc.status, exc.details))


class EventStore:
    """Runs command handlers transactionally and applies the inline projections."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        projectors: Sequence[Projector] = (),
        *,
        on_commit: Callable[[], None] | None = None,
        catalog: EventCatalog | None = None,
    ) -> None:
        self.pool = pool
        self.projectors = list(projectors)
        # When set, every appended event must be a declared type (written at its schema version).
        self.catalog = catalog
        # Called after a commit that wrote events (the relay's wake-up). Not Postgres NOTIFY: that
        # takes a global lock at commit and would serialise every writer.
        self.on_commit = on_commit
        # Folded stream states of this process (see bus/streamcache.py).
        self.streams = StreamCache()

    def _checked(self, appends: list[StreamAppend]) -> list[StreamAppend]:
        if self.catalog is None:
            return appends
        catalog = self.catalog
        return [
            StreamAppend(
                a.stream_id,
                a.expected_version,
                [NewEvent(e.event_type, e.data, catalog.get(e.event_type).version) for e in a.events],
            )
            for a in appends
        ]

    async def stored_replies(self, envelopes: Sequence[CommandEnvelope]) -> dict[uuid.UUID, CommandReply]:
        """The replies of those commands that already committed (the steps of a multi-step command),
        by command id; a step stored for another request under the same key answers CONFLICT."""
        async with self.pool.acquire() as conn:
            return await stored_results(conn, envelopes)

    async def execute(self, envelope: CommandEnvelope, handler: Handler, *, record: bool = True) -> CommandReply:
        """Decide and persist one command, once. A retried command id returns the stored reply.

        `record=False` leaves the command out of processed_commands (the COMMIT goes alone): only for
        a command whose id can never come again, so no one would ask for its stored reply (a step of
        a chat turn sent without an Idempotency-Key, see services/chat/engine.py may_be_retried)."""
        trusting = True  # may decide on cached stream state; off after a conflict
        for attempt in range(MAX_CONFLICT_RETRIES):
            tried = Attempt(self.streams, trusting)
            try:
                # The command id is looked up only when something objects (a refusal, a conflict):
                # a duplicate that decides cleanly again is stopped by the processed_commands key
                # at the end, which rolls its events back. One query less on the common path.
                async with self.pool.acquire() as conn:
                    return await self._attempt(conn, envelope, handler, tried, record)
            except (VersionConflict, asyncpg.UniqueViolationError, asyncpg.SerializationError):
                tried.forget()
                trusting = False
                async with self.pool.acquire() as conn:
                    stored = await stored_result(conn, envelope)
                if stored is not None:
                    return stored
                log.debug("conflict on %s (attempt %d), deciding again", envelope.type, attempt + 1)
                delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**attempt)
                await asyncio.sleep(random.uniform(0, delay))
        return CommandReply(
            ok=False,
            error=ErrorInfo("CONFLICT", "too many concurrent writes to the same entity, retry", 409),
        )

    async def _decide(self, conn: asyncpg.Connection, envelope: CommandEnvelope, handler: Handler) -> Decision:
        """The handler's decision; taken again on loaded state when one taken on cached state would
        not be checked by the unique key (a refusal, or a speculative stream it does not append to)."""
        tried = current_attempt.get()
        try:
            decision = await handler(conn, envelope)
        except DomainError:
            if tried is None or not tried.speculative:
                raise
        else:
            if tried is None or tried.checked_by(decision.appends):
                return decision
        tried.distrust()
        return await handler(conn, envelope)

    async def _attempt(
        self, conn: asyncpg.Connection, envelope: CommandEnvelope, handler: Handler, tried: Attempt, record: bool
    ) -> CommandReply:
        token = current_attempt.set(tried)  # for fold_cached and the projections' remembered rows
        # BEGIN and COMMIT by hand: the processed_commands row and the COMMIT then go in one round trip.
        await conn.execute("BEGIN")
        try:
            try:
                decision = await self._decide(conn, envelope, handler)
            except DomainError as exc:
                # Refusals are not recorded: nothing changed, and a retry may be valid later.
                stored = await stored_result(conn, envelope)
                await conn.execute("ROLLBACK")
                return stored if stored is not None else error_reply(exc)
            appends = self._checked(decision.appends)
            recorded = await append_events(conn, appends, command_metadata(envelope))
            for event in recorded:
                for project in self.projectors:
                    await project(conn, event)
            result = await decision.after(conn) if decision.after else decision.result
            reply = CommandReply(ok=True, result=msgspec.to_builtins(result), version=decision.new_version)
            if record:
                stream_id = decision.appends[0].stream_id if decision.appends else None
                await record_and_commit(conn, envelope, stream_id, reply)
            else:
                await conn.execute("COMMIT")
        except BaseException:
            await rollback(conn)
            raise
        finally:
            current_attempt.reset(token)
        tried.committed(appends)  # as stored: at the schema versions the catalog wrote them
        # In the committing task, once per commit: the relay's wake-up (coalesced by the caller, see
        # bus/relay.py coalesced_wake) and the worker's read caches (services/worker_reads.py) hang on it.
        if recorded and self.on_commit is not None:
            self.on_commit()
        return reply


async def fold_stream(
    conn: asyncpg.Connection,
    stream_id: str,
    initial: S,
    evolve: Callable[[S, Any], S],
    catalog: EventCatalog,
) -> S:
    """Load a stream and fold its typed events into state with the domain's evolve function."""
    state = initial
    for event in await load_stream(conn, stream_id):
        state = evolve(state, catalog.decode(event.event_type, event.schema_version, event.data))
    return state


async def fold_cached(
    conn: asyncpg.Connection,
    stream_id: str,
    initial: S,
    evolve: Callable[[S, Any], S],
    catalog: EventCatalog,
    *,
    new: bool = False,
) -> S:
    """`fold_stream` for a stream the decision will append to: inside `EventStore.execute` the state
    may come from the worker's stream cache, and with `new` (a create, whose stream is normally
    empty) a stream not in the cache is taken as empty without a query. Either is checked by the
    unique (stream_id, stream_version) key when the events are appended (see bus/streamcache.py).
    `initial` must be the state of an empty stream and states must not be mutated; a handler that
    uses it may be run twice in one transaction (again on loaded state), so it writes nothing itself."""
    tried = current_attempt.get()
    if tried is None:
        return await fold_stream(conn, stream_id, initial, evolve, catalog)
    if tried.trusting:
        cached = tried.cache.get(stream_id, evolve)
        if cached is not None or new:
            folded = cached or Folded(initial, 0, evolve, catalog)
            tried.read(stream_id, folded, speculative=True)
            state: S = folded.state
            return state
    events = await load_stream(conn, stream_id)
    state = initial
    for event in events:
        state = evolve(state, catalog.decode(event.event_type, event.schema_version, event.data))
    tried.read(stream_id, Folded(state, events[-1].stream_version if events else 0, evolve, catalog), speculative=False)
    return state


async def stream_head(conn: asyncpg.Connection, stream_id: str) -> tuple[int, str] | None:
    """(version, type of the last event) of a stream, None when it has no events: what a decider
    needs of a long stream (a conversation) without loading every event."""
    row = await conn.fetchrow(
        "SELECT stream_version, event_type FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
        stream_id,
    )
    return (row["stream_version"], row["event_type"]) if row else None


async def load_last_event(conn: asyncpg.Connection, stream_id: str) -> RecordedEvent | None:
    """The newest event of a stream (for streams whose every event carries the full state)."""
    row = await conn.fetchrow(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1", stream_id
    )
    return _row_to_event(row) if row else None


def remember_row(key: Hashable, row: Any) -> None:
    """An inline projection keeps the row it just wrote (RETURNING) for the command's `after`, which
    then answers without reading it back. Outside a command (replay, catch-up) nothing is kept."""
    tried = current_attempt.get()
    if tried is not None:
        tried.rows[key] = row


def remembered_row(key: Hashable) -> Any | None:
    """The row an inline projection wrote under `key` in this attempt of the command, if any."""
    tried = current_attempt.get()
    return tried.rows.get(key) if tried is not None else None


def payload_of(envelope: CommandEnvelope, type_: type[S]) -> S:
    """The command's payload as its Struct; a malformed one is the caller's error, not ours."""
    try:
        return msgspec.convert(envelope.payload, type_)
    except msgspec.ValidationError as exc:
        raise DomainError("INVALID_ARGS", f"bad {envelope.type} payload: {exc}") from exc
