"""The fixture layer: real NATS and Postgres for every test, each test on a fresh database and a
clean JetStream, and a `stack` of real edge + workers + relay for end-to-end tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import asyncpg
import pytest

from bus import crypto, db
from tests.servers import Servers, start_servers
from tests.stack import Stack

TEMPLATE_DB = "chatbus_test_template"
pytest_plugins = ["tests.plugin_fixtures"]


@pytest.fixture(scope="session", autouse=True)
def secret_keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[crypto.Keyring]:
    """The key in-process workers seal secrets with, as `chatbus up` would make it (a 0600 file)."""
    ring = crypto.load(tmp_path_factory.mktemp("data"), create=True)
    crypto.install(ring)
    yield ring
    crypto.install(None)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        servers = start_servers(stack)
        asyncio.run(_prepare_template(servers))
        yield servers


async def _prepare_template(servers: Servers) -> None:
    from chatbus.runtime import migrate_database

    admin = await asyncpg.connect(servers.pg_admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    finally:
        await admin.close()
    await migrate_database(servers.dsn_for(TEMPLATE_DB))


@pytest.fixture
async def database(servers: Servers) -> AsyncIterator[str]:
    """A fresh, migrated database for this test; its DSN."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(servers.pg_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    finally:
        await admin.close()
    yield servers.dsn_for(name)
    admin = await asyncpg.connect(servers.pg_admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def nats_url(servers: Servers) -> str:
    """The NATS server with JetStream emptied, so no test sees another's events."""
    from bus import nats_conn

    nc = await nats_conn.connect(servers.nats_url, name="test-reset")
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            await js.delete_stream(info.config.name)
    finally:
        await nc.close()
    return servers.nats_url


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(database, max_size=5)
    yield p
    await p.close()


@pytest.fixture
async def stack(nats_url: str, database: str) -> AsyncIterator[Stack]:
    """One edge, workers for every domain and the relay, in this test's event loop."""
    s = Stack(nats_url, database)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
