"""Structured log entries (API.md §9 "Logs", §10 `logs` channel), as published on `logs.<service>.<level>`,
stored by the log sink and returned by `GET /api/logs`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error", "critical")


class LogEntry(msgspec.Struct, rename="camel", kw_only=True):
    timestamp: datetime  # UTC
    level: str  # one of LOG_LEVELS for chatbus's own lines; a custom level name otherwise
    service: str  # "edge" | "worker" | "relay" | any outside publisher
    instance_id: str = ""
    logger: str = ""
    message: str
    request_id: str | None = None
    extra: dict[str, Any] = {}


log_entry_encoder = msgspec.json.Encoder()
log_entry_decoder = msgspec.json.Decoder(LogEntry)
