"""The edge's cache of the presets page (api/readcache.py): served only to who may read the page, only
for a query Litestar answered before, never older than this edge's own last write, and current with
writes through other edges once their events are relayed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.state import Edge
from tests.e2e.test_stream_scopes import group_token
from tests.stack import Stack
from tests.waiting import wait_until

VOLATILE = {"date", "x-request-id", "x-ratelimit-remaining"}


def edge_state(s: Stack, i: int = 0) -> Edge:
    edge: Edge = s.edges[i].server.config.app.state["edge"]  # type: ignore[attr-defined]
    return edge


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()["data"]["items"]]


async def cached_get(s: Stack, c: httpx.AsyncClient, url: str, edge: int = 0) -> httpx.Response:
    """GET `url` until it is served from the cache: a write's relayed event may still void a page or two."""
    pages = edge_state(s, edge).pages
    answers: list[httpx.Response] = []

    async def hit() -> bool:
        before = pages.served
        answers.append(await c.get(url))
        return pages.served == before + 1

    await wait_until(hit, timeout=10, interval=0.01, message=f"GET {url} served from the cache")
    return answers[-1]


@pytest.fixture
async def pair(nats_url: str, database: str) -> AsyncIterator[Stack]:
    s = Stack(nats_url, database)
    await s.start(edges=2, workers=1)
    try:
        yield s
    finally:
        await s.stop()


async def test_a_cached_page_is_the_page_litestar_answers(stack: Stack) -> None:
    c = await stack.admin()
    first = await c.get("/api/presets?page_size=5&sort_by=name")
    second = await cached_get(stack, c, "/api/presets?page_size=5&sort_by=name")
    assert second.status_code == first.status_code == 200
    assert second.content == first.content
    strip = lambda r: sorted((k, v) for k, v in r.headers.multi_items() if k not in VOLATILE)  # noqa: E731
    assert strip(second) == strip(first)
    assert len(second.headers["x-request-id"]) == 32
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert int(second.headers["x-ratelimit-remaining"]) < int(first.headers["x-ratelimit-remaining"])


async def test_read_your_write_on_one_edge(stack: Stack) -> None:
    c = await stack.admin()
    url = "/api/presets?type=user&page_size=100"
    assert ids(await cached_get(stack, c, url)) == []
    assert (await c.post("/api/presets", json={"id": "ryw-1", "name": "One"})).status_code == 201
    assert ids(await c.get(url)) == ["ryw-1"]
    r = await cached_get(stack, c, url)
    assert r.json()["data"]["items"][0]["name"] == "One"
    assert (await c.put("/api/presets/ryw-1", json={"name": "Uno"})).status_code == 200
    assert (await c.get(url)).json()["data"]["items"][0]["name"] == "Uno"
    await cached_get(stack, c, url)
    assert (await c.delete("/api/presets/ryw-1")).status_code == 200
    assert ids(await c.get(url)) == []


async def test_each_query_is_its_own_page_and_a_refused_query_is_never_cached(stack: Stack) -> None:
    c = await stack.admin()
    for i in range(3):
        assert (await c.post("/api/presets", json={"id": f"q-{i}", "name": f"Q{i}"})).status_code == 201
    one = await cached_get(stack, c, "/api/presets?type=user&page_size=1&page=1")
    two = await cached_get(stack, c, "/api/presets?type=user&page_size=1&page=2")
    assert ids(one) == ["q-0"] and ids(two) == ["q-1"]
    pages = edge_state(stack).pages
    hits = pages.served
    for _ in range(2):
        r = await c.get("/api/presets?page=0")
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"
    assert pages.served == hits


async def test_only_an_admin_is_served_a_cached_page(stack: Stack) -> None:
    admin = await stack.admin()
    await cached_get(stack, admin, "/api/presets")
    pages = edge_state(stack).pages
    hits = pages.served
    anonymous = stack.client()
    r = await anonymous.get("/api/presets")
    assert r.status_code == 401 and r.json()["code"] == "AUTH_REQUIRED"
    r = await stack.client(token="not-a-token").get("/api/presets")
    assert r.status_code == 401
    group = stack.client(token=await group_token(stack, "777"))
    r = await group.get("/api/presets")
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    # A revoked token: refused although its page is cached.
    token = await stack.login()
    leaving = stack.client(token=token)
    await cached_get(stack, leaving, "/api/presets")
    hits = pages.served
    assert (await leaving.post("/api/auth/logout")).status_code == 200
    r = await leaving.get("/api/presets")
    assert r.status_code == 401 and r.json()["code"] == "INVALID_TOKEN"
    assert pages.served == hits


async def test_a_write_through_another_edge_shows_once_relayed(pair: Stack) -> None:
    token = await pair.login()
    one, two = pair.client(0, token=token), pair.client(1, token=token)
    url = "/api/presets?type=user"
    assert ids(await cached_get(pair, two, url, edge=1)) == []
    assert (await one.post("/api/presets", json={"id": "far", "name": "Far"})).status_code == 201
    assert ids(await one.get(url)) == ["far"]  # the writing edge: at once

    async def shown() -> bool:
        return ids(await two.get(url)) == ["far"]

    await wait_until(shown, timeout=10, interval=0.02, message="edge 2 shows the write through edge 1")
    await cached_get(pair, two, url, edge=1)  # and caches the new page
