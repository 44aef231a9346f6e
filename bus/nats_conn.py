"""NATS connection with reconnects and logged errors, and the JetStream streams chatbus needs."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from bus import subjects

log = logging.getLogger("chatbus.nats")


async def connect(url: str, *, name: str, connect_timeout: float = 2.0) -> NATS:
    async def error_cb(e: Exception) -> None:
        log.warning("nats error (%s): %r", name, e)

    async def disconnected_cb() -> None:
        log.warning("nats disconnected (%s)", name)

    async def reconnected_cb() -> None:
        log.info("nats reconnected (%s)", name)

    return await nats.connect(
        servers=[u.strip() for u in url.split(",") if u.strip()],
        name=name,
        connect_timeout=connect_timeout,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
        error_cb=error_cb,
        disconnected_cb=disconnected_cb,
        reconnected_cb=reconnected_cb,
        pending_size=64 * 1024 * 1024,
    )


async def ensure_streams(nc: NATS, *, replicas: int = 1) -> None:
    """Create the EVENTS stream if it is missing; an existing one is left as the operator set it.
    The duplicate window covers relay restarts."""
    js = nc.jetstream()
    try:
        await js.stream_info(subjects.EVENTS_STREAM)
        return
    except NotFoundError:
        pass
    config = StreamConfig(
        name=subjects.EVENTS_STREAM,
        subjects=[subjects.EVENTS_WILDCARD],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=2 * 60 * 60,
        num_replicas=replicas,
        max_age=30 * 24 * 3600,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        log.info("EVENTS stream created concurrently by another process")
