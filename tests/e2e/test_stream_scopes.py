"""Scopes on the live streams (issue 7 item 4): they carry every group's events and every service's logs,
so a group-scoped token is refused them; `?token=` is taken only on the stream routes themselves."""

from __future__ import annotations

import asyncio
import json

import websockets

from tests.e2e.test_group_admin import issue_code_over_the_bus
from tests.e2e.test_presets import envelope_error
from tests.stack import Stack


async def group_token(stack: Stack, group_id: str) -> str:
    code = await issue_code_over_the_bus(stack, group_id)
    r = await stack.client().post("/api/group-admin/login", json={"code": code})
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["token"])


async def test_group_token_is_refused_the_event_stream(stack: Stack) -> None:
    token = await group_token(stack, "555")
    group = stack.client(token=token)
    # Before: 200 and every event of every group (and every domain).
    envelope_error(await group.get("/api/events/sse"), 403, "FORBIDDEN")
    envelope_error(await stack.client().get(f"/api/events/sse?token={token}"), 403, "FORBIDDEN")
    admin = await stack.admin()
    async with admin.stream("GET", "/api/events/sse") as r:
        assert r.status_code == 200


async def test_group_token_is_refused_the_websocket(stack: Stack) -> None:
    token = await group_token(stack, "555")
    url = stack.edges[0].url.replace("http://", "ws://") + f"/ws?token={token}"
    async with websockets.connect(url) as ws:
        # Before: a subscribe to `logs` got the last 100 lines of every service, `events` every event.
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["type"] == "error" and frame["code"] == "FORBIDDEN"
        closed = False
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except websockets.exceptions.ConnectionClosed as exc:
            closed = exc.rcvd is not None and exc.rcvd.code == 1008
        assert closed


async def test_query_token_only_on_the_stream_routes(stack: Stack) -> None:
    token = await stack.login()
    anon = stack.client()
    # Before: a path merely ending in /sse took ?token= (here: 404 PRESET_NOT_FOUND, i.e. authenticated).
    envelope_error(await anon.get(f"/api/presets/sse?token={token}"), 401, "AUTH_REQUIRED")
    envelope_error(await anon.get(f"/api/presets?token={token}"), 401, "AUTH_REQUIRED")
    async with anon.stream("GET", f"/api/events/sse?token={token}") as r:
        assert r.status_code == 200
