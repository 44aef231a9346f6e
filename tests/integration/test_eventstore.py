"""The Postgres event store against a real database: appends and versions, the xid8 fence,
checkpoints, command execution (idempotency, concurrency, refusals), migrations, replay and the
catch-up runner. One operation under test per function."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from bus import db
from bus.events import EventCatalog
from bus.eventstore import (
    MAX_CONFLICT_RETRIES,
    Decision,
    EventStore,
    NewEvent,
    RecordedEvent,
    StreamAppend,
    VersionConflict,
    append_events,
    load_checkpoint,
    load_stream,
    read_feed,
    save_checkpoint,
)
from bus.migrate import available_migrations, migrate
from bus.projections import CatchUpRunner, Projection, rebuild
from schemas.envelope import Actor, CommandEnvelope
from schemas.errors import DomainError
from services.presets import handlers as preset_handlers
from services.presets.projection import PROJECTION as PRESETS_PROJECTION
from tests.servers import Servers

META = {"command_id": "test", "actor": "tester"}


class Happened(msgspec.Struct):
    n: int = 0


TEST_EVENTS = EventCatalog.of("test", Happened)


def ev(event_type: str = "Happened", **data: Any) -> NewEvent:
    return NewEvent(event_type, data)


def envelope(type_: str = "test.cmd", payload: dict[str, Any] | None = None, **kw: Any) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=kw.pop("command_id", uuid.uuid4()),
        type=type_,
        actor=Actor("admin"),
        payload=payload or {},
        **kw,
    )


async def append(pool: asyncpg.Pool, *appends: StreamAppend) -> list[RecordedEvent]:
    async with pool.acquire() as conn, conn.transaction():
        return await append_events(conn, appends, META)


async def count_events(pool: asyncpg.Pool, stream_id: str | None = None) -> int:
    if stream_id is None:
        return int(await pool.fetchval("SELECT count(*) FROM events"))
    return int(await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream_id))


@pytest.fixture
async def conn_factory(database: str) -> AsyncIterator[Any]:
    """Dedicated connections outside the pool (each its own session), closed after the test."""
    opened: list[asyncpg.Connection] = []

    async def open_conn() -> asyncpg.Connection:
        conn = await db.connect(database)
        opened.append(conn)
        return conn

    yield open_conn
    for conn in opened:
        await conn.close()


# ---- append / load ----


async def test_append_at_expected_version_0_then_1(pool: asyncpg.Pool) -> None:
    first = await append(pool, StreamAppend("thing-1", 0, [ev(n=1)]))
    second = await append(pool, StreamAppend("thing-1", 1, [ev(n=2), ev(n=3)]))

    assert [e.stream_version for e in first] == [1]
    assert [e.stream_version for e in second] == [2, 3]
    assert [e.data for e in first + second] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert first[0].metadata == META
    assert first[0].stream_id == "thing-1"
    assert first[0].event_type == "Happened"
    assert first[0].schema_version == 1
    assert first[0].global_position < second[0].global_position < second[1].global_position
    assert first[0].transaction_id != second[0].transaction_id
    assert second[0].transaction_id == second[1].transaction_id


async def test_append_nothing_writes_nothing(pool: asyncpg.Pool) -> None:
    assert await append(pool, StreamAppend("thing-1", 0, [])) == []
    assert await count_events(pool) == 0


async def test_stale_expected_version_raises_version_conflict(pool: asyncpg.Pool) -> None:
    await append(pool, StreamAppend("thing-1", 0, [ev(), ev()]))

    with pytest.raises(VersionConflict):
        await append(pool, StreamAppend("thing-1", 1, [ev(stale=True)]))

    assert await count_events(pool, "thing-1") == 2


async def test_load_stream_returns_only_that_stream_in_version_order(pool: asyncpg.Pool) -> None:
    await append(pool, StreamAppend("thing-1", 0, [ev(n=1)]), StreamAppend("thing-2", 0, [ev(n=100)]))
    await append(pool, StreamAppend("thing-2", 1, [ev(n=101)]))
    await append(pool, StreamAppend("thing-1", 1, [ev(n=2), ev(n=3)]))

    async with pool.acquire() as conn:
        events = await load_stream(conn, "thing-1")

    assert [(e.stream_version, e.data["n"]) for e in events] == [(1, 1), (2, 2), (3, 3)]
    assert {e.stream_id for e in events} == {"thing-1"}


async def test_load_missing_stream_is_empty(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await load_stream(conn, "thing-none") == []


async def test_multi_stream_append_is_atomic(pool: asyncpg.Pool) -> None:
    await append(pool, StreamAppend("thing-b", 0, [ev()]))

    with pytest.raises(VersionConflict):
        await append(pool, StreamAppend("thing-a", 0, [ev()]), StreamAppend("thing-b", 0, [ev()]))

    assert await count_events(pool, "thing-a") == 0
    assert await count_events(pool, "thing-b") == 1


async def test_events_reject_update(pool: asyncpg.Pool) -> None:
    await append(pool, StreamAppend("thing-1", 0, [ev(n=1)]))

    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("""UPDATE events SET data = '{"n": 2}'""")

    assert await pool.fetchval("SELECT data FROM events") == {"n": 1}


async def test_events_reject_delete(pool: asyncpg.Pool) -> None:
    await append(pool, StreamAppend("thing-1", 0, [ev()]))

    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM events")

    assert await count_events(pool) == 1


# ---- the global feed and its xid8 fence ----


async def test_read_feed_waits_for_the_oldest_open_transaction(pool: asyncpg.Pool, conn_factory: Any) -> None:
    early, late = await conn_factory(), await conn_factory()
    slow = early.transaction()
    await slow.start()
    try:
        # The early transaction appends first (smaller xid) but commits last.
        [early_event] = await append_events(early, [StreamAppend("thing-early", 0, [ev(n=1)])], META)
        async with late.transaction():
            [late_event] = await append_events(late, [StreamAppend("thing-late", 0, [ev(n=2)])], META)
        assert early_event.transaction_id < late_event.transaction_id

        async with pool.acquire() as reader:
            while_open = await read_feed(reader, 0, 0, 100)
        # The late event is committed, but returning it now would let a reader move its checkpoint
        # past the early one, which would then be skipped forever.
        assert while_open == []
    finally:
        await slow.commit()

    async with pool.acquire() as reader:
        after_commit = await read_feed(reader, 0, 0, 100)
    assert [e.event_id for e in after_commit] == [early_event.event_id, late_event.event_id]
    assert [(e.transaction_id, e.global_position) for e in after_commit] == sorted(
        (e.transaction_id, e.global_position) for e in after_commit
    )


async def test_read_feed_orders_by_transaction_then_position(pool: asyncpg.Pool, conn_factory: Any) -> None:
    # Positions are taken in insert order, transactions commit in another order: the feed follows xids.
    first, second = await conn_factory(), await conn_factory()
    tx_first, tx_second = first.transaction(), second.transaction()
    await tx_first.start()
    await tx_second.start()
    await first.execute("SELECT pg_current_xact_id()")  # take the smaller xid first
    await second.execute("SELECT pg_current_xact_id()")
    [b] = await append_events(second, [StreamAppend("thing-b", 0, [ev()])], META)
    [a] = await append_events(first, [StreamAppend("thing-a", 0, [ev()])], META)
    await tx_second.commit()
    await tx_first.commit()
    assert b.global_position < a.global_position
    assert a.transaction_id < b.transaction_id

    async with pool.acquire() as reader:
        feed = await read_feed(reader, 0, 0, 100)

    assert [e.event_id for e in feed] == [a.event_id, b.event_id]


async def test_read_feed_resumes_after_position_with_limit(pool: asyncpg.Pool) -> None:
    written = await append(pool, StreamAppend("thing-1", 0, [ev(n=i) for i in range(5)]))
    written += await append(pool, StreamAppend("thing-1", 5, [ev(n=i) for i in range(5, 7)]))

    seen: list[uuid.UUID] = []
    tx = pos = 0
    async with pool.acquire() as reader:
        while batch := await read_feed(reader, tx, pos, 3):
            assert len(batch) <= 3
            seen.extend(e.event_id for e in batch)
            tx, pos = batch[-1].transaction_id, batch[-1].global_position

    assert seen == [e.event_id for e in written]


# ---- checkpoints ----


async def test_checkpoint_round_trip(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await load_checkpoint(conn, "reader") == (0, 0)
        await save_checkpoint(conn, "reader", 1234, 56)
        assert await load_checkpoint(conn, "reader") == (1234, 56)
        await save_checkpoint(conn, "reader", 2_000_000_000_123, 78)
        assert await load_checkpoint(conn, "reader") == (2_000_000_000_123, 78)
        assert await load_checkpoint(conn, "other") == (0, 0)


# ---- EventStore.execute ----


def counter_handler(stream: str = "counter-1", event_type: str = "Incremented") -> Any:
    """Folds the stream, then appends one event at the version it saw."""

    async def handle(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
        version = len(await load_stream(conn, stream))
        return Decision(
            [StreamAppend(stream, version, [ev(event_type, n=version + 1)])],
            result={"n": version + 1},
            version=version + 1,
        )

    return handle


async def test_execute_is_idempotent_by_command_id(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    command = envelope(request_id="req-1")

    first = await store.execute(command, counter_handler())
    second = await store.execute(command, counter_handler())

    assert first.ok and first.result == {"n": 1} and first.version == 1
    assert second == first
    assert await count_events(pool, "counter-1") == 1
    row = await pool.fetchrow("SELECT stream_id, result FROM processed_commands")
    assert row["stream_id"] == "counter-1"
    assert row["result"] == {"ok": True, "result": {"n": 1}, "version": 1}


async def test_execute_records_command_metadata(pool: asyncpg.Pool) -> None:
    command = envelope("counter.increment", request_id="req-7", client_ip="10.0.0.1")

    await EventStore(pool).execute(command, counter_handler())

    async with pool.acquire() as conn:
        [event] = await load_stream(conn, "counter-1")
    assert event.metadata["command_id"] == str(command.command_id)
    assert event.metadata["command_type"] == "counter.increment"
    assert event.metadata["actor"] == "admin"
    assert event.metadata["request_id"] == "req-7"
    assert event.metadata["correlation_id"] == "req-7"
    assert event.metadata["causation_id"] == str(command.command_id)
    assert event.metadata["client_ip"] == "10.0.0.1"


async def test_execute_retries_conflicts_between_concurrent_commands(pool: asyncpg.Pool) -> None:
    # As many concurrent commands as the pool has connections: every one decides at a stale
    # version at least once, and the bounded retry resolves them all.
    store = EventStore(pool)

    replies = await asyncio.gather(*(store.execute(envelope(), counter_handler()) for _ in range(5)))

    assert [r.error for r in replies if not r.ok] == []
    assert sorted(r.version for r in replies) == list(range(1, 6))
    async with pool.acquire() as conn:
        assert [e.stream_version for e in await load_stream(conn, "counter-1")] == list(range(1, 6))


async def test_execute_20_concurrent_commands_on_one_stream(database: str) -> None:
    # A pool that lets all 20 run at once (a worker runs up to 64 handlers at a time); every command
    # but one decides at a stale version at least once, the last ones many times.
    wide = await db.create_pool(database, min_size=20, max_size=20)
    started = asyncio.Barrier(20)
    first_attempts: set[uuid.UUID] = set()

    async def handle(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
        decision = await counter_handler()(conn, env)
        if env.command_id not in first_attempts:
            # Really concurrent: all 20 have read the stream before any of them appends.
            first_attempts.add(env.command_id)
            await started.wait()
        return decision

    try:
        store = EventStore(wide)

        replies = await asyncio.gather(*(store.execute(envelope(), handle) for _ in range(20)))

        async with wide.acquire() as conn:
            events = await load_stream(conn, "counter-1")
        assert [r.error for r in replies if not r.ok] == []
        assert sorted(r.version for r in replies) == list(range(1, 21))
        assert [e.stream_version for e in events] == list(range(1, 21))
        assert await wide.fetchval("SELECT count(*) FROM processed_commands") == 20
    finally:
        await wide.close()


async def test_execute_gives_up_after_bounded_retries(pool: asyncpg.Pool, conn_factory: Any) -> None:
    rival = await conn_factory()
    calls = 0

    async def always_outrun(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
        nonlocal calls
        calls += 1
        decision = await counter_handler()(conn, env)
        # Another writer commits the same version between this load and the append.
        async with rival.transaction():
            await append_events(rival, decision.appends, META)
        return decision

    reply = await EventStore(pool).execute(envelope(), always_outrun)

    assert not reply.ok and reply.error is not None
    assert (reply.error.code, reply.error.status) == ("CONFLICT", 409)
    assert calls == MAX_CONFLICT_RETRIES
    assert await count_events(pool, "counter-1") == MAX_CONFLICT_RETRIES  # only the rival's
    assert await pool.fetchval("SELECT count(*) FROM processed_commands") == 0


async def test_execute_domain_error_writes_nothing(pool: asyncpg.Pool) -> None:
    async def refuse(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
        await conn.execute("SELECT 1")
        raise DomainError("PRESET_NOT_FOUND", "nope", details=[{"id": "x"}])

    reply = await EventStore(pool).execute(envelope(), refuse)

    assert not reply.ok
    assert reply.error is not None
    assert (reply.error.code, reply.error.status, reply.error.details) == (
        "PRESET_NOT_FOUND",
        404,
        [{"id": "x"}],
    )
    assert await count_events(pool) == 0
    assert await pool.fetchval("SELECT count(*) FROM processed_commands") == 0


async def test_execute_applies_inline_projections_in_the_transaction(pool: asyncpg.Pool) -> None:
    await pool.execute("CREATE TABLE counter_view (stream_id text PRIMARY KEY, n int NOT NULL)")

    async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
        await conn.execute(
            "INSERT INTO counter_view VALUES ($1, $2) ON CONFLICT (stream_id) DO UPDATE SET n = EXCLUDED.n",
            event.stream_id,
            event.data["n"],
        )

    async def read_back(conn: asyncpg.Connection) -> Any:
        return {"n": await conn.fetchval("SELECT n FROM counter_view")}

    async def handle(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
        decision = await counter_handler()(conn, env)
        decision.after = read_back
        return decision

    reply = await EventStore(pool, [project]).execute(envelope(), handle)

    assert reply.ok and reply.result == {"n": 1}
    assert await pool.fetchval("SELECT n FROM counter_view WHERE stream_id = 'counter-1'") == 1


# ---- migrations ----


async def test_concurrent_migrate_applies_each_migration_once(servers: Servers) -> None:
    name = f"t_migrate_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.pg_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        one, two = await db.connect(servers.dsn_for(name)), await db.connect(servers.dsn_for(name))
        try:
            applied_one, applied_two = await asyncio.gather(migrate(one), migrate(two))
            expected = [filename for _, filename, _ in available_migrations()]
            assert sorted(applied_one + applied_two) == expected
            assert [] in (applied_one, applied_two)
            rows = await one.fetch("SELECT number, name FROM schema_migrations ORDER BY number")
            assert [r["name"] for r in rows] == expected
            assert await migrate(one) == []
        finally:
            await one.close()
            await two.close()
    finally:
        admin = await asyncpg.connect(servers.pg_admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# ---- projections ----


async def test_rebuild_reproduces_the_inline_presets_table(pool: asyncpg.Pool) -> None:
    store = EventStore(pool, [PRESETS_PROJECTION.apply])

    async def run(action: str, payload: dict[str, Any]) -> None:
        handler = {
            "create": preset_handlers.create,
            "update": preset_handlers.update,
            "set_default": preset_handlers.set_default,
            "delete": preset_handlers.delete,
        }[action]
        reply = await store.execute(envelope(f"presets.{action}", payload), handler)
        assert reply.ok, reply.error

    await run("create", {"id": "default", "type": "system", "fields": {"name": "Default"}})
    await run(
        "create",
        {
            "id": "helper",
            "fields": {
                "name": "Helper",
                "systemPrompt": "be helpful",
                "modelParams": {"temperature": 0.3},
                "persona": {"name": "H", "traits": ["kind"]},
                "tools": {"allowedTools": ["search"]},
            },
        },
    )
    await run("create", {"id": "tmp-preset", "fields": {"name": "Temp"}})
    await run("update", {"id": "helper", "changes": {"description": "d", "context": {"maxMessages": 20}}})
    await run("set_default", {"id": "default"})
    await run("set_default", {"id": "helper"})
    await run("update", {"id": "helper", "changes": {"enabled": True, "model": "gpt-x"}})
    await run("delete", {"id": "tmp-preset"})
    live = [dict(r) for r in await pool.fetch("SELECT * FROM presets ORDER BY id")]
    assert [(r["id"], r["is_default"]) for r in live] == [("default", False), ("helper", True)]

    replayed = await rebuild(pool, [PRESETS_PROJECTION])

    assert replayed == await count_events(pool)
    assert [dict(r) for r in await pool.fetch("SELECT * FROM presets ORDER BY id")] == live


class RecordingProjection:
    """A projection of the test's own: one row per event, no ON CONFLICT, so applying an event
    twice fails loudly."""

    table = "catchup_seen"

    @staticmethod
    async def create(pool: asyncpg.Pool) -> None:
        await pool.execute("CREATE TABLE catchup_seen (event_id uuid PRIMARY KEY, global_position bigint NOT NULL)")

    @staticmethod
    async def apply(conn: asyncpg.Connection, event: RecordedEvent, typed: Happened) -> None:
        await conn.execute("INSERT INTO catchup_seen VALUES ($1, $2)", event.event_id, event.global_position)

    @classmethod
    def projection(cls) -> Projection:
        return Projection(name="recording", tables=(cls.table,), handlers={Happened: cls.apply}, catalog=TEST_EVENTS)


async def test_catch_up_runner_applies_once_and_advances_checkpoint(pool: asyncpg.Pool) -> None:
    await RecordingProjection.create(pool)
    runner = CatchUpRunner(pool, RecordingProjection.projection(), batch=2)
    written = await append(pool, StreamAppend("thing-1", 0, [ev(n=i) for i in range(3)]))

    applied = [await runner.run_once() for _ in range(3)]
    assert applied == [2, 1, 0]
    async with pool.acquire() as conn:
        assert await load_checkpoint(conn, "projection:recording") == (
            written[-1].transaction_id,
            written[-1].global_position,
        )

    written += await append(pool, StreamAppend("thing-2", 0, [ev(n=9)]))
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0

    rows = await pool.fetch("SELECT event_id FROM catchup_seen ORDER BY global_position")
    assert [r["event_id"] for r in rows] == [e.event_id for e in written]
    async with pool.acquire() as conn:
        assert await load_checkpoint(conn, "projection:recording") == (
            written[-1].transaction_id,
            written[-1].global_position,
        )


async def test_catch_up_runner_run_loop_until_stopped(pool: asyncpg.Pool) -> None:
    await RecordingProjection.create(pool)
    both_applied = asyncio.Event()
    applied = 0

    async def apply(conn: asyncpg.Connection, event: RecordedEvent, typed: Happened) -> None:
        nonlocal applied
        await RecordingProjection.apply(conn, event, typed)
        applied += 1
        if applied == 2:
            both_applied.set()

    runner = CatchUpRunner(pool, Projection("recording", ("catchup_seen",), {Happened: apply}, TEST_EVENTS))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop, idle_sleep=0.01))
    try:
        await append(pool, StreamAppend("thing-1", 0, [ev(), ev()]))
        await asyncio.wait_for(both_applied.wait(), 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)  # the batch in progress commits before the loop sees `stop`
    assert applied == 2
    assert await pool.fetchval("SELECT count(*) FROM catchup_seen") == 2
