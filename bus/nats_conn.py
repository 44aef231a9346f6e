"""NATS connection with reconnects and logged errors, and the JetStream streams chatbus needs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from bus import subjects

log = logging.getLogger("chatbus.nats")


# How long ensure_streams waits for JetStream to answer: a cluster that has just started elects its
# meta leader first (a few seconds), and `chatbus migrate` may run right then.
JETSTREAM_READY_TIMEOUT = 30.0
# A node that hangs or is cut off keeps its sockets open: only unanswered PINGs tell, and nats-py's
# default (120 s, 2 outstanding) leaves a client on such a node for up to 6 minutes. With these it
# moves to another node of the cluster within ~9 s; a PING every 3 s per connection costs nothing.
PING_INTERVAL = 3
MAX_OUTSTANDING_PINGS = 2


def split_servers(url: str) -> tuple[list[str], dict[str, Any]]:
    """CHATBUS_NATS_URL, one URL or several comma-separated (the nodes of a cluster), as nats-py's
    `servers` and the credentials to log in with.

    When every URL carries the same credentials they move to the connection options and the URLs
    lose them: a cluster gossips its other nodes' addresses (INFO connect_urls) without credentials,
    and nats-py, which matches servers by their URL's netloc, would otherwise add those as more
    servers it then fails to log in to on every reconnect."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    parts = [urlsplit(u) for u in servers]
    creds = {(p.username, p.password) for p in parts}
    if len(creds) != 1:
        return servers, {}  # different credentials per server: leave them in the URLs
    user, password = creds.pop()
    if user is None:
        return servers, {}
    bare = [urlunsplit(p._replace(netloc=p.netloc.rpartition("@")[2])) for p in parts]
    if password is None:
        return bare, {"token": unquote(user)}
    return bare, {"user": unquote(user), "password": unquote(password)}


async def connect(url: str, *, name: str, connect_timeout: float = 2.0) -> NATS:
    async def error_cb(e: Exception) -> None:
        log.warning("nats error (%s): %r", name, e)

    async def disconnected_cb() -> None:
        nc = connection.get("nc")
        if nc is not None and (nc.is_closed or nc.is_draining):
            log.debug("nats connection closed (%s)", name)  # a shutdown, not an outage
        else:
            log.warning("nats disconnected (%s)", name)

    async def reconnected_cb() -> None:
        log.info("nats reconnected (%s)", name)

    connection: dict[str, NATS] = {}
    servers, credentials = split_servers(url)
    nc = await nats.connect(
        servers=servers,
        **credentials,
        name=name,
        connect_timeout=connect_timeout,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        ping_interval=PING_INTERVAL,
        max_outstanding_pings=MAX_OUTSTANDING_PINGS,
        allow_reconnect=True,
        error_cb=error_cb,
        disconnected_cb=disconnected_cb,
        reconnected_cb=reconnected_cb,
        pending_size=64 * 1024 * 1024,
    )
    connection["nc"] = nc
    return nc


async def ensure_streams(nc: NATS, *, replicas: int = 1) -> None:
    """Create the streams chatbus needs if they are missing; existing ones are left as the operator
    set them."""
    await _ensure_stream(nc, _events_stream(replicas))
    await _ensure_stream(nc, _rate_limit_stream(replicas))
    await _ensure_stream(nc, _inbound_stream(replicas))


# JetStream API errors that a starting cluster answers for a while: no meta leader, or fewer peers
# known than the stream's replicas ("no suitable peers for placement").
_NOT_READY = (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)
_NO_PEERS_YET = 10005


async def _ensure_stream(nc: NATS, config: StreamConfig) -> None:
    js = nc.jetstream()
    deadline = time.monotonic() + JETSTREAM_READY_TIMEOUT
    while True:
        try:
            await _create_if_missing(js, config)
            return
        except (*_NOT_READY, BadRequestError) as exc:
            if isinstance(exc, BadRequestError) and exc.err_code != _NO_PEERS_YET:
                raise RuntimeError(f"cannot create JetStream stream {config.name}: {exc}") from exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"JetStream not ready for stream {config.name}: {exc!r}") from exc
            log.info("waiting for JetStream (%r)", exc)
            await asyncio.sleep(0.5)


async def _create_if_missing(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(config.name or "")
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if "already in use" not in str(exc):
            raise
        log.info("stream %s created concurrently by another process", config.name)


def _rate_limit_stream(replicas: int) -> StreamConfig:
    """Global request counters (ADR-49 counter stream, NATS 2.12+): one subject per client per
    window; memory storage, since losing counters on a restart only forgives a minute."""
    return StreamConfig(
        name=subjects.RATE_LIMIT_STREAM,
        subjects=[subjects.RATE_LIMIT_WILDCARD],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.MEMORY,
        num_replicas=replicas,
        max_age=180,
        max_msgs_per_subject=1,
        allow_msg_counter=True,
        allow_direct=True,
    )


def _inbound_stream(replicas: int) -> StreamConfig:
    """Platform messages waiting for the pipeline (DESIGN.md "Platforms"): a work queue, each message
    taken by one worker; a bot's replay of a message within the window is dropped by its id."""
    return StreamConfig(
        name=subjects.INBOUND_STREAM,
        subjects=[subjects.INBOUND_WILDCARD],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=2 * 60 * 60,
        num_replicas=replicas,
        max_age=24 * 3600,
    )


def _events_stream(replicas: int) -> StreamConfig:
    """The duplicate window covers relay restarts: a republished event is dropped by its id."""
    return StreamConfig(
        name=subjects.EVENTS_STREAM,
        subjects=[subjects.EVENTS_WILDCARD],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=2 * 60 * 60,
        num_replicas=replicas,
        max_age=30 * 24 * 3600,
    )


async def flush_in_order(nc: NATS, timeout: int = 2) -> None:
    """Return once the server has processed everything sent so far (SUBs, PUBs) on `nc`.

    nats-py 2.16's `flush()` writes its PING straight to the socket, ahead of commands still waiting for the
    client's flusher task, so its PONG can come back before an earlier SUB or PUB has reached the server.
    That flusher task is woken before the first PING goes out and runs before the PONG can be read, so a
    second PING is behind those commands on the wire."""
    await nc.flush(timeout)
    await nc.flush(timeout)
