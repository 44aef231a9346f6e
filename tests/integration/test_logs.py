"""Structured logs against real NATS and Postgres: publisher -> `logs.<service>.<level>` -> sink -> table,
retention, the sink's queue group, and request ids from the ContextVar (bus/logs.py, services/logs)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bus import logs, nats_conn, subjects
from bus.worker import WorkerRuntime
from schemas.envelope import Actor, CommandEnvelope, CommandReply, ErrorInfo, command_encoder, reply_decoder
from schemas.logs import LogEntry, log_entry_decoder
from services.logs import queries
from services.logs.sink import LogSink, enforce_retention, insert_logs, start_log_sink
from tests.waiting import wait_until


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    conn = await nats_conn.connect(nats_url, name="test-logs")
    yield conn
    await conn.close()


@pytest.fixture
def test_logger() -> Iterator[logging.Logger]:
    """A logger of its own, so that a test publishes only what it logs itself."""
    logger = logging.getLogger(f"chatbus.test.{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.handlers.clear()


def sink_state(sink: LogSink, publisher: logs.LogPublisher) -> dict[str, int]:
    return {
        "pending": len(sink._pending),
        "stored": sink.stored,
        "batches": sink.batches,
        "dropped": sink.dropped,
        "invalid": sink.invalid,
        "published": publisher.published,
        "publisher_dropped": publisher.dropped,
    }


async def count_rows(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM logs"))


def entry(message: str, *, timestamp: datetime | None = None, **fields: object) -> LogEntry:
    values: dict[str, object] = {"level": "info", "service": "worker", "instance_id": "w-1", "logger": "t"}
    values.update(fields)
    return LogEntry(timestamp=timestamp or datetime.now(UTC), message=message, **values)  # type: ignore[arg-type]


async def collect(nc: NATS, subject: str, into: list[tuple[str, LogEntry]]) -> None:
    async def on_msg(msg: Msg) -> None:
        into.append((msg.subject, log_entry_decoder.decode(msg.data)))

    await nc.subscribe(subject, cb=on_msg)
    await nats_conn.flush_in_order(nc)


async def test_published_lines_are_stored_in_batches(
    nats_url: str, nc: NATS, pool: asyncpg.Pool, test_logger: logging.Logger
) -> None:
    sink_nc = await nats_conn.connect(nats_url, name="test-sink")
    # A long interval: only full batches are written until stop().
    sink = await start_log_sink(sink_nc, pool, batch_size=10, flush_interval=30, max_rows=None, max_age_days=None)
    publisher = logs.install_log_publisher(nc, "worker", "w-1", logger=test_logger)
    try:
        for i in range(30):
            test_logger.info("line %d", i, extra={"n": i})
        await wait_until(lambda: sink.stored == 30, state=lambda: sink_state(sink, publisher))
        assert sink.batches == 3  # one INSERT per batch of 10
        assert await count_rows(pool) == 30

        test_logger.warning("the rest")
        await publisher.close()
        await sink.stop()  # takes in what was delivered and writes the partial batch
        assert sink_state(sink, publisher) == {
            "pending": 0,
            "stored": 31,
            "batches": 4,
            "dropped": 0,
            "invalid": 0,
            "published": 31,
            "publisher_dropped": 0,
        }
    finally:
        await publisher.close()
        await sink.stop()
        await sink_nc.close()
    assert publisher.published == 31 and publisher.dropped == 0

    first = await pool.fetchrow("SELECT * FROM logs ORDER BY id LIMIT 1")
    assert first is not None
    assert (first["level"], first["service"], first["instance_id"]) == ("info", "worker", "w-1")
    assert first["logger"] == test_logger.name and first["message"] == "line 0"
    assert first["extra"] == {"n": 0} and first["request_id"] is None
    assert abs(datetime.now(UTC) - first["timestamp"]) < timedelta(seconds=30)
    items, total = await queries.list_logs(pool, level="warning")
    assert total == 1 and items[0].message == "the rest"


async def test_line_fields_subjects_and_request_ids(nc: NATS, test_logger: logging.Logger) -> None:
    seen: list[tuple[str, LogEntry]] = []
    await collect(nc, subjects.LOGS_WILDCARD, seen)
    publisher = logs.install_log_publisher(nc, "edge", "edge-7", logger=test_logger)
    try:
        with logs.request_id_scope("req-1"):
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                test_logger.exception("boom %s", "here", extra={"user": "alice", "odd": object()})
            await asyncio.to_thread(test_logger.info, "from a thread")  # to_thread carries the context
        test_logger.info("outside any request")
        test_logger.info("explicit", extra={"request_id": "given"})
        token = logs.set_request_id("req-2")
        test_logger.debug("after set")
        logs.reset_request_id(token)
        assert logs.current_request_id() is None
        await wait_until(lambda: len(seen) == 5)
    finally:
        await publisher.close()

    by_message = {e.message: (subject, e) for subject, e in seen}
    subject, boom = by_message["boom here"]
    assert subject == "logs.edge.error"
    assert (boom.level, boom.service, boom.instance_id, boom.request_id) == ("error", "edge", "edge-7", "req-1")
    assert boom.extra["user"] == "alice" and boom.extra["odd"].startswith("<object object")
    assert "ZeroDivisionError" in boom.extra["exception"]
    assert boom.timestamp.tzinfo is not None
    assert by_message["from a thread"][1].request_id == "req-1"
    assert by_message["outside any request"][1].request_id is None
    assert by_message["explicit"][1].request_id == "given" and "request_id" not in by_message["explicit"][1].extra
    assert by_message["after set"] == ("logs.edge.debug", by_message["after set"][1])
    assert by_message["after set"][1].request_id == "req-2"


async def test_publisher_never_blocks_and_counts_what_it_drops(nats_url: str, test_logger: logging.Logger) -> None:
    nc = await nats_conn.connect(nats_url, name="test-drops")
    seen: list[tuple[str, LogEntry]] = []
    await collect(nc, subjects.LOGS_WILDCARD, seen)
    publisher = logs.install_log_publisher(nc, "relay", "r-1", logger=test_logger, capacity=5)
    try:
        for i in range(20):  # no await in between: the flush task cannot run, the buffer fills
            test_logger.info("burst %d", i)
        assert publisher.dropped == 15
        await wait_until(lambda: publisher.published == 5)
        await wait_until(lambda: len(seen) == 5)
        assert [e.message for _, e in seen] == [f"burst {i}" for i in range(5)]

        # The nats client's own loggers are never published (they log about the very connection).
        # A line logged after it arrives after it, had it been published: wait for that one instead of a while.
        publisher.handler.handle(logging.LogRecord("nats.aio.client", logging.ERROR, "", 0, "x", None, None))
        test_logger.info("after the nats line")
        await wait_until(lambda: any(e.message == "after the nats line" for _, e in seen))
        assert publisher.published == 6 and not any(e.logger == "nats.aio.client" for _, e in seen)

        # An argument whose __str__ logs does not re-enter the publisher.
        class Chatty:
            def __str__(self) -> str:
                test_logger.info("logged from __str__")
                return "chatty"

        test_logger.info("with %s", Chatty())
        await wait_until(lambda: any(e.message == "with chatty" for _, e in seen))
        published = publisher.published

        await nc.close()
        test_logger.error("while disconnected")
        await wait_until(lambda: publisher.dropped == 16)
        assert publisher.published == published
    finally:
        await publisher.close()
    assert publisher.handler not in test_logger.handlers


async def test_retention_by_age_and_by_rows(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    await insert_logs(pool, [entry(f"old {i}", timestamp=now - timedelta(days=10, minutes=i)) for i in range(10)])
    await insert_logs(pool, [entry(f"new {i}", timestamp=now - timedelta(seconds=40 - i)) for i in range(40)])
    assert await count_rows(pool) == 50

    assert await enforce_retention(pool, max_rows=None, max_age_days=7) == 10
    assert await count_rows(pool) == 40
    assert await enforce_retention(pool, max_rows=15, max_age_days=None) == 25
    kept = [r["message"] for r in await pool.fetch("SELECT message FROM logs ORDER BY id")]
    assert kept == [f"new {i}" for i in range(25, 40)]
    assert await enforce_retention(pool, max_rows=15, max_age_days=7) == 0


async def test_sink_enforces_retention_periodically(nc: NATS, pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    await insert_logs(pool, [entry("ancient", timestamp=now - timedelta(days=40))])
    await insert_logs(pool, [entry(f"line {i}") for i in range(12)])
    sink = await start_log_sink(nc, pool, max_rows=5, max_age_days=30, retention_interval=0.1)
    try:
        await wait_until(lambda: sink.deleted == 8)
        assert await count_rows(pool) == 5
        # Lines stored later are trimmed on a later round.
        await insert_logs(pool, [entry(f"more {i}") for i in range(3)])
        await wait_until(lambda: sink.deleted == 11)
    finally:
        await sink.stop()
    assert [r["message"] for r in await pool.fetch("SELECT message FROM logs ORDER BY id")] == [
        "line 10",
        "line 11",
        "more 0",
        "more 1",
        "more 2",
    ]


async def test_two_sinks_store_each_line_once(
    nats_url: str, nc: NATS, pool: asyncpg.Pool, test_logger: logging.Logger
) -> None:
    conns = [await nats_conn.connect(nats_url, name=f"test-sink-{i}") for i in range(2)]
    sinks = [await start_log_sink(c, pool, batch_size=7, flush_interval=0.05) for c in conns]
    publisher = logs.install_log_publisher(nc, "worker", "w-2", logger=test_logger)
    try:
        for i in range(60):
            test_logger.info("once %d", i)
        await nc.publish(subjects.logs("outside", "info"), b"not a log entry")
        await wait_until(lambda: sum(s.stored for s in sinks) == 60)
        await wait_until(lambda: sum(s.invalid for s in sinks) == 1)
        await asyncio.sleep(0.2)  # time for a duplicate, were there one
        assert await count_rows(pool) == 60
        assert await pool.fetchval("SELECT count(DISTINCT message) FROM logs") == 60
        assert all(s.stored > 0 for s in sinks), [s.stored for s in sinks]  # the queue group spreads the work
    finally:
        await publisher.close()
        for sink in sinks:
            await sink.stop()
        for c in conns:
            await c.close()


async def test_sink_keeps_lines_while_postgres_is_unreachable(nc: NATS, database: str) -> None:
    from bus import db

    pool = await db.create_pool(database, max_size=2)
    sink = await start_log_sink(nc, pool, batch_size=5, flush_interval=0.05)
    await pool.close()  # every write fails now
    try:
        for i in range(8):
            await nc.publish(subjects.logs("worker", "info"), msgspec.json.encode(entry(f"kept {i}")))
        await wait_until(lambda: len(sink._pending) == 8)
        await asyncio.sleep(0.2)
        assert sink.stored == 0 and sink.dropped == 0  # kept for a retry, not lost
        sink.pool = await db.create_pool(database, max_size=2)  # Postgres is back
        await sink.flush()
        assert sink.stored == 8 and await count_rows(sink.pool) == 8
    finally:
        await sink.stop()
        await sink.pool.close()


async def test_worker_runtime_logs_with_the_commands_request_id(nc: NATS) -> None:
    chatbus = logging.getLogger("chatbus")
    previous = chatbus.level
    chatbus.setLevel(logging.INFO)
    handler_log = logging.getLogger("chatbus.test.handler")

    async def do(envelope: CommandEnvelope) -> CommandReply:
        handler_log.info("handling %s", envelope.payload["n"])
        if envelope.payload["n"] == 2:
            return CommandReply(ok=False, error=ErrorInfo("NOPE", "refused"))
        return CommandReply(ok=True)

    seen: list[tuple[str, LogEntry]] = []
    await collect(nc, subjects.LOGS_WILDCARD, seen)
    runtime = WorkerRuntime(nc, "logtest", {"do": do})
    await runtime.start()
    publisher = logs.install_log_publisher(nc, "worker", "w-3", logger=chatbus)
    try:
        for n, rid in ((1, "http-req-1"), (2, "http-req-2")):
            envelope = CommandEnvelope(
                command_id=uuid.uuid4(), type="logtest.do", actor=Actor("admin"), payload={"n": n}, request_id=rid
            )
            msg = await nc.request(subjects.command("logtest", "do"), command_encoder.encode(envelope), timeout=5)
            assert reply_decoder.decode(msg.data).ok is (n == 1)
        await wait_until(lambda: len(seen) >= 2)
    finally:
        await publisher.close()
        await runtime.stop()
        chatbus.setLevel(previous)
    lines = {(e.logger, e.message): e.request_id for _, e in seen}
    assert lines[("chatbus.test.handler", "handling 1")] == "http-req-1"
    assert lines[("chatbus.test.handler", "handling 2")] == "http-req-2"
    # A refusal is logged by the edge that sent the command, not a second time by the worker.
    assert not [key for key in lines if key[0] == "chatbus.worker"]
    assert logs.current_request_id() is None  # the runtime's tasks never leaked it into ours


def test_stderr_lines_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    handle = logs.configure_stderr_logging("INFO")
    logger = logging.getLogger("chatbus.test.stderr")
    try:
        with logs.request_id_scope("rid-stderr"):
            logger.info("inside %s", "a request")
        logger.info("outside")
        logger.debug("too quiet")
    finally:
        handle.close()  # writes out what is queued
    lines = [line for line in capsys.readouterr().err.splitlines() if "chatbus.test.stderr" in line]
    assert len(lines) == 2, lines
    assert lines[0].endswith(" INFO chatbus.test.stderr [rid-stderr]: inside a request")
    assert lines[1].endswith(" INFO chatbus.test.stderr: outside")
