"""WS /ws and GET /api/events/sse, fed by NATS (API.md §10)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.stack import Stack


def ws_url(stack: Stack, token: str, edge: int = 0) -> str:
    return stack.edges[edge].url.replace("http://", "ws://") + f"/ws?token={token}"


async def recv_json(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def next_event(ws: Any, event_type: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv_json(ws, timeout)
            if frame.get("channel") == "events" and frame["data"]["type"] == event_type:
                return frame["data"]  # type: ignore[no-any-return]


async def test_ws_subscribe_ping_and_events(stack: Stack) -> None:
    token = await stack.login()
    async with websockets.connect(ws_url(stack, token)) as ws:
        await ws.send(json.dumps({"action": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}
        await ws.send("not json")
        assert (await recv_json(ws))["type"] == "error"
        await ws.send(json.dumps({"action": "subscribe", "channels": ["nope"]}))
        assert (await recv_json(ws))["type"] == "error"
        await ws.send(json.dumps({"action": "subscribe", "channels": ["events"]}))
        assert (await recv_json(ws))["type"] == "subscribed"
        c = stack.client(token=token)
        assert (await c.post("/api/presets", json={"id": "ws-one", "name": "WS"})).status_code == 201
        event = await next_event(ws, "PresetCreated")
        assert event["stream"] == "preset-ws-one" and event["version"] == 1
        assert event["data"]["fields"]["name"] == "WS" and event["timestamp"]
        assert event["metadata"]["actor"] == "admin" and event["metadata"]["request_id"]

        await ws.send(json.dumps({"action": "unsubscribe", "channels": ["events"]}))
        assert (await recv_json(ws))["type"] == "unsubscribed"
        await c.post("/api/presets", json={"id": "ws-two", "name": "WS2"})
        await ws.send(json.dumps({"action": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}  # no event frame came before the pong


async def test_ws_needs_a_valid_token(stack: Stack) -> None:
    url = stack.edges[0].url.replace("http://", "ws://") + "/ws"
    for target in (url, url + "?token=garbage"):
        with pytest.raises(websockets.exceptions.WebSocketException):
            async with websockets.connect(target) as ws:
                await ws.send(json.dumps({"action": "ping"}))
                await recv_json(ws)


async def sse_events(response: httpx.Response, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Read `count` event frames (id + event + data) from an SSE response."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "data" in current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
    return events


async def test_sse_streams_events_and_resumes_with_last_event_id(stack: Stack) -> None:
    token = await stack.login()
    c = stack.client(token=token)
    # (The filter keeps out the LoginSucceeded of the login above, which may be relayed just now.)
    live = {"token": token, "types": "PresetCreated,PresetUpdated"}
    async with stack.client().stream("GET", "/api/events/sse", params=live) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await c.post("/api/presets", json={"id": "sse-one", "name": "one"})
        (first,) = await sse_events(response, 1)
    assert first["event"] == "PresetCreated" and first["data"]["stream"] == "preset-sse-one"

    # While nobody listens, two more events happen; a resume from `first` gets both, in order.
    await c.post("/api/presets", json={"id": "sse-two", "name": "two"})
    await c.put("/api/presets/sse-two", json={"name": "two!"})
    headers = {"Last-Event-ID": str(first["id"])}
    async with stack.client(token=token).stream("GET", "/api/events/sse", headers=headers) as response:
        resumed = await sse_events(response, 2)
    assert [e["event"] for e in resumed] == ["PresetCreated", "PresetUpdated"]
    assert [e["id"] for e in resumed] == [first["id"] + 1, first["id"] + 2]

    # The types filter.
    async with stack.client(token=token).stream(
        "GET", "/api/events/sse", headers=headers, params={"types": "PresetUpdated"}
    ) as response:
        (only,) = await sse_events(response, 1)
    assert only["event"] == "PresetUpdated"

    r = await stack.client(token=token).get("/api/events/sse", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"
