"""MCP servers (API.md §8) with every alias: flat and nested (`{name, config}`) bodies, `type: npm`,
NekoBot's `{id}` (the name), Claude Desktop import. Configs are read from the `mcp_servers` read
table (secrets as their masked hints); the live status of each server comes from every tools
worker's published snapshots (api/mcp_board.py); the tools, resources and prompts from a worker."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import Parameter

from api import commands
from api.envelope import ApiError, ok
from api.mcp_board import McpStatusBoard, board_of
from api.pagination import PageNumber, page
from api.routes.tools import all_tools
from api.state import edge_of
from services.tools.mcp import store

JsonObject = dict[str, Any]


def server_view(sealed: dict[str, Any], board: McpStatusBoard) -> dict[str, Any]:
    return {**store.read_view(sealed), **board.status_of(str(sealed["name"]), bool(sealed.get("enabled", True)))}


async def servers(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    board = await board_of(request)
    return [server_view(doc, board) for doc in await store.stored(edge_of(request).pool)]


async def one_server(request: Request[Any, Any, Any], name: str) -> dict[str, Any]:
    doc = await store.stored_one(edge_of(request).pool, name)
    if doc is None:
        raise ApiError("SERVER_NOT_FOUND", f"MCP server '{name}' not found")
    return server_view(doc, await board_of(request))


def _object(data: Any) -> JsonObject:
    if not isinstance(data, dict):
        raise ApiError("INVALID_ARGS", "the body must be a JSON object")
    return data


class McpController(Controller):
    path = "/api/mcp"
    tags = ["mcp"]

    @get("/servers")
    async def list_servers(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> Response[bytes]:
        items = await servers(request)
        shown = items[(page_number - 1) * page_size : page_number * page_size]
        return ok({**page(shown, len(items), page_number, page_size), "servers": shown})

    @post("/servers", status_code=201)
    async def add_server(self, request: Request[Any, Any, Any], data: Any) -> Response[bytes]:
        reply = await commands.send(request, "tools", "mcp_add", {"body": _object(data)})
        return ok(await one_server(request, reply.result["name"]), status=201)

    @get("/servers/{name:str}")
    async def get_server(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return ok(await one_server(request, name))

    @put("/servers/{name:str}")
    async def update_server(self, request: Request[Any, Any, Any], name: str, data: Any) -> Response[bytes]:
        await commands.send(request, "tools", "mcp_update", {"name": name, "body": _object(data)})
        return ok(await one_server(request, name))

    @delete("/servers/{name:str}", status_code=200)
    async def remove_server(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        reply = await commands.send(request, "tools", "mcp_remove", {"name": name})
        return ok({**reply.result, "removed": True})

    @post("/connect", status_code=200)
    async def connect_body(self, request: Request[Any, Any, Any], data: Any) -> Response[bytes]:
        name = _object(data).get("name") or _object(data).get("serverName")
        if not isinstance(name, str) or not name:
            raise ApiError("INVALID_ARGS", "`name` is required", details=[{"field": "name"}])
        return await self._act(request, "connect", name)

    @post("/servers/{name:str}/connect", status_code=200)
    async def connect(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return await self._act(request, "connect", name)

    @post("/servers/{name:str}/reconnect", status_code=200)
    async def reconnect(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return await self._act(request, "reconnect", name)

    @post("/servers/{name:str}/disconnect", status_code=200)
    async def disconnect(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return await self._act(request, "disconnect", name)

    async def _act(self, request: Request[Any, Any, Any], action: str, name: str) -> Response[bytes]:
        reply = await commands.send(request, "tools", f"mcp_{action}", {"name": name}, idempotent=False)
        return ok({**(await one_server(request, name)), **reply.result})

    @get("/servers/{name:str}/tools")
    async def server_tools(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        await one_server(request, name)
        tools = [t for t in await all_tools(request) if t.get("serverName") == name]
        return ok({"server": name, "count": len(tools), "tools": tools, "items": tools})

    @post("/import", status_code=200)
    async def import_servers(self, request: Request[Any, Any, Any], data: Any) -> Response[bytes]:
        reply = await commands.send(request, "tools", "mcp_import", {"document": _object(data)})
        return ok(reply.result)

    @get("/resources")
    async def resources(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        items = (await commands.send(request, "tools", "mcp_resources", {}, idempotent=False)).result["resources"]
        return ok({"items": items, "resources": items, "total": len(items)})

    @get("/prompts")
    async def prompts(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        items = (await commands.send(request, "tools", "mcp_prompts", {}, idempotent=False)).result["prompts"]
        return ok({"items": items, "prompts": items, "total": len(items)})


__all__ = ["McpController", "servers"]
