"""`chatbus` command line: up | edge | worker | relay | migrate | replay | admin set-password | secrets rotate |
schemas."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

# httpx imports its own command-line client when click and rich are installed (Litestar's CLI brings
# both): rich, click and pygments, ~7 MiB of RSS in every chatbus process that never runs it. A None
# entry makes that optional import fail, and httpx falls back to its stub.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
# nats-py imports aiohttp for its WebSocket transport, which chatbus never uses (it speaks NATS over
# TCP): ~8.7 MiB of RSS in every process. The import is refused while nats loads, then allowed again,
# so the LLM clients still load aiohttp on their first call (services/channels/providers/http.py).
if "aiohttp" not in sys.modules and "nats" not in sys.modules:
    sys.modules["aiohttp"] = None  # type: ignore[assignment]
    try:
        import nats.aio.transport  # noqa: F401
    finally:
        del sys.modules["aiohttp"]

from bus.logs import configure_stderr_logging, install_log_publisher
from chatbus.settings import Settings

log = logging.getLogger("chatbus")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbus", description="chatbus control plane")
    sub = parser.add_subparsers(dest="command", required=True)

    def listen_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="listen address (CHATBUS_HOST, default 127.0.0.1)")
        p.add_argument("--port", type=int, help="listen port (CHATBUS_PORT, default 6285)")

    up = sub.add_parser("up", help="run the whole system on this machine (embedded NATS and Postgres)")
    listen_flags(up)
    up.add_argument("--data-dir", help="where embedded NATS and Postgres keep data (CHATBUS_DATA_DIR, ./.chatbus)")

    edge = sub.add_parser("edge", help="run one HTTP edge instance")
    listen_flags(edge)
    edge.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # `chatbus up` hands its bound socket over
    worker = sub.add_parser("worker", help="run the command workers")
    worker.add_argument("--domain", action="append", help="serve only this domain (repeatable; default all)")
    worker.add_argument(
        "--relay", action="store_true", help="also run the relay in this process (as `chatbus up` does)"
    )
    sub.add_parser("relay", help="publish committed events to JetStream")
    migrate = sub.add_parser("migrate", help="apply database migrations and create the admin and system presets")
    # `chatbus up` runs its bootstrap through this: one JSON line back, the keyring made in the data dir.
    migrate.add_argument("--for-up", action="store_true", help=argparse.SUPPRESS)
    replay = sub.add_parser("replay", help="rebuild every read table from the event log")
    replay.add_argument("--batch", type=int, default=5000)
    replay.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a scratch schema and compare with the live tables, changing nothing; exit 1 on a difference",
    )
    replay.add_argument("--max-diffs", type=int, default=50, help="with --check: print at most this many lines")

    admin = sub.add_parser("admin", help="administration")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    setpw = admin_sub.add_parser("set-password", help="set (or create) a user's password")
    setpw.add_argument("--username", default=None, help="default: CHATBUS_ADMIN_USERNAME or admin")
    setpw.add_argument("--password", help="the new password (default: read from stdin or prompt)")

    secrets = sub.add_parser("secrets", help="secrets at rest")
    secrets_sub = secrets.add_subparsers(dest="secrets_command", required=True)
    secrets_sub.add_parser("rotate", help="new current key (kept with the old ones), every stored secret re-encrypted")

    plugin = sub.add_parser("plugin", help="plugin authoring")
    plugin_sub = plugin.add_subparsers(dest="plugin_command", required=True)
    pack = plugin_sub.add_parser("pack", help="build the upload zip of a plugin folder (checked like an upload)")
    pack.add_argument("dir")
    pack.add_argument("--out", help="the zip to write (default: <name>-<version>.zip)")

    schemas = sub.add_parser("schemas", help="export JSON Schemas of the published events")
    schemas.add_argument("--out", help="directory to write the schemas to (default: print)")
    return parser


def _apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(settings, name, value)
    if not 0 < settings.port < 65536:
        raise SystemExit(f"port must be 1..65535, got {settings.port}")
    return settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _apply_flags(Settings(), args)
    configure_stderr_logging(settings.log_level)
    if args.command == "up":
        from chatbus.up import run_up

        return run_up(settings)
    if args.command == "schemas":
        return _schemas(args.out)
    if args.command == "plugin":
        from services.plugins.pack import pack_to

        print(pack_to(args.dir, args.out))
        return 0
    if args.command == "admin":
        return asyncio.run(_set_password(settings, args.username, args.password))
    if args.command == "secrets":
        from chatbus.secrets_cli import rotate

        return asyncio.run(rotate(settings))
    settings.require_urls()
    if args.command == "edge":
        return _edge(settings, args.fd)
    runners = {
        "worker": lambda: _worker(settings, args.domain, relay=args.relay),
        "relay": lambda: _relay(settings),
        "migrate": lambda: _migrate(settings, for_up=args.for_up),
        "replay": lambda: _replay(settings, args.batch, check=args.check, max_diffs=args.max_diffs),
    }
    with contextlib.suppress(KeyboardInterrupt):
        return run_async(runners[args.command]())
    return 0


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run on uvloop when it is installed (it comes with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _edge(settings: Settings, fd: int | None = None) -> int:
    import socket

    from chatbus.edgerun import edge_config, load_uvicorn, shared_jwt_secret, uvicorn_config

    load_uvicorn()
    import uvicorn

    secret = asyncio.run(shared_jwt_secret(settings.database_url, settings.jwt_secret))
    config = edge_config(
        settings.nats_url,
        settings.database_url,
        secret,
        token_ttl=settings.token_ttl,
        session_max_age=settings.session_max_age,
        command_timeout=settings.command_timeout,
        public_url=settings.public_url,
        db_pool_size=settings.db_pool_size,
        trusted_proxies=tuple(p.strip() for p in settings.trusted_proxies.split(",") if p.strip()),
        publish_logs=True,
    )
    server = uvicorn.Server(uvicorn_config(config, settings.host, settings.port))
    server.run(sockets=[socket.socket(fileno=fd)] if fd is not None else None)
    return 0


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _worker(settings: Settings, domains: list[str] | None, *, relay: bool = False) -> int:
    from chatbus.runtime import ALL_DOMAINS, start_relay, start_workers

    process = await start_workers(
        settings.nats_url,
        settings.database_url,
        domains or ALL_DOMAINS,
        concurrency=settings.worker_concurrency,
        pool_size=settings.db_pool_size,
        pipeline_ack_wait=settings.pipeline_ack_wait,
    )
    # The relay is a light loop (one feed read and one JetStream batch per commit burst): inside a
    # worker it costs a leader connection, not a Python process of its own (docs/architecture.md).
    relay_process = (
        await start_relay(settings.nats_url, settings.database_url, batch=settings.relay_batch, nc=process.nc)
        if relay
        else None
    )
    publisher = install_log_publisher(process.nc, "worker", process.heartbeat.instance_id)
    log.info("worker serving %s%s", ", ".join(domains or ALL_DOMAINS), " and the relay" if relay else "")
    await _until_signal()
    await publisher.close()  # before the connection drains, so the last lines go out
    if relay_process is not None:
        await relay_process.stop()
    await process.stop()
    return 0


async def _relay(settings: Settings) -> int:
    from chatbus.runtime import start_relay

    relay = await start_relay(settings.nats_url, settings.database_url, batch=settings.relay_batch)
    publisher = install_log_publisher(relay.nc, "relay", relay.heartbeat.instance_id)
    await _until_signal()
    await publisher.close()
    await relay.stop()
    return 0


async def _migrate(settings: Settings, *, for_up: bool = False) -> int:
    from chatbus.runtime import ALL_DOMAINS, PIPELINE, bootstrap

    generated = await bootstrap(
        settings.database_url,
        settings.nats_url,
        settings.admin_username,
        settings.admin_password,
        jetstream_replicas=settings.jetstream_replicas,
    )
    if for_up:
        from bus import crypto

        crypto.load(settings.data_dir, create=True)  # the secret keyring: CHATBUS_SECRET_KEY, else made once (0600)
        # The domains whose workers `up` waits for before it opens the edge (the pipeline answers no _ping).
        print(json.dumps({"generated": generated, "domains": [d for d in ALL_DOMAINS if d != PIPELINE]}), flush=True)
        return 0
    if generated:
        print(f"admin user '{settings.admin_username}' created with password: {generated}", flush=True)
    return 0


async def _replay(settings: Settings, batch: int, *, check: bool = False, max_diffs: int = 50) -> int:
    from bus import db
    from bus.projections import rebuild
    from services.registry import PROJECTIONS

    if check:
        return await _replay_check(settings, batch, max(1, max_diffs))
    pool = await db.create_pool(settings.database_url, max_size=2)
    try:
        started = time.perf_counter()
        count = await rebuild(pool, PROJECTIONS, batch=batch)
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    rate = count / elapsed if elapsed else 0.0
    print(f"replayed {count} events into {len(PROJECTIONS)} projections in {elapsed:.2f}s ({rate:,.0f} events/s)")
    return 0


async def _replay_check(settings: Settings, batch: int, max_diffs: int) -> int:
    """0: every read table equals its rebuild from the log; 1: some differ (printed); 2: the check failed."""
    import asyncpg

    from bus import db
    from bus.projections import check
    from services.registry import PROJECTIONS

    pool = await db.create_pool(settings.database_url, max_size=1)
    try:
        started = time.perf_counter()
        report = await check(pool, PROJECTIONS, batch=batch, limit=max_diffs)
        elapsed = time.perf_counter() - started
    except asyncpg.PostgresError as exc:
        print(f"replay check failed: {exc}", file=sys.stderr)
        return 2
    finally:
        await pool.close()
    names = ", ".join(t.table for t in report.tables)
    if report.equal:
        print(
            f"replay check: {len(report.tables)} read tables ({names}) equal the log of {report.events} events"
            f" ({elapsed:.2f}s)"
        )
        return 0
    lines = [line for t in report.tables for d in t.differences for line in d.lines()]
    for line in lines[:max_diffs]:
        print(line)
    differing = [t for t in report.tables if t.differing_rows]
    total = sum(t.differing_rows for t in differing)
    if len(lines) > max_diffs or total > sum(len(t.differences) for t in differing):
        print(f"... (output limited to {max_diffs} lines)")
    summary = ", ".join(f"{t.table}: {t.differing_rows}" for t in differing)
    print(f"replay check: {total} rows differ from the log of {report.events} events ({summary})")
    return 1


async def _set_password(settings: Settings, username: str | None, password: str | None) -> int:

    username = username or settings.admin_username
    if password is None:
        password = getpass.getpass(f"new password for {username}: ") if sys.stdin.isatty() else sys.stdin.readline()
        password = password.rstrip("\n")
    if len(password) < 8:
        print("the password must have at least 8 characters", file=sys.stderr)
        return 2
    if settings.database_url:
        return await _store_password(settings.database_url, username, password)
    from chatbus.up import embedded_database, running_stack

    # A `chatbus up` holds the embedded Postgres: talk to it, with the credentials in its data dir.
    running = running_stack(settings.data_dir)
    if running is not None:
        return await _store_password(running["database_url"], username, password)
    with embedded_database(settings) as dsn:
        return await _store_password(dsn, username, password)


async def _store_password(dsn: str, username: str, password: str) -> int:
    import asyncpg

    from bus import db
    from chatbus.runtime import migrate_database
    from services.auth.handlers import set_password
    from services.registry import make_store

    try:
        await migrate_database(dsn)
        pool = await db.create_pool(dsn, max_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"cannot reach the database: {exc}", file=sys.stderr)
        return 1
    try:
        reply = await set_password(make_store(pool), username, password)
    finally:
        await pool.close()
    if not reply.ok:
        print(f"failed: {reply.error}", file=sys.stderr)
        return 1
    print(f"password of '{username}' set")
    return 0


def _schemas(out: str | None) -> int:
    from schemas.export import event_schemas
    from services.registry import CATALOG

    docs = event_schemas((t.domain, t.struct) for t in CATALOG)
    if out is None:
        print(json.dumps(docs, indent=2))
        return 0
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (folder / f"{name}.json").write_text(json.dumps(doc, indent=2))
    print(f"wrote {len(docs)} schemas to {folder}")
    return 0
