"""Audit read models (API.md §11): raw events of the log, as an administrator sees them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class AuditEvent(msgspec.Struct, kw_only=True, rename="camel"):
    """One stored event. `data` has its secrets removed; `metadata` keys are camelCase
    (actor, commandId, requestId, clientIp, correlationId, causationId, ...)."""

    position: int
    id: uuid.UUID
    stream: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


class StreamHistory(msgspec.Struct, kw_only=True, rename="camel"):
    stream_id: str
    version: int
    events: list[AuditEvent]
