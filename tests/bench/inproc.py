"""Set-up shared by the in-process benches (`tests.bench.onebot`, `tests.bench.plugins`): embedded NATS and
Postgres, a fresh migrated database, and one edge, worker and relay in this process; plus the OneBot
platform and a fake NapCat connected to it. A lower bound of what separate processes do, comparable run
to run; `tests.bench.run` measures the same paths against separate processes."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import asyncpg
import httpx

from bus import crypto
from chatbus.runtime import migrate_database
from tests.bench.onebot import PLATFORM, Timed, platform_body
from tests.servers import start_servers
from tests.stack import Stack


@asynccontextmanager
async def in_process_stack() -> AsyncIterator[Stack]:
    """A started Stack on a database of its own; stopped, with its servers, on exit."""
    data = Path(tempfile.mkdtemp(prefix="chatbus-bench-"))
    os.environ["CHATBUS_DATA_DIR"] = str(data)  # plugins unpack under it
    crypto.install(crypto.load(data, create=True))
    with ExitStack() as servers_stack:
        servers_stack.callback(shutil.rmtree, data, ignore_errors=True)  # last out: after the stack stops
        servers = start_servers(servers_stack)
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(servers.pg_admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        dsn = servers.dsn_for(name)
        await migrate_database(dsn)
        stack = Stack(servers.nats_url, dsn)
        await stack.start()
        try:
            yield stack
        finally:
            await stack.stop()


@asynccontextmanager
async def onebot_bot(stack: Stack, c: httpx.AsyncClient) -> AsyncIterator[Timed]:
    """Creates the OneBot platform (admin client `c`) and connects a timed fake NapCat to the first edge."""
    r = await c.post("/api/platforms", json=platform_body())
    assert r.status_code == 201, f"creating platform {PLATFORM}: HTTP {r.status_code}: {r.text}"
    bot = Timed.to(stack.edges[0].url)
    await bot.connect()
    try:
        yield bot
    finally:
        await bot.close()
