"""GET /api/logs (API.md §9) and the WebSocket `logs` channel (§10) through a real edge, with the log
publisher and sink started by the test (the processes wire them in the CLI)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import websockets
from nats.aio.client import Client as NATS

from bus import db, logs, nats_conn, subjects
from schemas.logs import LogEntry, log_entry_decoder
from services.logs.sink import LogSink, insert_logs, start_log_sink
from tests.stack import Stack
from tests.waiting import wait_until

ENTRY_KEYS = {"timestamp", "level", "service", "instanceId", "logger", "message", "requestId", "extra"}
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Pipeline:
    nc: NATS
    pool: asyncpg.Pool
    sink: LogSink | None = None
    publisher: logs.LogPublisher | None = None


@pytest.fixture
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    """A NATS connection and a pool on the stack's database; tests start the sink and publisher they need."""
    nc = await nats_conn.connect(stack.nats_url, name="test-logs")
    pool = await db.create_pool(stack.dsn, max_size=2)
    chatbus = logging.getLogger("chatbus")
    previous = chatbus.level
    chatbus.setLevel(logging.INFO)  # pytest leaves the root at WARNING; the command lines are INFO
    p = Pipeline(nc, pool)
    try:
        yield p
    finally:
        if p.publisher is not None:
            await p.publisher.close()
        if p.sink is not None:
            await p.sink.stop()
        chatbus.setLevel(previous)
        await pool.close()
        await nc.close()


def seeded(i: int, **fields: Any) -> LogEntry:
    values: dict[str, Any] = {
        "timestamp": T0 + timedelta(minutes=i),
        "level": "info",
        "service": "svc-a",
        "instance_id": "a-1",
        "logger": "chatbus.test",
        "message": f"line {i}",
    }
    values.update(fields)
    return LogEntry(**values)


async def seed_filter_rows(pool: asyncpg.Pool) -> None:
    await insert_logs(
        pool,
        [
            seeded(0, level="debug"),
            seeded(1, message="Alpha started"),
            seeded(2, level="warning", message="disk almost full", extra={"free": 3}),
            seeded(3, level="error", message="alpha failed", request_id="req-x"),
            seeded(4, level="critical", logger="chatbus.alpha"),
            seeded(5, service="svc-b", level="error", instance_id="b-1"),
            seeded(6, service="svc-b"),
            seeded(7, service="svc-b", message="100% done_ok"),
        ],
    )


