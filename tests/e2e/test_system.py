"""System status, stats and health (API.md §9)."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest

from bus import heartbeat
from tests.fakes.clock import FakeClock
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


async def test_a_killed_worker_disappears_after_the_heartbeat_ttl(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker runs as a real process on the real clock; this process (edge, relay, worker, and the
    status read) runs on a clock the test moves to the killed worker's last beat plus the TTL."""
    clock = FakeClock(time.time())
    monkeypatch.setattr(heartbeat, "clock", clock)
    worker = spawn(["worker"], stack.nats_url, stack.dsn)
    try:
        nc = stack.edges[0].server.config.app.state["edge"].nc  # type: ignore[attr-defined]

        async def announced() -> heartbeat.Instance | None:
            return next((i for i in await heartbeat.live_instances(nc) if i.pid == worker.pid), None)

        await wait_until(announced, timeout=20, interval=0.2, message="the worker's heartbeat")
        kill(worker)
        last_beat = await announced()  # its last beat, read after it died
        assert last_beat is not None
        c = await stack.admin()

        async def pids() -> dict[str, list[int]]:
            instances = (await c.get("/api/system/status")).json()["data"]["instances"]
            found: dict[str, list[int]] = {}
            for i in instances:
                found.setdefault(i["role"], []).append(i["pid"])
            return found

        # Just inside the TTL the killed worker still counts as live (its entry has not expired).
        clock.now = datetime.fromisoformat(last_beat.last_heartbeat).timestamp() + heartbeat.TTL_SECONDS - 1
        assert worker.pid in (await pids())["worker"]
        # At the TTL it is gone, while the processes that beat on (every few seconds, here at once)
        # stay.
        clock.advance(1)
        edge_beat: heartbeat.Heartbeat = stack.edges[0].server.config.app.state["heartbeat"]  # type: ignore[attr-defined]
        assert stack.relay is not None
        for beat in (edge_beat, stack.relay.heartbeat, *(w.heartbeat for w in stack.workers)):
            await beat.beat()
        me = [os.getpid()]
        assert await pids() == {"edge": me, "relay": me, "worker": me}
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
