"""Tools (API.md §8) with every alias both seed clients use: the registry view, toggles per tool and
per category, dangerous flags, test calls and the tool log. The tool list comes from a tools worker
(`cmd.tools.list`), because MCP and plugin tools live in the workers, not in the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import Parameter

from api import commands
from api.envelope import ApiError, ok
from api.pagination import PageNumber, page
from api.security import principal_of
from api.state import edge_of
from schemas.tools import CallBody, CategoryToggleBody, DangerousBody, DangerousToggleBody, TestBody, ToolToggleBody
from services.tools import queries

MAX_TOGGLE_BYTES = 4096
CATEGORY_NAMES = {"basic": "Basic", "memory": "Memory", "entertainment": "Entertainment", "mcp": "MCP"}


async def all_tools(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    reply = await commands.send(request, "tools", "list", {})
    return list((reply.result or {}).get("tools", []))


def categories(tools: list[dict[str, Any]], disabled: dict[str, bool]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for tool in tools:
        key = tool["category"]
        entry = found.setdefault(
            key, {"key": key, "name": CATEGORY_NAMES.get(key, key.title()), "enabled": disabled.get(key, True)}
        )
        entry["toolCount"] = entry.get("toolCount", 0) + 1
    return found


async def _enabled_flag(request: Request[Any, Any, Any]) -> bool | None:
    """`{enabled}` from an optional body (ChatAI's panel POSTs toggles without one: then flip)."""
    raw = await request.body()
    if len(raw) > MAX_TOGGLE_BYTES:
        raise ApiError("PAYLOAD_TOO_LARGE", f"body larger than {MAX_TOGGLE_BYTES} bytes", status=413)
    if not raw.strip():
        return None
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ApiError("PARSE_ERROR", f"body is not valid JSON: {exc}") from exc
    value = body.get("enabled") if isinstance(body, dict) else None
    if value is not None and not isinstance(value, bool):
        raise ApiError("VALIDATION_ERROR", "enabled must be a boolean", details=[{"field": "enabled"}])
    return value


async def call_tool(request: Request[Any, Any, Any], name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    principal = principal_of(request)
    edge = edge_of(request)
    payload = {
        "name": name,
        "arguments": arguments,
        "caller": {"subject": principal.username, "scope": principal.scope},
    }
    timeout = edge.config_cache.document.tools.timeout_ms / 1000 + 5
    reply = await commands.send(request, "tools", "call", payload, timeout=timeout)
    return dict(reply.result)


class ToolController(Controller):
    path = "/api/tools"
    tags = ["tools"]

    @get("/")
    async def list_tools(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        search: Annotated[str | None, Parameter(max_length=200)] = None,
        source: Annotated[str | None, Parameter(max_length=20)] = None,
        category: Annotated[str | None, Parameter(max_length=100)] = None,
    ) -> Response[bytes]:
        tools = await all_tools(request)
        settings = await queries.settings(edge_of(request).pool)
        cats = categories(tools, dict(settings.categories))
        if search:
            needle = search.lower()
            tools = [t for t in tools if needle in t["name"].lower() or needle in t["description"].lower()]
        if source:
            tools = [t for t in tools if t["source"] == source]
        if category:
            tools = [t for t in tools if t["category"] == category]
        start = (page_number - 1) * page_size
        return ok({**page(tools[start : start + page_size], len(tools), page_number, page_size), "categories": cats})

    @get("/list")
    async def list_bare(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return ok(await all_tools(request))

    @get("/dangerous")
    async def get_dangerous(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        tools = await all_tools(request)
        allow = edge_of(request).config_cache.document.tools.allow_dangerous
        return ok({"tools": [t["name"] for t in tools if t["dangerous"]], "allowDangerous": allow})

    @put("/dangerous")
    async def put_dangerous(self, request: Request[Any, Any, Any], data: DangerousBody) -> Response[bytes]:
        payload = {"tools": data.tools, "allow_dangerous": data.allow_dangerous}
        reply = await commands.send(request, "tools", "set_dangerous", payload)
        return commands.written(reply)

    @post("/dangerous/toggle", status_code=200)
    async def toggle_dangerous(self, request: Request[Any, Any, Any], data: DangerousToggleBody) -> Response[bytes]:
        payload = {"name": data.tool_name, "dangerous": data.is_dangerous}
        reply = await commands.send(request, "tools", "set_dangerous", payload)
        return ok({**reply.result, "toolName": data.tool_name, "isDangerous": data.is_dangerous})

    @post("/builtin/tool/toggle", status_code=200)
    async def toggle_builtin_tool(self, request: Request[Any, Any, Any], data: ToolToggleBody) -> Response[bytes]:
        return ok(await self._toggle(request, data.tool_name, data.enabled))

    @post("/builtin/category/toggle", status_code=200)
    async def toggle_builtin_category(
        self, request: Request[Any, Any, Any], data: CategoryToggleBody
    ) -> Response[bytes]:
        reply = await commands.send(
            request, "tools", "toggle_category", {"category": data.category, "enabled": data.enabled}
        )
        return commands.written(reply)

    @put("/category/{category:str}/toggle")
    async def toggle_category(self, request: Request[Any, Any, Any], category: str) -> Response[bytes]:
        enabled = await _enabled_flag(request)
        reply = await commands.send(request, "tools", "toggle_category", {"category": category, "enabled": enabled})
        return commands.written(reply)

    @post("/call", status_code=200)
    async def call(self, request: Request[Any, Any, Any], data: CallBody) -> Response[bytes]:
        return ok(await call_tool(request, data.name, data.args or data.arguments or {}))

    @post("/test", status_code=200)
    async def test(self, request: Request[Any, Any, Any], data: TestBody) -> Response[bytes]:
        return ok(await call_tool(request, data.tool_name, data.arguments or data.args or {}))

    @get("/logs")
    async def logs(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: Annotated[int | None, Parameter(ge=1, le=100)] = None,
        limit: Annotated[int | None, Parameter(ge=1, le=100)] = None,
        offset: Annotated[int | None, Parameter(ge=0, le=10_000_000)] = None,
        tool_name: Annotated[str | None, Parameter(query="toolName", max_length=200)] = None,
        tool: Annotated[str | None, Parameter(max_length=200)] = None,
        success: bool | None = None,
        user_id: Annotated[str | None, Parameter(query="userId", max_length=100)] = None,
        group_id: Annotated[str | None, Parameter(query="groupId", max_length=100)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Response[bytes]:
        size = page_size or limit or 20
        start = offset if offset is not None else (page_number - 1) * size
        items, total = await queries.list_logs(
            edge_of(request).pool,
            tool_name=tool_name or tool,
            success=success,
            user_id=user_id,
            group_id=group_id,
            since=since,
            until=until,
            limit=size,
            offset=start,
        )
        return ok({**page(items, total, start // size + 1, size), "logs": items})

    @get("/{name:str}")
    async def get_tool(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        for tool in await all_tools(request):
            if tool["name"] == name:
                return ok(tool)
        raise ApiError("TOOL_NOT_FOUND", f"tool '{name}' not found")

    @post("/{name:str}/toggle", status_code=200)
    async def toggle_post(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return ok(await self._toggle(request, name, await _enabled_flag(request)))

    @put("/{name:str}/toggle")
    async def toggle_put(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return ok(await self._toggle(request, name, await _enabled_flag(request)))

    async def _toggle(self, request: Request[Any, Any, Any], name: str, enabled: bool | None) -> dict[str, Any]:
        if not any(t["name"] == name for t in await all_tools(request)):
            raise ApiError("TOOL_NOT_FOUND", f"tool '{name}' not found")
        reply = await commands.send(request, "tools", "toggle", {"name": name, "enabled": enabled})
        return dict(reply.result)
