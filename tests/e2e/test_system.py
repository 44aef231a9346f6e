"""System status, stats and health (API.md §9)."""

from __future__ import annotations

import asyncio

import pytest

from bus.heartbeat import live_instances
from tests.procs import kill, spawn
from tests.stack import Stack


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
        async with asyncio.timeout(20):
            while (
                len(
                    [
                        i
                        for i in await live_instances(stack.edges[0].server.config.app.state["edge"].nc)  # type: ignore[attr-defined]
                        if i.pid == worker.pid
                    ]
                )
                == 0
            ):
                await asyncio.sleep(0.2)
        kill(worker)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        c = await stack.admin()
        async with asyncio.timeout(20):
            while any(i["pid"] == worker.pid for i in (await c.get("/api/system/status")).json()["data"]["instances"]):
                await asyncio.sleep(0.5)
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
