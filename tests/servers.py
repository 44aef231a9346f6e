"""Where the test suite's real NATS and Postgres come from (DESIGN.md "Tests"):
CHATBUS_TEST_NATS_URL / CHATBUS_TEST_DATABASE_URL if set, else testcontainers when a Docker engine
answers, else the embedded servers. Started once per session."""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from chatbus.devstack import EmbeddedNats, EmbeddedPostgres


@dataclass
class Servers:
    # Both carry the credentials the embedded servers generate (they refuse anonymous clients), so
    # every fixture and spawned process connects with them by just using these URLs.
    nats_url: str
    pg_admin_dsn: str  # a DSN whose database we can CREATE DATABASE from
    nats: EmbeddedNats | None = None  # set when embedded: fault tests can stop and restart it
    pg: EmbeddedPostgres | None = None

    def dsn_for(self, database: str) -> str:
        base, _, _ = self.pg_admin_dsn.rpartition("/")
        return f"{base}/{database}"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def start_servers(stack: ExitStack) -> Servers:
    nats_url = os.environ.get("CHATBUS_TEST_NATS_URL", "")
    pg_dsn = os.environ.get("CHATBUS_TEST_DATABASE_URL", "")
    servers = Servers(nats_url, pg_dsn)
    if (not nats_url or not pg_dsn) and _docker_answers():
        from testcontainers.core.container import DockerContainer
        from testcontainers.postgres import PostgresContainer

        if not pg_dsn:
            pg = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
            servers.pg_admin_dsn = pg.get_connection_url()
        if not nats_url:
            nats = stack.enter_context(DockerContainer("nats:2.12-alpine").with_command("-js").with_exposed_ports(4222))
            servers.nats_url = f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}"
        return servers
    workdir = Path(tempfile.mkdtemp(prefix="chatbus-test-"))
    if not nats_url:
        servers.nats = EmbeddedNats(workdir / "nats")
        servers.nats_url = servers.nats.start()
        stack.callback(lambda: servers.nats and servers.nats.stop())
    if not pg_dsn:
        servers.pg = EmbeddedPostgres(workdir / "postgres", durable=False, max_connections=300)  # every test's pools
        servers.pg.start()
        servers.pg_admin_dsn = servers.pg.dsn("postgres")
        stack.callback(lambda: servers.pg and servers.pg.stop())
    return servers
