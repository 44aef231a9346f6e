"""Skills (API.md §8): ChatAI's single view over every tool source, its toggles, and `/api/skills/sse`,
fed from the bus (the relayed tools events through the edge's hub, and every tools worker's MCP
status snapshots), so a tool run or a server change on any instance reaches every client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.response import Stream

from api import commands
from api.envelope import ApiError, ok
from api.hub import HubEvent
from api.mcp_board import board_of
from api.routes.mcp import servers
from api.routes.tools import _enabled_flag, all_tools, categories
from api.security import principal_of
from api.state import edge_of
from schemas.tools import SkillExecuteBody, ToolToggleBody
from services.tools import queries
from services.tools.mcp.runtime import StatusMessage

HEARTBEAT_SECONDS = 30.0
_SERVER_FRAMES = {"connecting": "server-connecting", "connected": "server-connected", "error": "server-error"}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def frame(name: str, data: dict[str, Any]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (name.encode(), msgspec.json.encode(data))


def event_frame(event: HubEvent) -> bytes | None:
    """A relayed tools event -> its skills frame (None: not one the skills view shows)."""
    if event.type not in ("ToolCalled", "ToolToggled", "McpServerRemoved", "ToolCategoryToggled"):
        return None
    try:
        message = msgspec.json.decode(event.body)
        data = message.get("data") or {}
    except (msgspec.DecodeError, AttributeError):
        return None
    if event.type == "ToolCalled":
        at = message.get("timestamp") or _now()
        return frame(
            "tool-executed", {"toolName": data.get("tool_name"), "success": data.get("success"), "timestamp": at}
        )
    if event.type == "ToolToggled":
        return frame("tool-toggled", {"tool": data.get("name"), "enabled": data.get("enabled")})
    if event.type == "ToolCategoryToggled":
        return frame("tool-toggled", {"category": data.get("category"), "enabled": data.get("enabled")})
    return frame("server-removed", {"name": data.get("name")})


def status_frame(message: StatusMessage) -> bytes | None:
    if message.reloaded:
        return frame("tools-reloaded", {"instanceId": message.instance_id, "timestamp": message.at})
    state = message.changed
    if state is None or state.status not in _SERVER_FRAMES:
        return None
    data: dict[str, Any] = {"name": state.name, "instanceId": message.instance_id}
    if state.status == "connected":
        data["toolsCount"] = state.tools_count
    if state.status == "error":
        data["error"] = state.error
    return frame(_SERVER_FRAMES[state.status], data)


def _matches(tool: dict[str, Any], needle: str) -> bool:
    return needle in tool["name"].lower() or needle in (tool.get("description") or "").lower()


class SkillsController(Controller):
    path = "/api/skills"
    tags = ["skills"]

    @get("/status")
    async def status(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        tools = await all_tools(request)
        pool = edge_of(request).pool
        settings = await queries.settings(pool)
        stats = await queries.call_stats(pool)
        cats = categories(tools, dict(settings.categories))
        shown = [
            {k: s.get(k) for k in ("name", "status", "type", "toolsCount", "toolCount", "connectedAt", "instances")}
            for s in await servers(request)
        ]
        return ok(
            {
                "servers": shown,
                "stats": {
                    "totalTools": len(tools),
                    "enabledTools": sum(1 for t in tools if t["enabled"]),
                    "calls": stats["calls"],
                    "failures": stats["failures"],
                },
                "categories": list(cats.values()),
                "timestamp": _now(),
            }
        )

    @get("/tools")
    async def tools(
        self,
        request: Request[Any, Any, Any],
        search: Annotated[str | None, Parameter(max_length=200)] = None,
        source: Annotated[str | None, Parameter(max_length=20)] = None,
    ) -> Response[bytes]:
        found = await all_tools(request)
        if search:
            found = [t for t in found if _matches(t, search.lower())]
        if source:
            found = [t for t in found if t["source"] == source]
        return ok({"count": len(found), "tools": found})

    @get("/search")
    async def search(
        self, request: Request[Any, Any, Any], q: Annotated[str, Parameter(max_length=200)] = ""
    ) -> Response[bytes]:
        found = [t for t in await all_tools(request) if _matches(t, q.lower())]
        return ok({"count": len(found), "tools": found, "query": q})

    @post("/execute", status_code=200)
    async def execute(self, request: Request[Any, Any, Any], data: SkillExecuteBody) -> Response[bytes]:
        principal = principal_of(request)
        payload = {
            "name": data.tool_name,
            "arguments": data.args or data.arguments or {},
            "caller": {"subject": principal.username, "scope": principal.scope},
            "preset_id": data.preset_id,
        }
        timeout = edge_of(request).config_cache.document.tools.timeout_ms / 1000 + 5
        reply = await commands.send(request, "tools", "call", payload, timeout=timeout)
        return ok(reply.result)

    @post("/tools/{name:str}/toggle", status_code=200)
    async def toggle_tool(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return ok(await self._toggle(request, name, await _enabled_flag(request)))

    @post("/toggle-tool", status_code=200)
    async def toggle_tool_body(self, request: Request[Any, Any, Any], data: ToolToggleBody) -> Response[bytes]:
        return ok(await self._toggle(request, data.tool_name, data.enabled))

    async def _toggle(self, request: Request[Any, Any, Any], name: str, enabled: bool | None) -> dict[str, Any]:
        if not any(t["name"] == name for t in await all_tools(request)):
            raise ApiError("TOOL_NOT_FOUND", f"tool '{name}' not found")
        reply = await commands.send(request, "tools", "toggle", {"name": name, "enabled": enabled})
        return dict(reply.result)

    @post("/categories/{key:str}/toggle", status_code=200)
    async def toggle_category(self, request: Request[Any, Any, Any], key: str) -> Response[bytes]:
        payload = {"category": key, "enabled": await _enabled_flag(request)}
        return ok((await commands.send(request, "tools", "toggle_category", payload)).result)

    @post("/reload", status_code=200)
    async def reload(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        await commands.send(request, "tools", "mcp_reload", {}, idempotent=False)
        return ok({"reloaded": True, "count": len(await all_tools(request))})

    @post("/enable-all", status_code=200)
    async def enable_all(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return ok((await commands.send(request, "tools", "set_all", {"enabled": True})).result)

    @post("/disable-all", status_code=200)
    async def disable_all(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return ok((await commands.send(request, "tools", "set_all", {"enabled": False})).result)

    @get("/sse")
    async def sse(self, request: Request[Any, Any, Any]) -> Stream:
        hub = edge_of(request).hub
        board = await board_of(request)
        # Listen before answering: once the client has the headers, nothing is missed.
        events = hub.listen()
        states = board.listen()
        frames: asyncio.Queue[bytes | None] = asyncio.Queue(1000)

        def offer(data: bytes | None) -> None:
            with contextlib.suppress(asyncio.QueueFull):  # a client this far behind loses frames
                frames.put_nowait(data)

        async def pump_events() -> None:
            while (event := await events.get()) is not None:
                if (data := event_frame(event)) is not None:
                    offer(data)
            offer(None)  # the hub cut this client off (too slow) or stopped

        async def pump_states() -> None:
            while True:
                if (data := status_frame(await states.get())) is not None:
                    offer(data)

        async def stream() -> AsyncIterator[bytes]:
            pumps = [asyncio.create_task(pump_events()), asyncio.create_task(pump_states())]
            try:
                yield b"retry: 2000\n\n" + frame("connected", {"timestamp": _now()})
                next_beat = time.monotonic() + HEARTBEAT_SECONDS
                while True:
                    try:
                        async with asyncio.timeout(max(0.0, next_beat - time.monotonic())):
                            data = await frames.get()
                    except TimeoutError:
                        next_beat = time.monotonic() + HEARTBEAT_SECONDS
                        yield frame("heartbeat", {"timestamp": _now()})
                        continue
                    if data is None:
                        return
                    yield data
            finally:
                for task in pumps:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                hub.unlisten(events)
                board.unlisten(states)

        return Stream(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
