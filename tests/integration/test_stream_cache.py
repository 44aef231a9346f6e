"""The worker's stream-state cache and the one-round-trip command record, against a real database.

Two EventStores on one database stand for two worker processes: each has its own cache, so one of
them writing makes the other's cache stale. The unique (stream_id, stream_version) must still decide."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import msgspec
import pytest

from bus import db
from bus.events import EventCatalog
from bus.eventstore import Decision, EventStore, StreamAppend, event_from_struct, fold_cached, load_stream
from schemas.envelope import Actor, CommandEnvelope
from schemas.errors import DomainError
from services.presets import handlers as preset_handlers

STREAM = "tally-1"


class Opened(msgspec.Struct):
    pass


class Added(msgspec.Struct):
    n: int


EVENTS = EventCatalog.of("test", Opened, Added)


@dataclass(frozen=True)
class Tally:
    opened: bool = False
    total: int = 0
    version: int = 0


def evolve(state: Tally, event: Any) -> Tally:
    if isinstance(event, Opened):
        return Tally(True, state.total, state.version + 1)
    return replace(state, total=state.total + event.n, version=state.version + 1)


def envelope(payload: dict[str, Any] | None = None, **kw: Any) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=kw.pop("command_id", uuid.uuid4()),
        type="test.cmd",
        actor=Actor("admin"),
        payload=payload or {},
        **kw,
    )


seen: list[Tally] = []  # the states the handlers decided on, in order


async def open_tally(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
    stream = env.payload.get("stream", STREAM)
    state = await fold_cached(conn, stream, Tally(), evolve, EVENTS, new=True)
    seen.append(state)
    if state.opened:
        raise DomainError("EXISTS", "already open")
    return Decision([StreamAppend(stream, state.version, [event_from_struct(Opened())])], result="opened")


async def add(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
    state = await fold_cached(conn, STREAM, Tally(), evolve, EVENTS)
    seen.append(state)
    if not state.opened:
        raise DomainError("NOT_FOUND", "not open")
    n = int(env.payload.get("n", 1))
    return Decision(
        [StreamAppend(STREAM, state.version, [event_from_struct(Added(n))])] if n else [],
        result={"total": state.total + n},
        version=state.version,
    )


def stores(pool: asyncpg.Pool) -> tuple[EventStore, EventStore]:
    return EventStore(pool, catalog=EVENTS), EventStore(pool, catalog=EVENTS)


async def versions(pool: asyncpg.Pool) -> list[int]:
    async with pool.acquire() as conn:
        return [e.stream_version for e in await load_stream(conn, STREAM)]


async def test_a_stale_cached_state_is_decided_again_on_the_fresh_one(pool: asyncpg.Pool) -> None:
    a, b = stores(pool)
    assert (await a.execute(envelope(), open_tally)).ok
    assert (await a.execute(envelope({"n": 1}), add)).result == {"total": 1}  # a caches version 2
    assert (await b.execute(envelope({"n": 10}), add)).result == {"total": 11}  # b writes version 3
    seen.clear()

    reply = await a.execute(envelope({"n": 100}), add)

    # a first decided on its cached total (1), the append at version 3 conflicted, then it decided
    # on the state in Postgres: the answer counts b's write.
    assert reply.ok and reply.result == {"total": 111}
    assert [s.total for s in seen] == [1, 11]
    assert await versions(pool) == [1, 2, 3, 4]


async def test_a_refusal_taken_on_cached_state_is_checked_against_postgres(pool: asyncpg.Pool) -> None:
    a, b = stores(pool)
    # a's cache knows the stream as unopened; b opens it.
    assert (await a.execute(envelope(), add)).error is not None  # loads version 0 and caches it
    assert (await b.execute(envelope(), open_tally)).ok
    seen.clear()

    reply = await a.execute(envelope({"n": 5}), add)

    assert reply.ok and reply.result == {"total": 5}
    assert [s.opened for s in seen] == [False, True]  # the cached refusal was not the answer


async def test_an_assumed_new_stream_that_exists_is_refused_without_a_second_event(pool: asyncpg.Pool) -> None:
    a, b = stores(pool)
    assert (await b.execute(envelope(), open_tally)).ok

    reply = await a.execute(envelope(), open_tally)

    assert not reply.ok and reply.error is not None and reply.error.code == "EXISTS"
    assert await versions(pool) == [1]


async def test_a_decision_that_appends_nothing_reports_the_fresh_version(pool: asyncpg.Pool) -> None:
    a, b = stores(pool)
    assert (await a.execute(envelope(), open_tally)).ok  # a caches version 1
    assert (await b.execute(envelope({"n": 2}), add)).ok  # version 2

    reply = await a.execute(envelope({"n": 0}), add)

    assert reply.ok and reply.version == 2 and reply.result == {"total": 2}


async def test_a_create_on_a_new_stream_does_not_read_the_log(database: str) -> None:
    single = await db.create_pool(database, min_size=1, max_size=1)
    statements: list[str] = []
    try:
        async with single.acquire() as conn:  # the one connection, which the store then uses
            conn.add_query_logger(lambda record: statements.append(record.query))
        store = EventStore(single, catalog=EVENTS)
        await store.execute(envelope({"stream": "tally-0"}), open_tally)  # asyncpg's first-use introspection
        statements.clear()

        reply = await store.execute(envelope(), open_tally)
    finally:
        await single.close()

    assert reply.ok
    assert not [q for q in statements if "FROM events" in q]
    # BEGIN, the append, and the record with the COMMIT: nothing else on the happy path (not even
    # the pool's session reset).
    assert len(statements) == 3 and statements[-1].rstrip().endswith("COMMIT")


async def test_the_stored_reply_and_the_key_conflict_survive_the_one_trip_record(pool: asyncpg.Pool) -> None:
    store = EventStore(pool, catalog=EVENTS)
    command = envelope(request_hash="it's a hash with a quote")
    first = await store.execute(command, open_tally)

    again = await store.execute(command, open_tally)
    other = await store.execute(envelope(command_id=command.command_id, request_hash="another request"), open_tally)

    assert first.ok and again == first
    assert not other.ok and other.error is not None and (other.error.code, other.error.status) == ("CONFLICT", 409)
    row = await pool.fetchrow("SELECT stream_id, result, request_hash FROM processed_commands")
    assert (row["stream_id"], row["request_hash"]) == (STREAM, "it's a hash with a quote")
    assert row["result"] == {"ok": True, "result": "opened", "version": 1}


async def test_a_value_with_a_nul_is_refused_by_postgres_not_cut_short(pool: asyncpg.Pool) -> None:
    # Postgres text holds no NUL. Sent as a parameter it is refused as data (400 at the edge); it must
    # never reach the one-trip record's query text, where it would end the query before its COMMIT.
    with pytest.raises(asyncpg.DataError):
        await EventStore(pool, catalog=EVENTS).execute(envelope(request_hash="nul\x00inside"), open_tally)

    assert await pool.fetchval("SELECT count(*) FROM events") == 0
    assert await pool.fetchval("SELECT count(*) FROM processed_commands") == 0


async def test_presets_update_uses_the_cache_and_sees_another_workers_write(pool: asyncpg.Pool) -> None:
    from services.presets.projection import PROJECTION

    def store() -> EventStore:
        return EventStore(pool, [PROJECTION.apply], catalog=PROJECTION.catalog)

    a, b = store(), store()

    def cmd(action: str, payload: dict[str, Any]) -> tuple[CommandEnvelope, Any]:
        return envelope(payload), preset_handlers.HANDLERS[action]

    assert (await a.execute(*cmd("create", {"id": "p-1", "fields": {"name": "one"}, "type": "user"}))).version == 1
    assert (await b.execute(*cmd("update", {"id": "p-1", "changes": {"name": "two"}}))).version == 2

    reply = await a.execute(*cmd("update", {"id": "p-1", "changes": {"description": "d"}}))

    assert reply.ok and reply.version == 3
    assert reply.result["name"] == "two" and reply.result["description"] == "d"


async def test_a_presets_reply_is_the_row_its_projection_wrote(pool: asyncpg.Pool) -> None:
    from services.presets import queries
    from services.presets.projection import PROJECTION

    store = EventStore(pool, [PROJECTION.apply], catalog=PROJECTION.catalog)
    fields = {"name": "one", "modelParams": {"temperature": 0.5}, "tools": {"enabled": ["a"]}}

    created = await store.execute(envelope({"id": "p-2", "fields": fields}), preset_handlers.HANDLERS["create"])
    row_after_create = msgspec.to_builtins(await queries.get_preset(pool, "p-2"))
    unchanged = await store.execute(
        envelope({"id": "p-2", "changes": {"name": "one"}}), preset_handlers.HANDLERS["update"]
    )
    updated = await store.execute(
        envelope({"id": "p-2", "changes": {"name": "two"}}), preset_handlers.HANDLERS["update"]
    )

    assert created.ok and created.result == row_after_create
    # Nothing written: the reply reads the row back, at the version it has.
    assert unchanged.ok and unchanged.version == 1 and unchanged.result == row_after_create
    assert updated.ok and updated.result == msgspec.to_builtins(await queries.get_preset(pool, "p-2"))
    assert updated.result["name"] == "two" and updated.result["version"] == 2


class Paid(msgspec.Struct):
    amount: int  # version 2; version 1 stored it as `n`


PAID_EVENTS = EventCatalog.of("test", Opened, Paid, Paid={1: lambda d: {"amount": d["n"]}})


def evolve_paid(state: Tally, event: Any) -> Tally:
    if isinstance(event, Opened):
        return Tally(True, state.total, state.version + 1)
    return replace(state, total=state.total + event.amount, version=state.version + 1)


async def pay(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
    state = await fold_cached(conn, STREAM, Tally(), evolve_paid, PAID_EVENTS)
    seen.append(state)
    events = [] if state.opened else [event_from_struct(Opened())]
    events.append(event_from_struct(Paid(int(env.payload["amount"]))))
    return Decision(
        [StreamAppend(STREAM, state.version, events)], result={"total": state.total + env.payload["amount"]}
    )


async def test_the_cached_state_is_folded_from_the_events_as_stored(pool: asyncpg.Pool) -> None:
    # Paid is written at schema version 2: folding it into the cache as version 1 would upcast it again.
    store = EventStore(pool, catalog=PAID_EVENTS)
    assert (await store.execute(envelope({"amount": 2}), pay)).ok
    cached = store.streams.get(STREAM, evolve_paid)
    assert cached is not None and (cached.state.total, cached.version) == (2, 2)
    seen.clear()

    reply = await store.execute(envelope({"amount": 3}), pay)

    assert reply.ok and reply.result == {"total": 5}
    assert [(s.total, s.version) for s in seen] == [(2, 2)]


async def test_a_backend_killed_mid_command_is_unavailable_and_leaves_a_healthy_pool(pool: asyncpg.Pool) -> None:
    """A server shutting down sends FATAL to a connection between two statements of a command; whatever
    asyncpg then raises must read as "the database went away" (a 503 in the worker), never commit, and
    never hand the broken connection to the next command."""
    store = EventStore(pool, catalog=EVENTS)

    async def killed_midway(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
        decision = await open_tally(conn, env)
        async with pool.acquire() as other:
            await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        return decision

    for _ in range(3):  # the FATAL may or may not have been read when the next statement goes out
        with pytest.raises(db.UNAVAILABLE):
            await store.execute(envelope({"stream": "tally-killed"}), killed_midway)
    async with pool.acquire() as conn:
        assert await load_stream(conn, "tally-killed") == []
    reply = await store.execute(envelope({"stream": "tally-killed"}), open_tally)
    assert reply.ok, reply
