"""Running the three roles (edge, worker, relay) and the one-time bootstrap, in-process.

The CLI runs each in its own process; tests use the same functions to run them inside a test.
The edge's modules (api/, Litestar, uvicorn) load only in the functions that start an edge: a worker
process never imports them (~10 MiB of RSS it would carry for nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
from nats.aio.client import Client as NATS

from bus import crypto, db, nats_conn, subjects
from bus.eventstore import EventStore
from bus.heartbeat import Heartbeat
from bus.migrate import migrate
from bus.nats_conn import flush_in_order
from bus.relay import Relay, coalesced_wake
from bus.worker import WorkerRuntime
from chatbus.edgerun import edge_config, shared_jwt_secret, uvicorn_config  # noqa: F401  (re-exported)
from services import registry
from services.auth.handlers import ensure_admin
from services.channels.providers.registry import HttpClients
from services.config.cache import ConfigCache
from services.logs.sink import LogSink, start_log_sink
from services.pipeline.worker import ACK_WAIT as PIPELINE_ACK_WAIT
from services.pipeline.worker import Pipeline
from services.presets.bootstrap import ensure_system_presets

if TYPE_CHECKING:
    import uvicorn

    from api.config import EdgeConfig

log = logging.getLogger("chatbus")

# `pipeline` is no command domain: the INBOUND consumer (services/pipeline), run by workers like one.
PIPELINE = "pipeline"
ALL_DOMAINS = (*registry.DOMAINS, PIPELINE)


async def migrate_database(dsn: str) -> list[str]:
    conn = await db.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def bootstrap(
    dsn: str, nats_url: str, admin_username: str, admin_password: str, *, jetstream_replicas: int = 1
) -> str | None:
    """Migrations, the EVENTS stream, system presets and the admin. Returns a generated admin
    password (to print once) when the admin was created just now without CHATBUS_ADMIN_PASSWORD."""
    await migrate_database(dsn)
    nc = await nats_conn.connect(nats_url, name="chatbus-bootstrap")
    try:
        await nats_conn.ensure_streams(nc, replicas=jetstream_replicas)
    finally:
        await nc.drain()
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = registry.make_store(pool)
        await ensure_system_presets(store)
        return await ensure_admin(store, admin_username, admin_password or None)
    finally:
        await pool.close()


@dataclass
class WorkerProcess:
    nc: NATS
    pool: asyncpg.Pool
    config: ConfigCache
    heartbeat: Heartbeat
    http: HttpClients
    runtimes: list[WorkerRuntime] = field(default_factory=list)
    log_sink: LogSink | None = None
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    pipeline: Pipeline | None = None

    async def stop(self) -> None:
        await self.heartbeat.stop()
        if self.pipeline is not None:
            await self.pipeline.stop()
        for runtime in self.runtimes:
            await runtime.stop()
        for close in self.on_stop:
            try:
                await close()
            except Exception:
                log.exception("a domain's resource did not stop cleanly")
        if self.log_sink is not None:
            await self.log_sink.stop()
        await self.http.aclose()
        await self.config.stop()
        with contextlib.suppress(Exception):
            await self.nc.drain()
        await self.pool.close()


async def start_workers(
    nats_url: str,
    dsn: str,
    domains: Sequence[str] = ALL_DOMAINS,
    *,
    concurrency: int = 64,
    pool_size: int = 10,
    name: str = "worker",
    pipeline_ack_wait: float = PIPELINE_ACK_WAIT,
) -> WorkerProcess:
    unknown = [d for d in domains if d not in registry.DOMAINS and d != PIPELINE]
    if unknown:
        raise SystemExit(f"unknown domain(s) {unknown}; known: {', '.join(registry.DOMAINS)}")
    try:
        crypto.active()  # workers seal and open secrets: no key is a start-up error, not a failed command
    except crypto.SecretKeyError as exc:
        raise SystemExit(f"chatbus worker: {exc}") from exc
    nc = await nats_conn.connect(nats_url, name=name)
    pool = await db.create_pool(dsn, max_size=pool_size)
    pending: set[asyncio.Future[None]] = set()

    def wake_relay() -> None:
        if nc.is_connected:
            future = asyncio.ensure_future(nc.publish(subjects.RELAY_WAKE, b""))
            pending.add(future)
            future.add_done_callback(pending.discard)

    store: EventStore = registry.make_store(pool, on_commit=coalesced_wake(wake_relay))
    config = ConfigCache(pool, nc)
    await config.start()
    heartbeat = Heartbeat(nc, "worker", domain=",".join(domains))
    http = HttpClients()
    process = WorkerProcess(nc, pool, config, heartbeat, http)
    context = registry.WorkerContext(store, nc, config, http)
    process.on_stop = context.on_stop
    for domain in domains:
        if domain == PIPELINE:
            secret = await shared_jwt_secret(dsn, os.environ.get("CHATBUS_JWT_SECRET", ""))
            process.pipeline = Pipeline(context, secret, ack_wait=pipeline_ack_wait)
            await process.pipeline.start()
            continue
        runtime = WorkerRuntime(nc, domain, registry.DOMAINS[domain](context), concurrency=concurrency)
        await runtime.start()
        process.runtimes.append(runtime)
    # Every worker runs a sink; the `logsink` queue group stores each line once.
    process.log_sink = await start_log_sink(nc, pool)
    await flush_in_order(nc)
    await heartbeat.start()
    return process


@dataclass
class EdgeServer:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_edge(config: EdgeConfig, host: str = "127.0.0.1", port: int = 0) -> EdgeServer:
    """Run an edge inside the current event loop (tests, and `chatbus up`'s single-process mode)."""
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        """A uvicorn server that leaves signals to its host (a test, or a process with its own handlers)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says it is TCP; without it every kept-alive response waits ~40 ms on Nagle.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = EmbeddedServer(uvicorn_config(config, host, port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("edge stopped during start-up")
        await asyncio.sleep(0.01)
    return EdgeServer(server, task, sock.getsockname()[1])


@dataclass
class RelayProcess:
    relay: Relay
    stop_event: asyncio.Event
    task: asyncio.Task[None]
    nc: NATS
    heartbeat: Heartbeat
    owns_nc: bool = True  # False when it rides on a worker's connection (`chatbus worker --relay`)

    async def stop(self) -> None:
        await self.heartbeat.stop()
        self.stop_event.set()
        await self.task
        if self.owns_nc:
            with contextlib.suppress(Exception):
                await self.nc.drain()


async def start_relay(nats_url: str, dsn: str, *, batch: int = 1000, nc: NATS | None = None) -> RelayProcess:
    """The relay, on its own NATS connection, or on `nc` (a worker's, when both share a process):
    it still beats as its own `relay` instance and still holds its own leader connection to Postgres."""
    owns_nc = nc is None
    if nc is None:
        nc = await nats_conn.connect(nats_url, name="relay")
    await nats_conn.ensure_streams(nc)
    relay = Relay(dsn, nc, registry.CATALOG, batch=batch)
    stop = asyncio.Event()
    heartbeat = Heartbeat(nc, "relay")
    await heartbeat.start()
    return RelayProcess(relay, stop, asyncio.create_task(relay.run(stop)), nc, heartbeat, owns_nc)
