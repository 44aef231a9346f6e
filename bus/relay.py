"""The relay: publishes committed events to JetStream `EVENTS`, in feed order, one leader at a time.

It publishes a batch with `Nats-Msg-Id` = event id, waits for every ack, then moves its checkpoint.
A crash between the two republishes the batch and JetStream's duplicate window drops the copies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from bus import db, subjects
from bus.events import EventCatalog, UnknownEventType
from bus.eventstore import RecordedEvent, load_checkpoint, read_feed, save_checkpoint
from bus.gcpolicy import freeze_startup_heap
from schemas.envelope import EventMessage
from schemas.secrets import mask

log = logging.getLogger("chatbus.relay")

RELAY_LOCK = 7_245_002
CHECKPOINT = "relay"
# A publish in flight to a stream leader that dies is never answered: the batch is sent again after
# this (duplicates are dropped by Nats-Msg-Id), so it bounds how long the feed stalls on a node failure.
ACK_TIMEOUT = 5.0
# The shortest time between two batches that were not full: under a stream of commits each batch
# then carries a few milliseconds of them (one feed read, one ack wait, one checkpoint commit)
# instead of one read, ack wait and fsync'd checkpoint per command.
MIN_BATCH_INTERVAL = 0.005
# The checkpoint (a committed, fsync'd write) is saved at most this often while events flow, and as
# soon as they stop. A crash republishes what was acked since, and the stream's duplicate window
# (hours, bus/nats_conn.py) drops the copies by Nats-Msg-Id, as it does for a batch cut short.
CHECKPOINT_INTERVAL = 0.1
# Commits within this long of a wake-up share the next one (the relay batches no more often).
WAKE_INTERVAL = MIN_BATCH_INTERVAL
_encode = msgspec.json.Encoder().encode


def coalesced_wake(send: Callable[[], None], interval: float = WAKE_INTERVAL) -> Callable[[], None]:
    """A writer's relay wake-up (the store's `on_commit`): sent at once after a quiet spell, so a lone
    commit is published without delay, then at most once per `interval`, so that a burst of commits
    shares one NATS message instead of one each. Every call is followed by a send that comes after it."""
    pending = False
    sent_at = float("-inf")

    def fire() -> None:
        nonlocal pending, sent_at
        pending = False
        sent_at = asyncio.get_running_loop().time()
        send()

    def wake() -> None:
        nonlocal pending
        if pending:
            return
        loop = asyncio.get_running_loop()
        wait = sent_at + interval - loop.time()
        if wait <= 0:
            fire()
        else:
            pending = True
            loop.call_later(wait, fire)

    return wake


def to_message(event: RecordedEvent) -> EventMessage:
    data = mask(event.data)
    return EventMessage(
        id=event.event_id,
        type=event.event_type,
        stream=event.stream_id,
        version=event.stream_version,
        position=event.global_position,
        data=data,
        metadata=event.metadata,
        timestamp=event.recorded_at,
        schema_version=event.schema_version,
    )


class Relay:
    def __init__(
        self,
        dsn: str,
        nc: NATS,
        catalog: EventCatalog,
        *,
        batch: int = 1000,
        poll_interval: float = 0.5,
        min_interval: float = MIN_BATCH_INTERVAL,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.nc = nc
        self.catalog = catalog
        self.js = nc.jetstream(timeout=10)
        self.batch = batch
        self.poll_interval = poll_interval
        self.min_interval = min_interval
        self.on_published = on_published
        self._wake = asyncio.Event()
        self._position: tuple[int, int] | None = None
        self._saved: tuple[int, int] | None = None  # the checkpoint as last saved
        self._saved_at = float("-inf")

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        # Only the leader moves the checkpoint, so after the first read it is known in memory.
        if self._position is None:
            self._position = self._saved = await load_checkpoint(conn, CHECKPOINT)
        tx, pos = self._position
        events = await read_feed(conn, tx, pos, self.batch)
        if not events:
            await self.save_position(conn)  # caught up: the checkpoint need not lag any more
            return 0
        # Published in feed order, acks awaited together: one round trip per batch, not per event.
        acks = [
            await self.js.publish_async(
                self._subject(e.event_type),
                _encode(to_message(e)),
                headers={"Nats-Msg-Id": str(e.event_id)},
            )
            for e in events
        ]
        await asyncio.wait_for(asyncio.gather(*acks), ACK_TIMEOUT)
        self._position = (events[-1].transaction_id, events[-1].global_position)
        if asyncio.get_running_loop().time() - self._saved_at >= CHECKPOINT_INTERVAL:
            await self.save_position(conn)
        if self.on_published:
            self.on_published(len(events))
        return len(events)

    async def save_position(self, conn: asyncpg.Connection) -> None:
        """Save the position of the last acked event, if it moved since the last save."""
        if self._position is None or self._position == self._saved:
            return
        await save_checkpoint(conn, CHECKPOINT, *self._position)
        self._saved = self._position
        self._saved_at = asyncio.get_running_loop().time()

    def _subject(self, event_type: str) -> str:
        try:
            return subjects.event(self.catalog.domain_of(event_type), event_type)
        except UnknownEventType:
            # The store refuses undeclared types, so this is a type whose domain was removed: it is
            # still published (the feed must not stall) but under a subject that says so.
            log.error("event type %s is declared by no domain; published as events.unknown.%s", event_type, event_type)
            return subjects.event("unknown", event_type)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._lead(stop)
            except TimeoutError:
                # Before the OSError clause: since Python 3.11 TimeoutError is an OSError, and it is
                # mostly JetStream's acks not arriving (a stream leader moving), not a lost database.
                log.warning("relay timed out (JetStream acks or a query), resuming at the checkpoint", exc_info=True)
            except (asyncpg.PostgresError, *db.UNAVAILABLE):
                log.warning("relay lost its database connection, retrying", exc_info=True)
            except Exception:
                log.exception("relay failed, restarting")
            if not stop.is_set():
                await _sleep_or_stop(stop, 1.0)

    async def _lead(self, stop: asyncio.Event) -> None:
        conn = await db.connect(self.dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                if await _sleep_or_stop(stop, 1.0):
                    return
            log.info("relay is the leader")
            freeze_startup_heap()  # publishing from now on (bus/gcpolicy.py)
            self._position = None  # read the checkpoint afresh: another leader may have moved it

            async def wake(_msg: object) -> None:
                self._wake.set()

            # Workers publish a wake-up after each commit; the poll interval covers a lost one.
            wake_sub = await self.nc.subscribe(subjects.RELAY_WAKE, cb=wake)
            try:
                await self._publish_until(conn, stop)
                await self.save_position(conn)  # stopping: leave nothing to republish
            finally:
                await wake_sub.unsubscribe()
        finally:
            await conn.close()

    async def _publish_until(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()
            started = loop.time()
            if await self.publish_batch(conn) < self.batch:
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                # Woken early: let the commits of the next few milliseconds join this one's batch.
                linger = started + self.min_interval - loop.time()
                if linger > 0 and not stop.is_set():
                    await _sleep_or_stop(stop, linger)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except TimeoutError:
        return False
