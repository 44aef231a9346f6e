"""The global rate limit (API.md §2): shared by every edge, per token subject or address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import websockets

from api.state import Edge
from tests.fakes.clock import FakeClock
from tests.stack import Stack
from tests.waiting import wait_until

# The edges' limiters read this clock: every test runs 15 s into one window, however long it takes.
WINDOW_START = 1_800_000_000
WINDOW_END = WINDOW_START + 60


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WINDOW_START + 15.0)


@pytest.fixture
async def limited(nats_url: str, database: str, clock: FakeClock) -> AsyncIterator[Stack]:
    s = Stack(nats_url, database)
    await s.start(edges=2, workers=1, rate_limit=60)
    for i in range(2):
        edge_state(s, i).limiter.clock = clock
    try:
        yield s
    finally:
        await s.stop()


def edge_state(s: Stack, i: int) -> Edge:
    edge: Edge = s.edges[i].server.config.app.state["edge"]  # type: ignore[attr-defined]
    return edge


async def test_sixty_per_window_in_total_across_two_edges(limited: Stack, clock: FakeClock) -> None:
    token = await limited.login()
    edges = [limited.client(0, token=token), limited.client(1, token=token)]
    statuses: list[int] = []
    remaining: list[int] = []
    for i in range(70):
        r = await edges[i % 2].get("/api/presets")
        statuses.append(r.status_code)
        if r.status_code == 200:
            assert r.headers["x-ratelimit-limit"] == "60"
            remaining.append(int(r.headers["x-ratelimit-remaining"]))
            assert r.headers["x-ratelimit-reset"] == str(WINDOW_END)
    assert statuses.count(200) == 60 and statuses.count(429) == 10
    assert statuses[:60] == [200] * 60
    assert remaining == list(range(59, -1, -1))
    r = await edges[1].get("/api/presets")
    assert r.status_code == 429
    body = r.json()
    assert body["code"] == "RATE_LIMITED" and body["success"] is False
    assert r.headers["retry-after"] == "45" and r.headers["x-ratelimit-remaining"] == "0"
    assert body["message"].endswith("retry in 45s")
    # /health is exempt; another client (another token subject would do too) has its own budget.
    assert (await limited.client(0).get("/health")).status_code == 200
    # The next window starts a new count, on both edges.
    clock.advance(45)
    for edge in edges:
        r = await edge.get("/api/presets")
        assert r.status_code == 200 and r.headers["x-ratelimit-reset"] == str(WINDOW_END + 60)
    assert r.headers["x-ratelimit-remaining"] == "58"


async def test_anonymous_clients_are_counted_by_address(limited: Stack) -> None:
    anon = limited.client(1)
    codes = [(await anon.get("/api/presets")).status_code for _ in range(61)]
    assert codes[:60] == [401] * 60 and codes[60] == 429


async def test_limit_changes_apply_at_once_and_zero_turns_it_off(limited: Stack) -> None:
    token = await limited.login()
    c = limited.client(0, token=token)
    r = await c.put("/api/config", json={"rateLimit": {"requestsPerMinute": 5}})
    assert r.status_code == 200
    version = r.json()["data"]["version"]
    cache = edge_state(limited, 1).config_cache
    await wait_until(lambda: cache.version >= version, timeout=1, interval=0.01, message="the config change pushed")
    other = limited.client(1, token=token)
    codes = [(await other.get("/api/presets")).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # the PUT above was the first of the five
    r = await other.get("/api/presets")
    assert r.status_code == 429 and r.headers["x-ratelimit-limit"] == "5"
    await limited.set_config({"rateLimit": {"requestsPerMinute": 0}})

    async def refreshed() -> bool:  # set directly in the store: a refresh picks it up
        await cache.refresh()
        return cache.document.rate_limit.requests_per_minute == 0

    await wait_until(refreshed, timeout=35, interval=0.01, message="the limit of 0 read from the store")
    r = await other.get("/api/presets")
    assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers


async def test_a_stream_counts_once_at_connect(limited: Stack) -> None:
    token = await limited.login()
    c = limited.client(0, token=token)
    before = int((await c.get("/api/presets")).headers["x-ratelimit-remaining"])
    url = limited.edges[0].url.replace("http://", "ws://") + f"/ws?token={token}"
    async with websockets.connect(url) as ws:
        for _ in range(20):
            await ws.send(json.dumps({"action": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
    after = int((await c.get("/api/presets")).headers["x-ratelimit-remaining"])
    assert before - after == 2  # the WebSocket connect, then this request
