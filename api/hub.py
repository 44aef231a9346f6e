"""Fan-out of the JetStream `EVENTS` stream to this edge's WebSocket and SSE clients.

One ordered consumer per edge feeds every live client; a client that resumes (SSE `Last-Event-ID`)
gets its own ordered consumer starting at the next sequence, so it sees no gap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from bus import subjects

log = logging.getLogger("chatbus.hub")

QUEUE_SIZE = 1000


@dataclass(frozen=True)
class HubEvent:
    sequence: int
    type: str
    body: bytes  # the EventMessage JSON as published by the relay
    domain: str = ""  # the subject's domain: events.<domain>.<type>


def _to_event(msg: Msg) -> HubEvent:
    parts = msg.subject.split(".")
    return HubEvent(msg.metadata.sequence.stream, parts[-1], msg.data, parts[1] if len(parts) > 2 else "")


class EventHub:
    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._listeners: set[asyncio.Queue[HubEvent | None]] = set()
        self._callbacks: list[Callable[[HubEvent], None]] = []
        self._sub: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        js = self.nc.jetstream()
        self._sub = await js.subscribe(
            subjects.EVENTS_WILDCARD, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, cb=self._on_msg
        )

    async def stop(self) -> None:
        for queue in list(self._listeners):
            self._offer(queue, None)
        sub = self._sub
        self._sub = None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                log.debug("hub unsubscribe failed", exc_info=True)

    def on_event(self, callback: Callable[[HubEvent], None]) -> None:
        """Call `callback` for every event this edge receives (in-process consumers)."""
        self._callbacks.append(callback)

    async def _on_msg(self, msg: Msg) -> None:
        event = _to_event(msg)
        for callback in self._callbacks:
            callback(event)
        for queue in list(self._listeners):
            self._offer(queue, event)

    def _offer(self, queue: asyncio.Queue[HubEvent | None], item: HubEvent | None) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            # A client too slow to keep up is cut off rather than slowing everyone else.
            self._listeners.discard(queue)
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)

    def listen(self) -> asyncio.Queue[HubEvent | None]:
        queue: asyncio.Queue[HubEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[HubEvent | None]) -> None:
        self._listeners.discard(queue)

    async def replay_from(self, start_sequence: int) -> AsyncIterator[HubEvent]:
        """Every event from `start_sequence` on, then live ones, from a consumer of its own."""
        queue: asyncio.Queue[HubEvent] = asyncio.Queue(QUEUE_SIZE)

        async def on_msg(msg: Msg) -> None:
            await queue.put(_to_event(msg))

        js = self.nc.jetstream()
        sub = await js.subscribe(
            subjects.EVENTS_WILDCARD,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=start_sequence),
            cb=on_msg,
        )
        try:
            while True:
                yield await queue.get()
        finally:
            try:
                await sub.unsubscribe()
            except Exception:
                log.debug("replay unsubscribe failed", exc_info=True)
