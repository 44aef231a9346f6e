"""Platforms (API.md §9): CRUD in NekoBot's shapes, connection state from KV `platforms`, stats."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put

from api import commands
from api.bodycheck import json_object_body
from api.envelope import ApiError, ok
from api.onebot import OneBotGateway
from api.pagination import PageNumber, PageSize, page
from api.security import require_admin
from api.state import edge_of
from services.platforms import owners, queries

MAX_BODY_BYTES = 16 * 1024


async def _owners(request: Request[Any, Any, Any]) -> dict[str, owners.Owner]:
    gateway: OneBotGateway = request.app.state["onebot"]
    if gateway.kv is None:
        return {}
    return await owners.all_owners(gateway.kv)


async def _one(request: Request[Any, Any, Any], platform_id: str) -> dict[str, Any]:
    platform = await queries.get_platform(edge_of(request).pool, platform_id)
    if platform is None:
        raise ApiError("PLATFORM_NOT_FOUND", f"platform '{platform_id}' not found")
    gateway: OneBotGateway = request.app.state["onebot"]
    owner = await owners.get(gateway.kv, platform_id) if gateway.kv is not None else None
    return owners.view(platform, owner)


def _new_id(body: dict[str, Any]) -> str:
    given = body.pop("id", None)
    if isinstance(given, str) and given:
        return given
    return f"onebot-{int(time.time() * 1000):x}"


class PlatformController(Controller):
    path = "/api/platforms"
    tags = ["platforms"]
    guards = [require_admin]

    @get("/")
    async def list_platforms(
        self, request: Request[Any, Any, Any], page_number: PageNumber = 1, page_size: PageSize = 20
    ) -> Response[bytes]:
        held = await _owners(request)
        rows, total = await queries.page_platforms(edge_of(request).pool, page=page_number, page_size=page_size)
        items = [owners.view(p, held.get(p["id"])) for p in rows]
        return ok(page(items, total, page_number, page_size))

    @post("/")
    async def create_platform(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
        platform_id = _new_id(body)
        reply = await commands.send(request, "platforms", "create", {"id": platform_id, "body": body})
        # A retry with the same Idempotency-Key gets the first create's reply, and the id that one chose.
        created = reply.result if isinstance(reply.result, dict) else {}
        return ok(await _one(request, str(created.get("id") or platform_id)), status=201)

    @get("/{platform_id:str}")
    async def get_platform(self, request: Request[Any, Any, Any], platform_id: str) -> Response[bytes]:
        return ok(await _one(request, platform_id))

    @put("/{platform_id:str}")
    async def update_platform(self, request: Request[Any, Any, Any], platform_id: str) -> Response[bytes]:
        body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
        expected = commands.expected_version(request, body)
        body.pop("id", None)
        payload = {"id": platform_id, "body": body, "expected_version": expected}
        await commands.send(request, "platforms", "update", payload)
        return ok(await _one(request, platform_id))

    @delete("/{platform_id:str}", status_code=200)
    async def delete_platform(self, request: Request[Any, Any, Any], platform_id: str) -> Response[bytes]:
        reply = await commands.send(request, "platforms", "delete", {"id": platform_id})
        return commands.written(reply)


@get("/api/platform/stats", tags=["platforms"], guards=[require_admin])
async def platform_stats(request: Request[Any, Any, Any]) -> Response[bytes]:
    held = await _owners(request)
    views = [owners.view(p, held.get(p["id"])) for p in await queries.list_platforms(edge_of(request).pool)]
    platforms = [
        {
            "id": v["id"],
            "type": v["type"],
            "display_name": v["display_name"],
            "status": v["status"],
            "started_at": v["connectedAt"],
            "error_count": v["stats"]["errors"],
            "messageStats": {
                "sent": v["stats"]["sent"],
                "received": v["stats"]["received"],
                "error": v["stats"]["errors"],
            },
        }
        for v in views
    ]
    summary = {
        "total": len(views),
        "running": sum(1 for v in views if v["status"] == "connected"),
        "error": sum(1 for v in views if v["status"] == "error"),
        "total_errors": sum(v["stats"]["errors"] for v in views),
    }
    return ok({"platforms": platforms, "summary": summary})
