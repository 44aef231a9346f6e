"""Live streams (API.md §10): WS /ws and GET /api/events/sse, both fed by the edge's EventHub.

Both carry every domain event (and /ws the logs of every service), so they are for admin tokens only: a
group-scoped token gets 403 on SSE, and on /ws an error frame and a close (1008) right after the accept."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, WebSocket, get, websocket
from litestar.connection import ASGIConnection
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import BaseRouteHandler
from litestar.response import Stream

from api.envelope import ApiError
from api.hub import HubEvent
from api.loghub import LogLine, log_frame, loghub_of
from api.routes.onebot import is_bot, serve_bot
from api.security import principal_of, require_admin, require_auth
from api.state import edge_of
from schemas.logs import LogEntry
from services.logs.queries import recent_logs

log = logging.getLogger("chatbus.streams")

CHANNELS = frozenset({"events", "logs"})
SSE_KEEPALIVE = 15.0
LOG_HISTORY = 100  # lines a new `logs` subscriber gets before live ones (API.md §10)
EVENT_OUTBOX_LIMIT = 2000  # frames waiting for a slow socket beyond which it is closed
LOG_OUTBOX_LIMIT = 1000  # frames waiting for a slow socket beyond which live log lines are dropped
MAX_SEQUENCE = 2**63 - 2  # the highest Last-Event-ID whose successor is still a JetStream sequence
POLICY_VIOLATION = 1008


class ClientFrame(msgspec.Struct):
    action: str
    channels: list[str] = []


_frame_decoder = msgspec.json.Decoder(ClientFrame)
_encode = msgspec.json.Encoder().encode


ADMIN_ONLY = "the live streams carry every group's events and every service's logs: they need an admin token"


def ws_event_frame(event: HubEvent) -> bytes:
    return b'{"channel":"events","data":' + event.body + b"}"


async def _auth_unless_bot(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    # A OneBot client (X-Self-ID) on /ws is checked against its platform's token in serve_bot instead.
    if not is_bot(connection):
        await require_auth(connection, handler)


@websocket("/ws", guards=[_auth_unless_bot])
async def ws_endpoint(socket: WebSocket[Any, Any, Any]) -> None:
    if is_bot(socket):
        await serve_bot(socket)
        return
    await socket.accept()
    if not principal_of(socket).is_admin:
        # Accepted first, so that the client can read why: a browser sees no reason for a refused handshake.
        await socket.send_data(_encode({"type": "error", "code": "FORBIDDEN", "message": ADMIN_ONLY}).decode())
        await socket.close(code=POLICY_VIOLATION, reason="FORBIDDEN")
        return
    hub = edge_of(socket).hub
    subscribed: set[str] = set()
    queue = hub.listen()
    outbox: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pump_events() -> None:
        while True:
            event = await queue.get()
            if event is None:
                await outbox.put(None)
                return
            if "events" in subscribed:
                if outbox.qsize() > EVENT_OUTBOX_LIMIT:
                    # The socket does not keep up: cut it off rather than buffer without end.
                    await outbox.put(None)
                    return
                await outbox.put(ws_event_frame(event))

    async def send_loop() -> None:
        while (frame := await outbox.get()) is not None:
            await socket.send_data(frame.decode(), mode="text")
        await socket.close(code=1013, reason="too slow or shutting down")

    logs = _LogSubscription(socket, outbox)
    tasks = [asyncio.create_task(pump_events()), asyncio.create_task(send_loop())]
    try:
        while True:
            raw = await socket.receive_data(mode="text")
            try:
                frame = _frame_decoder.decode(raw)
            except (msgspec.DecodeError, RecursionError) as exc:  # a frame nested too deep, too
                await outbox.put(_encode({"type": "error", "message": f"bad frame: {exc}"}))
                continue
            unknown = [c for c in frame.channels if c not in CHANNELS]
            if frame.action == "ping":
                await outbox.put(b'{"type":"pong"}')
            elif frame.action in ("subscribe", "unsubscribe") and unknown:
                await outbox.put(_encode({"type": "error", "message": f"unknown channels: {unknown}"}))
            elif frame.action == "subscribe":
                subscribed.update(frame.channels)
                # Listen before the reply, so that a line logged after it reaches the client.
                if "logs" in frame.channels and not await logs.listen():
                    subscribed.discard("logs")
                    await outbox.put(_encode({"type": "error", "message": "the logs channel is unavailable"}))
                await outbox.put(_encode({"type": "subscribed", "channels": sorted(subscribed)}))
                if "logs" in frame.channels:
                    logs.start_pump()
            elif frame.action == "unsubscribe":
                subscribed.difference_update(frame.channels)
                if "logs" in frame.channels:
                    await logs.stop()
                await outbox.put(_encode({"type": "unsubscribed", "channels": sorted(subscribed)}))
            else:
                await outbox.put(_encode({"type": "error", "message": f"unknown action {frame.action!r}"}))
    except WebSocketDisconnect:
        pass
    finally:
        hub.unlisten(queue)
        await logs.stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _line_key(entry: LogEntry) -> tuple[Any, ...]:
    return (entry.timestamp, entry.instance_id, entry.logger, entry.message)


class _LogSubscription:
    """One socket's `logs` channel: the last LOG_HISTORY stored lines (oldest first), then live lines from
    the edge's LogHub. Listening starts before the history is read, so a line stored meanwhile arrives both
    ways; such repeats are skipped. Live lines are dropped while the socket is too slow to keep up."""

    def __init__(self, socket: WebSocket[Any, Any, Any], outbox: asyncio.Queue[bytes | None]) -> None:
        self.socket = socket
        self.outbox = outbox
        self.queue: asyncio.Queue[LogLine | None] | None = None
        self.task: asyncio.Task[None] | None = None

    async def listen(self) -> bool:
        if self.queue is None:
            try:
                self.queue = await loghub_of(self.socket).listen()
            except Exception:  # the bus is down; the client may subscribe again later
                return False
        return True

    def start_pump(self) -> None:
        if self.task is None and self.queue is not None:
            self.task = asyncio.create_task(self._pump(self.queue))

    async def _pump(self, queue: asyncio.Queue[LogLine | None]) -> None:
        try:
            history = await recent_logs(edge_of(self.socket).pool, LOG_HISTORY)
        except Exception:
            history = []
            await self.outbox.put(_encode({"type": "error", "message": "log history is unavailable"}))
        for entry in history:
            await self.outbox.put(log_frame(entry))
        seen = {_line_key(entry) for entry in history}
        while (line := await queue.get()) is not None:
            if self.outbox.qsize() >= LOG_OUTBOX_LIMIT or (seen and _line_key(line.entry) in seen):
                continue
            await self.outbox.put(line.frame)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        queue, self.queue = self.queue, None
        if queue is not None:
            await loghub_of(self.socket).unlisten(queue)


def sse_frame(event: HubEvent) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.sequence, event.type.encode(), event.body)


async def _with_keepalive(source: AsyncIterator[HubEvent | None]) -> AsyncIterator[HubEvent | None]:
    """Yields None when nothing came for a while, so that a comment line keeps proxies from closing."""
    iterator = aiter(source)
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=SSE_KEEPALIVE)
            if not done:
                yield None
                continue
            item = pending.result()
            pending = None
            yield item
    finally:
        if pending is not None:
            pending.cancel()


def _last_event_id(raw: str | None) -> int | None:
    """The sequence to resume after: ASCII digits only (str.isdigit also takes '²', which int() refuses)."""
    if raw is None:
        return None
    given = raw.strip()
    if not (given.isascii() and given.isdigit()) or len(given) > 19 or int(given) > MAX_SEQUENCE:
        raise ApiError("VALIDATION_ERROR", f"Last-Event-ID must be an event sequence number, 0..{MAX_SEQUENCE}")
    return int(given)


@get("/api/events/sse", guards=[require_admin], tags=["streams"])
async def events_sse(request: Request[Any, Any, Any], types: str | None = None) -> Stream:
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    last_id = _last_event_id(request.headers.get("last-event-id"))
    hub = edge_of(request).hub

    # Listen before answering: once the client has the response headers, no event is missed.
    queue = hub.listen() if last_id is None else None

    async def live() -> AsyncIterator[HubEvent]:
        assert queue is not None
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            hub.unlisten(queue)

    source = hub.replay_from(last_id + 1) if last_id is not None else live()

    async def frames() -> AsyncIterator[bytes]:
        yield b": connected\nretry: 2000\n\n"
        async for event in _with_keepalive(source):
            if event is None:
                yield b": keepalive\n\n"
            elif wanted is None or event.type in wanted:
                yield sse_frame(event)

    return Stream(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