async def get_page(c: Any, **params: Any) -> dict[str, Any]:
    r = await c.get("/api/logs", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    return body["data"]  # type: ignore[no-any-return]


async def test_logs_need_an_admin_token(stack: Stack) -> None:
    for c in (stack.client(), stack.client(token="garbage")):
        r = await c.get("/api/logs")
        assert r.status_code == 401
        assert r.json()["success"] is False and r.json()["code"] in ("AUTH_REQUIRED", "INVALID_TOKEN")


async def test_list_filters_order_and_paging(stack: Stack, pipeline: Pipeline) -> None:
    await seed_filter_rows(pipeline.pool)
    c = await stack.admin()

    data = await get_page(c, service="svc-a")
    assert data["total"] == 5 and (data["page"], data["page_size"]) == (1, 20)
    assert [i["message"] for i in data["items"]][:2] == ["line 4", "alpha failed"]  # newest first
    first = data["items"][1]
    assert set(first) == ENTRY_KEYS
    assert first == {
        "timestamp": "2025-03-01T12:03:00Z",
        "level": "error",
        "service": "svc-a",
        "instanceId": "a-1",
        "logger": "chatbus.test",
        "message": "alpha failed",
        "requestId": "req-x",
        "extra": {},
    }

    asc = await get_page(c, service="svc-a", order="asc")
    assert [i["message"] for i in asc["items"]] == [
        "line 0",
        "Alpha started",
        "disk almost full",
        "alpha failed",
        "line 4",
    ]
    assert (await get_page(c, service="svc-a,svc-b"))["total"] == 8
    assert [i["message"] for i in (await get_page(c, level="ERROR"))["items"]] == ["line 5", "alpha failed"]
    warn_up = await get_page(c, level="warn,error,critical", service="svc-a")
    assert {i["level"] for i in warn_up["items"]} == {"warning", "error", "critical"}
    assert warn_up["items"][-1]["extra"] == {"free": 3}

    # search: case-insensitive substring of the message or the logger; LIKE wildcards are literal.
    assert {i["message"] for i in (await get_page(c, search="ALPHA"))["items"]} == {
        "Alpha started",
        "alpha failed",
        "line 4",
    }
    assert [i["message"] for i in (await get_page(c, search="100%"))["items"]] == ["100% done_ok"]
    assert (await get_page(c, search="e_0"))["total"] == 0  # "_" is no wildcard: "line 0" stays out

    # since is inclusive, until exclusive; offsets are honoured; no offset means UTC.
    window = await get_page(c, since="2025-03-01T12:02:00Z", until="2025-03-01T14:05:00+02:00", order="asc")
    assert [i["message"] for i in window["items"]] == ["disk almost full", "alpha failed", "line 4"]
    assert (await get_page(c, since="2025-03-01T12:06:00"))["total"] == 2
    assert (await get_page(c, request_id="req-x"))["items"][0]["message"] == "alpha failed"

    paged = await get_page(c, service="svc-a", order="asc", page=2, page_size=2)
    assert paged["total"] == 5 and (paged["page"], paged["page_size"]) == (2, 2)
    assert [i["message"] for i in paged["items"]] == ["disk almost full", "alpha failed"]
    beyond = await get_page(c, service="svc-a", page=9, page_size=2)
    assert beyond["items"] == [] and beyond["total"] == 5


@pytest.mark.parametrize(
    "params",
    [
        {"level": "loud"},
        {"level": "info,nope"},
        {"since": "yesterday"},
        {"until": "2025-13-01T00:00:00Z"},
        {"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"},
        {"page": "0"},
        {"page_size": "101"},
        {"order": "sideways"},
    ],
)
async def test_bad_values_answer_400(stack: Stack, params: dict[str, str]) -> None:
    c = await stack.admin()
    r = await c.get("/api/logs", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["success"] is False and body["code"] == "VALIDATION_ERROR" and body["message"]


async def lines_of(c: Any, request_id: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await get_page(c, request_id=request_id, order="asc"))["items"]
        return items if len(items) >= count else None

    return await wait_until(enough, timeout=timeout, interval=0.1, message=f"{count} lines of {request_id}")


async def test_a_requests_log_lines_carry_its_request_id(stack: Stack, pipeline: Pipeline) -> None:
    pipeline.sink = await start_log_sink(pipeline.nc, pipeline.pool, batch_size=50, flush_interval=0.05)
    # One publisher for this process, where edge and workers share the loop (service "edge" for both).
    pipeline.publisher = logs.install_log_publisher(pipeline.nc, "edge", "edge-test")
    c = await stack.admin()

    r = await c.post("/api/presets", json={"id": "logged", "name": "Logged"})
    assert r.status_code == 201, r.text
    rid = r.headers["x-request-id"]
    (line,) = [i for i in await lines_of(c, rid, 1) if i["logger"] == "chatbus.commands"]
    assert line["message"] == "command presets.create -> ok"
    assert (line["level"], line["service"], line["instanceId"], line["requestId"]) == (
        "info",
        "edge",
        "edge-test",
        rid,
    )

    # The client's own X-Request-ID is used. The refusal is logged once, by the edge: the worker,
    # whose line would come first (it answers before the edge logs the answer), adds none.
    r = await c.post("/api/presets", json={"id": "logged", "name": "Again"}, headers={"X-Request-ID": "my-req-42"})
    assert r.status_code >= 400 and r.headers["x-request-id"] == "my-req-42"
    code = r.json()["code"]

    async def with_the_command_line() -> list[dict[str, Any]] | None:
        lines = await lines_of(c, "my-req-42", 1)
        return lines if any(i["logger"] == "chatbus.commands" for i in lines) else None

    lines = await wait_until(with_the_command_line, interval=0.1, message="the edge's line for my-req-42")
    assert [(i["logger"], i["message"]) for i in lines] == [("chatbus.commands", f"command presets.create -> {code}")]
    assert logs.current_request_id() is None  # the edge's request context never leaks into the test's


async def recv_json(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def test_ws_logs_channel_sends_the_last_100_then_live_lines(stack: Stack, pipeline: Pipeline) -> None:
    await insert_logs(pipeline.pool, [seeded(i, message=f"history {i}") for i in range(120)])
    token = await stack.login()
    url = stack.edges[0].url.replace("http://", "ws://") + f"/ws?token={token}"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"action": "subscribe", "channels": ["logs"]}))
        assert await recv_json(ws) == {"type": "subscribed", "channels": ["logs"]}
        history = [await recv_json(ws) for _ in range(100)]
        assert all(f["channel"] == "logs" and set(f["data"]) == ENTRY_KEYS for f in history)
        assert [f["data"]["message"] for f in history] == [f"history {i}" for i in range(20, 120)]

        live_logger = logging.getLogger("chatbus.test.live")
        pipeline.publisher = logs.install_log_publisher(pipeline.nc, "worker", "w-live", logger=live_logger)
        with logs.request_id_scope("live-req"):
            live_logger.warning("a live line")
        async with asyncio.timeout(10):
            while (frame := await recv_json(ws)).get("channel") != "logs" or frame["data"][
                "logger"
            ] != live_logger.name:
                pass
        assert frame["data"]["message"] == "a live line"
        assert (frame["data"]["level"], frame["data"]["service"], frame["data"]["requestId"]) == (
            "warning",
            "worker",
            "live-req",
        )

        await ws.send(json.dumps({"action": "unsubscribe", "channels": ["logs"]}))
        assert (await recv_json(ws))["type"] == "unsubscribed"
        live_logger.warning("nobody listens")
        await asyncio.sleep(0.2)
        await ws.send(json.dumps({"action": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}  # no log frame came before the pong


async def test_an_edge_with_publish_logs_publishes_its_lines(stack: Stack, pipeline: Pipeline) -> None:
    seen: list[LogEntry] = []

    async def on_msg(msg: Any) -> None:
        seen.append(log_entry_decoder.decode(msg.data))

    await pipeline.nc.subscribe(subjects.logs("edge", ">"), cb=on_msg)
    await nats_conn.flush_in_order(pipeline.nc)
    edge = await stack.add_edge(publish_logs=True)
    try:
        token = await stack.login(edge=1)
        r = await stack.client(edge=1, token=token).post("/api/presets", json={"id": "from-edge", "name": "E"})
        assert r.status_code == 201, r.text
        rid = r.headers["x-request-id"]
        await wait_until(lambda: any(e.request_id == rid for e in seen), message=f"a line of request {rid}")
    finally:
        await edge.stop()
        stack.edges.remove(edge)
    line = next(e for e in seen if e.request_id == rid and e.logger == "chatbus.commands")
    assert line.message == "command presets.create -> ok" and line.service == "edge"
    assert line.instance_id.startswith("edge-")
    # The edge's shutdown took its publisher off the root logger.
    assert not any(isinstance(h, logs.NatsLogHandler) for h in logging.getLogger().handlers)
