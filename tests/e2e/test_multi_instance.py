"""Two edges and two workers: nothing depends on there being one of each."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.e2e.test_streams import next_event, recv_json, ws_url
from tests.stack import Stack


@pytest.fixture
async def pair(nats_url: str, database: str):  # type: ignore[no-untyped-def]
    s = Stack(nats_url, database)
    await s.start(edges=2, workers=2)
    try:
        yield s
    finally:
        await s.stop()


async def test_write_on_one_edge_read_on_the_other(pair: Stack) -> None:
    token = await pair.login(edge=0)
    one, two = pair.client(0, token=token), pair.client(1, token=token)
    assert (await one.post("/api/presets", json={"id": "cross-edge", "name": "X"})).status_code == 201
    r = await two.get("/api/presets", params={"search": "cross-edge"})
    assert [p["id"] for p in r.json()["data"]["items"]] == ["cross-edge"]
    assert (await two.put("/api/presets/cross-edge", json={"name": "Y"})).status_code == 200
    assert (await one.get("/api/presets/cross-edge")).json()["data"]["name"] == "Y"


async def test_token_revoked_on_one_edge_is_refused_on_the_other(pair: Stack) -> None:
    token = await pair.login(edge=0)
    one, two = pair.client(0, token=token), pair.client(1, token=token)
    assert (await two.get("/api/auth/verify")).status_code == 200  # edge 2 knows it as valid first
    assert (await one.post("/api/auth/logout")).status_code == 200
    r = await two.get("/api/auth/verify")
    assert r.status_code == 401 and r.json()["code"] == "INVALID_TOKEN"


async def test_events_from_either_worker_reach_ws_clients_on_either_edge(pair: Stack) -> None:
    token = await pair.login()
    async with (
        websockets.connect(ws_url(pair, token, 0)) as ws0,
        websockets.connect(ws_url(pair, token, 1)) as ws1,
    ):
        for ws in (ws0, ws1):
            await ws.send(json.dumps({"action": "subscribe", "channels": ["events"]}))
            assert (await recv_json(ws))["type"] == "subscribed"
        clients = [pair.client(0, token=token), pair.client(1, token=token)]
        n = 40
        results = await asyncio.gather(
            *(clients[i % 2].post("/api/presets", json={"id": f"fan-{i:03d}", "name": f"n{i}"}) for i in range(n))
        )
        assert all(r.status_code == 201 for r in results)
        # Both workers served some of the commands (queue groups spread them).
        assert all(w.runtimes[0].handled > 0 for w in pair.workers), [w.runtimes[0].handled for w in pair.workers]
        for ws in (ws0, ws1):
            seen = set()
            while len(seen) < n:
                seen.add((await next_event(ws, "PresetCreated"))["stream"])
            assert seen == {f"preset-fan-{i:03d}" for i in range(n)}
