"""Structured logs (DESIGN.md "Bus": `logs.<service>.<level>`).

- `request_id`: a ContextVar holding the id of the request in hand (set by the edge per HTTP request and
  by the worker runtime per command), stamped on every record logged while it is set.
- `install_log_publisher`: a logging handler that publishes every record as a JSON `LogEntry`. Logging
  happens everywhere, from any thread, so `emit` only encodes and appends to a bounded buffer; a task on
  the connection's loop publishes. Nothing in the logging call ever waits for NATS.
- `configure_stderr_logging`: one line per record on stderr, written by a thread so that a slow or
  blocked stderr never stalls the event loop."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import logging
import logging.handlers
import queue
import re
import sys
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from bus import subjects
from bus.nats_conn import flush_in_order
from schemas.logs import LogEntry

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("chatbus_request_id", default=None)

# Set inside the publisher's own flush task, and in `emit` while it formats a record: whatever is logged
# there (by a library, or by an argument's __str__) would otherwise feed the very code that publishes it.
_publishing: contextvars.ContextVar[bool] = contextvars.ContextVar("chatbus_log_publishing", default=False)

MAX_MESSAGE_CHARS = 8_192
MAX_TRACEBACK_CHARS = 16_384
DEFAULT_CAPACITY = 10_000

_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# Attributes every LogRecord has; anything else on a record came from `extra=` and goes to `extra`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
}
_NOT_A_SUBJECT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def current_request_id() -> str | None:
    return request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    request_id.reset(token)


@contextlib.contextmanager
def request_id_scope(value: str | None) -> Iterator[None]:
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


def level_name(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno) or subject_token(record.levelname.lower())


def subject_token(text: str) -> str:
    """`text` made safe as one NATS subject token (no dots, spaces or wildcards)."""
    return _NOT_A_SUBJECT_TOKEN.sub("_", text) or "_"


def _is_nats_client_logger(name: str) -> bool:
    # nats-py logs about its own connection; publishing those through that connection could loop.
    return name == "nats" or name.startswith("nats.")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


_encoder = msgspec.json.Encoder(enc_hook=repr)  # anything JSON cannot hold travels as its repr


def record_to_entry(record: logging.LogRecord, service: str, instance_id: str) -> LogEntry:
    extra = {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRS}
    if record.exc_info and record.exc_info[0] is not None:
        text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        extra["exception"] = _truncate(text, MAX_TRACEBACK_CHARS)
    if record.stack_info:
        extra["stack"] = _truncate(record.stack_info, MAX_TRACEBACK_CHARS)
    # An explicit `extra={"request_id": ...}` wins: it is how code outside the request's context says whose it is.
    rid = record.__dict__.get("request_id") or request_id.get()
    return LogEntry(
        timestamp=datetime.fromtimestamp(record.created, UTC),
        level=level_name(record),
        service=service,
        instance_id=instance_id,
        logger=record.name,
        message=_truncate(record.getMessage(), MAX_MESSAGE_CHARS),
        request_id=str(rid) if rid is not None else None,
        extra=extra,
    )


def encode_entry(entry: LogEntry) -> bytes:
    try:
        return _encoder.encode(entry)
    except (TypeError, ValueError, OverflowError):
        # e.g. a dict with non-string keys in `extra`: keep the line, lose the structure.
        entry.extra = {key: repr(value) for key, value in entry.extra.items()}
        return _encoder.encode(entry)


class NatsLogHandler(logging.Handler):
    """Publishes every record to `logs.<service>.<level>`. Must be created on the loop that owns `nc`."""

    def __init__(
        self,
        nc: NATS,
        service: str,
        instance_id: str,
        *,
        capacity: int = DEFAULT_CAPACITY,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.nc = nc
        self.service = service
        self.instance_id = instance_id
        self.capacity = capacity
        self.published = 0
        self.dropped = 0  # buffer full, connection down, or publish refused
        self._subject_service = subject_token(service)
        self._buffer: deque[tuple[str, bytes]] = deque()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._closed = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._closed or _publishing.get() or _is_nats_client_logger(record.name):
            return
        token = _publishing.set(True)
        try:
            # Only the flush task takes from the buffer, so a length read here can only be too high.
            if len(self._buffer) >= self.capacity:
                self.dropped += 1
                return
            entry = record_to_entry(record, self.service, self.instance_id)
            self._buffer.append((subjects.logs(self._subject_service, entry.level), encode_entry(entry)))
            self._wake_flusher()
        except Exception:
            self.handleError(record)
        finally:
            _publishing.reset(token)

    def _wake_flusher(self) -> None:
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        elif not self._wake.is_set():
            # Another thread: asyncio objects are touched only through the loop. When the flag is already set
            # the flush task has not cleared it yet, so it will still see this record.
            with contextlib.suppress(RuntimeError):  # the loop is closed: the line is lost with it
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        _publishing.set(True)
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            await self.drain()

    async def drain(self) -> None:
        sent = 0
        while self._buffer:
            subject, data = self._buffer.popleft()
            if not self.nc.is_connected:
                self.dropped += 1
                continue
            try:
                await self.nc.publish(subject, data)
            except Exception:
                self.dropped += 1
                continue
            self.published += 1
            sent += 1
            if sent % 256 == 0:
                await asyncio.sleep(0)  # a burst of lines must not starve the loop

    def stop_accepting(self) -> None:
        self._closed = True
        self._wake.set()


class LogPublisher:
    """What `install_log_publisher` returns: counters, and `close()` to detach and send what is buffered."""

    def __init__(self, handler: NatsLogHandler, logger: logging.Logger, task: asyncio.Task[None]) -> None:
        self.handler = handler
        self.logger = logger
        self._task = task

    @property
    def published(self) -> int:
        return self.handler.published

    @property
    def dropped(self) -> int:
        return self.handler.dropped

    async def close(self, timeout: int = 2) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.stop_accepting()
        self.handler.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        token = _publishing.set(True)
        try:
            await self.handler.drain()
            if self.handler.nc.is_connected:
                with contextlib.suppress(Exception):
                    await flush_in_order(self.handler.nc, timeout)
        finally:
            _publishing.reset(token)


def install_log_publisher(
    nc: NATS,
    service: str,
    instance_id: str,
    *,
    logger: logging.Logger | None = None,
    level: int = logging.NOTSET,
    capacity: int = DEFAULT_CAPACITY,
) -> LogPublisher:
    """Publish every record that reaches `logger` (default: the root logger) on `logs.<service>.<level>`.
    Call it on the event loop that owns `nc`, once per process (two publishers publish every line twice)."""
    handler = NatsLogHandler(nc, service, instance_id, capacity=capacity, level=level)
    task = asyncio.get_running_loop().create_task(handler.run(), name=f"log-publisher-{service}")
    target = logger if logger is not None else logging.getLogger()
    target.addHandler(handler)
    return LogPublisher(handler, target, task)


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on the record while still in the caller's context (a queued handler
    formats the record later, on another thread, where the ContextVar is not set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in record.__dict__:
            record.request_id = request_id.get()
        return True


class StderrFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> [<request id>]: <message>`, the request id only when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        rid = record.__dict__.get("request_id")
        tag = f" [{rid}]" if rid else ""
        return f"{record.asctime} {record.levelname} {record.name}{tag}: {record.message}"


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    def __init__(self, records: queue.Queue[Any]) -> None:
        super().__init__(records)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1  # stderr cannot keep up; losing a line beats stalling the loop


class StderrLogging:
    """What `configure_stderr_logging` returns; `close()` writes out what is queued and detaches."""

    def __init__(self, handler: _DroppingQueueHandler, listener: logging.handlers.QueueListener) -> None:
        self.handler = handler
        self._listener: logging.handlers.QueueListener | None = listener
        self._previous_level = logging.getLogger().level

    @property
    def dropped(self) -> int:
        return self.handler.dropped

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        atexit.unregister(self.close)
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self._previous_level)
        listener.stop()


def configure_stderr_logging(level: str | int = "INFO", *, capacity: int = DEFAULT_CAPACITY) -> StderrLogging:
    """Log `level` and above from every logger to stderr, one line per record with the request id when set.
    Replaces `logging.basicConfig`; the NATS publisher, when installed, sees the same records."""
    numeric = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    records: queue.Queue[Any] = queue.Queue(capacity)
    handler = _DroppingQueueHandler(records)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(StderrFormatter())
    writer = logging.StreamHandler(sys.stderr)  # writes the line QueueHandler.prepare already formatted
    listener = logging.handlers.QueueListener(records, writer)
    root = logging.getLogger()
    result = StderrLogging(handler, listener)
    root.addHandler(handler)
    root.setLevel(numeric)
    listener.start()
    atexit.register(result.close)  # lines still queued at exit are written, not lost
    return result
