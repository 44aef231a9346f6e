"""Fan-out of live log lines (`logs.>`) to this edge's WebSocket `logs` subscribers.

One core-NATS subscription per edge, held only while at least one client listens: an edge nobody
watches does not receive every line of every service. Logs are lossy: a client too slow to keep up
misses lines instead of holding up the others. Nothing here logs per line, since the edge's own lines
come back through this hub."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import subjects
from bus.nats_conn import flush_in_order
from schemas.logs import LogEntry, log_entry_decoder, log_entry_encoder

QUEUE_SIZE = 1000


@dataclass(frozen=True)
class LogLine:
    entry: LogEntry
    frame: bytes  # the WebSocket frame, encoded once for every client


def log_frame(entry: LogEntry) -> bytes:
    return b'{"channel":"logs","data":' + log_entry_encoder.encode(entry) + b"}"


class LogHub:
    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.dropped = 0  # lines a slow client missed
        self.invalid = 0  # messages on logs.> that are not log entries
        self._listeners: set[asyncio.Queue[LogLine | None]] = set()
        self._sub: Subscription | None = None
        self._lock = asyncio.Lock()  # listen/unlisten race on the one subscription

    async def listen(self) -> asyncio.Queue[LogLine | None]:
        """A queue of live lines; the subscription is in place on the server when this returns."""
        queue: asyncio.Queue[LogLine | None] = asyncio.Queue(QUEUE_SIZE)
        async with self._lock:
            self._listeners.add(queue)
            if self._sub is None:
                try:
                    self._sub = await self.nc.subscribe(subjects.LOGS_WILDCARD, cb=self._on_msg)
                    await flush_in_order(self.nc)
                except Exception:
                    self._listeners.discard(queue)
                    raise
        return queue

    async def unlisten(self, queue: asyncio.Queue[LogLine | None]) -> None:
        async with self._lock:
            self._listeners.discard(queue)
            if not self._listeners:
                await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await sub.unsubscribe()

    async def _on_msg(self, msg: Msg) -> None:
        try:
            entry = log_entry_decoder.decode(msg.data)
        except msgspec.DecodeError:
            self.invalid += 1
            return
        line = LogLine(entry, log_frame(entry))
        for queue in list(self._listeners):
            try:
                queue.put_nowait(line)
            except asyncio.QueueFull:
                self.dropped += 1

    async def stop(self) -> None:
        for queue in list(self._listeners):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
        self._listeners.clear()
        await self._unsubscribe()


def loghub_of(connection: ASGIConnection[Any, Any, Any, Any]) -> LogHub:
    hub: LogHub = connection.app.state["loghub"]
    return hub
