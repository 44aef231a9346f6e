"""A running chatbus for end-to-end tests: real edges, workers and relay against real NATS/Postgres."""

from __future__ import annotations

from typing import Any

import httpx

from bus import db
from chatbus.runtime import (
    EdgeServer,
    RelayProcess,
    WorkerProcess,
    bootstrap,
    edge_config,
    shared_jwt_secret,
    start_edge,
    start_relay,
    start_workers,
)
from services.config.handlers import set_config
from services.registry import make_store

ADMIN_PASSWORD = "test-admin-password"
# Tests make many requests per minute; the rate-limit tests lower it through the API.
TEST_RATE_LIMIT = 1_000_000


class Stack:
    def __init__(self, nats_url: str, dsn: str) -> None:
        self.nats_url = nats_url
        self.dsn = dsn
        self.edges: list[EdgeServer] = []
        self.workers: list[WorkerProcess] = []
        self.relay: RelayProcess | None = None
        self.clients: list[httpx.AsyncClient] = []
        self.secret = ""
        self._token: str | None = None

    async def start(
        self, *, edges: int = 1, workers: int = 1, relay: bool = True, rate_limit: int = TEST_RATE_LIMIT
    ) -> None:
        await bootstrap(self.dsn, self.nats_url, "admin", ADMIN_PASSWORD)
        self.secret = await shared_jwt_secret(self.dsn)
        await self.set_config({"rateLimit": {"requestsPerMinute": rate_limit}})
        for _ in range(workers):
            await self.add_worker()
        if relay:
            self.relay = await start_relay(self.nats_url, self.dsn)
        for _ in range(edges):
            await self.add_edge()

    async def set_config(self, patch: dict[str, Any]) -> None:
        """Change the config directly in the store (set-up, not the behaviour under test)."""
        pool = await db.create_pool(self.dsn, max_size=1)
        try:
            reply = await set_config(make_store(pool), patch)
            assert reply.ok, reply.error
        finally:
            await pool.close()

    async def add_worker(self) -> WorkerProcess:
        worker = await start_workers(self.nats_url, self.dsn, pool_size=5)
        self.workers.append(worker)
        return worker

    async def add_edge(self, **config: Any) -> EdgeServer:
        edge = await start_edge(edge_config(self.nats_url, self.dsn, self.secret, db_pool_size=5, **config))
        self.edges.append(edge)
        return edge

    def client(self, edge: int = 0, *, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.AsyncClient(base_url=self.edges[edge].url, headers=headers, timeout=15)
        self.clients.append(c)
        return c

    async def login(self, edge: int = 0) -> str:
        async with httpx.AsyncClient(base_url=self.edges[edge].url, timeout=15) as c:
            r = await c.post("/api/auth/login", json={"password": ADMIN_PASSWORD})
            assert r.status_code == 200, r.text
            return str(r.json()["data"]["token"])

    async def admin(self, edge: int = 0) -> httpx.AsyncClient:
        """An authenticated client (one login per stack, reused)."""
        if self._token is None:
            self._token = await self.login(edge)
        return self.client(edge, token=self._token)

    async def stop(self) -> None:
        for c in self.clients:
            await c.aclose()
        for edge in self.edges:
            await edge.stop()
        if self.relay is not None:
            await self.relay.stop()
        for worker in self.workers:
            await worker.stop()
