"""System status, stats and health (API.md §9)."""

from __future__ import annotations

import asyncio

import pytest

from bus.heartbeat import live_instances
from tests.procs import kill, spawn
from tests.stack import Stack
from tests.waiting import wait_until


async def test_status_lists_every_live_instance(nats_url: str, database: str) -> None:
    s = Stack(nats_url, database)
    await s.start(edges=2, workers=2)
    try:
        c = await s.admin()
        r = await c.get("/api/system/status")
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["version"] and data["uptime"] >= 0 and data["startedAt"]
        for name in ("nats", "jetstream", "postgres"):
            assert data["components"][name]["ok"] is True and data["components"][name]["latencyMs"] >= 0
        roles = sorted(i["role"] for i in data["instances"])
        assert roles == ["edge", "edge", "relay", "worker", "worker"]
        worker = next(i for i in data["instances"] if i["role"] == "worker")
        assert {"instanceId", "host", "pid", "lastHeartbeat", "domain"} <= set(worker)
        assert "presets" in worker["domain"]
        assert len({i["instanceId"] for i in data["instances"]}) == 5
    finally:
        await s.stop()


@pytest.mark.slow
async def test_a_killed_worker_disappears_within_15_seconds(stack: Stack) -> None:
    worker = spawn(["worker"], stack.nats_url, stack.dsn)
    try:
        nc = stack.edges[0].server.config.app.state["edge"].nc  # type: ignore[attr-defined]

        async def announced() -> bool:
            return any(i.pid == worker.pid for i in await live_instances(nc))

        await wait_until(announced, timeout=20, interval=0.2, message="the worker's heartbeat")
        kill(worker)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        c = await stack.admin()

        async def gone() -> bool:
            instances = (await c.get("/api/system/status")).json()["data"]["instances"]
            return not any(i["pid"] == worker.pid for i in instances)

        await wait_until(gone, timeout=20, interval=0.5, message="the killed worker leaves the status")
        assert loop.time() - killed_at <= 15.5
    finally:
        kill(worker)


async def test_stats_count_from_projections(stack: Stack) -> None:
    c = await stack.admin()
    await c.post("/api/presets", json={"id": "stat-one", "name": "one"})
    r = await c.get("/api/system/stats")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["presets"] == {"total": 3, "user": 1, "system": 2}
    assert data["users"] == 1 and data["eventLog"]["position"] > 0
    assert data["messages"] == {"total": 0, "today": 0, "byPlatform": {}}
    for key in ("tokens", "channels", "tools", "conversations"):
        assert key in data
    group = await stack.client().get("/api/system/stats")
    assert group.status_code == 401
