"""Presets, NekoBot dialect (API.md §7): /api/personalities over the same aggregate."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put

from api import commands
from api.envelope import ok
from api.pagination import Order, PageNumber, PageSize, Search, page
from api.routes.presets import PresetSort
from api.state import edge_of
from schemas.presets import PersonalityBody, Preset, SetDefaultPersonalityBody
from services.presets import queries
from services.presets.domain import derive_id


def personality(preset: Preset | dict[str, Any]) -> dict[str, Any]:
    p = (
        preset
        if isinstance(preset, dict)
        else {
            "id": preset.id,
            "name": preset.name,
            "systemPrompt": preset.system_prompt,
            "description": preset.description,
            "enabled": preset.enabled,
            "isDefault": preset.is_default,
        }
    )
    return {
        "id": p["id"],
        "name": p["name"],
        "prompt": p["systemPrompt"],
        "description": p["description"],
        "enabled": p["enabled"],
        "isDefault": p["isDefault"],
    }


class PersonalityController(Controller):
    path = "/api/personalities"
    tags = ["personalities"]

    @get("/")
    async def list_personalities(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: PageSize = 20,
        sort_by: PresetSort = "createdAt",
        order: Order = "asc",
        search: Search = None,
    ) -> Response[bytes]:
        items, total = await queries.list_presets(
            edge_of(request).pool,
            search=search,
            sort_by=sort_by,
            order=order,
            page=page_number,
            page_size=page_size,
        )
        return ok(page([personality(p) for p in items], total, page_number, page_size))

    @post("/")
    async def create_personality(self, request: Request[Any, Any, Any], data: PersonalityBody) -> Response[bytes]:
        fields = {
            "name": data.name,
            "systemPrompt": data.prompt,
            "description": data.description,
            "enabled": data.enabled,
        }
        preset_id = data.id or derive_id(data.name)
        reply = await commands.send(request, "presets", "create", {"id": preset_id, "fields": fields, "type": "user"})
        return ok(personality(reply.result), status=201)

    @put("/default")
    async def set_default(self, request: Request[Any, Any, Any], data: SetDefaultPersonalityBody) -> Response[bytes]:
        reply = await commands.send(request, "presets", "set_default", {"id": data.id})
        return ok(personality(reply.result))

    @delete("/{personality_id:str}", status_code=200)
    async def delete_personality(self, request: Request[Any, Any, Any], personality_id: str) -> Response[bytes]:
        return await _delete(request, personality_id)

    # The static `/default` path (PUT: choose the default) would otherwise answer DELETE with a 405: here
    # it deletes the personality whose id is `default`, like any other id.
    @delete("/default", status_code=200)
    async def delete_default_id(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await _delete(request, "default")


async def _delete(request: Request[Any, Any, Any], personality_id: str) -> Response[bytes]:
    reply = await commands.send(request, "presets", "delete", {"id": personality_id})
    return commands.written(reply)
