"""Presets, ChatAI dialect (API.md §7): /api/presets."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
import yaml
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import Parameter

from api import commands
from api.envelope import ApiError, ok
from api.pagination import Order, PageNumber, PageSize, Search, page
from api.state import edge_of
from schemas.errors import DomainError
from schemas.presets import CopyPresetBody, CreatePresetBody, Preset, UpdatePresetBody
from services.presets import queries
from services.presets.domain import derive_id
from services.presets.importfile import MAX_IMPORT_BYTES, parse_import

PresetSort = Literal["id", "name", "createdAt", "updatedAt", "type", "category"]
PresetType = Literal["system", "user", "all"]
_EXPORT_DROP = ("type", "isDefault", "createdAt", "updatedAt", "version")


async def load_preset(request: Request[Any, Any, Any], preset_id: str) -> Preset:
    preset = await queries.get_preset(edge_of(request).pool, preset_id)
    if preset is None:
        raise ApiError("PRESET_NOT_FOUND", f"preset '{preset_id}' not found")
    return preset


def create_payload(body: CreatePresetBody) -> dict[str, Any]:
    fields: dict[str, Any] = msgspec.to_builtins(body)
    preset_id = fields.pop("id", None) or derive_id(body.name)
    return {"id": preset_id, "fields": fields, "type": "user"}


def version_headers(version: int | None) -> dict[str, str] | None:
    return {"ETag": f'"{version}"'} if version is not None else None


class PresetController(Controller):
    path = "/api/presets"
    tags = ["presets"]

    @get("/")
    async def list_presets(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: PageSize = 20,
        sort_by: PresetSort = "createdAt",
        order: Order = "asc",
        search: Search = None,
        type_: Annotated[PresetType, Parameter(query="type")] = "all",
    ) -> Response[bytes]:
        edge = edge_of(request)
        generation = edge.pages.generation("presets")  # before the read: a write meanwhile voids the page
        items, total = await queries.list_presets(
            edge.pool,
            type_=type_,
            search=search,
            sort_by=sort_by,
            order=order,
            page=page_number,
            page_size=page_size,
        )
        response = ok(page(items, total, page_number, page_size))
        edge.pages.put(request.scope["path"], request.scope["query_string"], generation, response.content)
        return response

    @post("/")
    async def create_preset(self, request: Request[Any, Any, Any], data: CreatePresetBody) -> Response[bytes]:
        reply = await commands.send(request, "presets", "create", create_payload(data))
        return commands.written(reply, status=201)

    @get("/{preset_id:str}")
    async def get_preset(self, request: Request[Any, Any, Any], preset_id: str) -> Response[bytes]:
        preset = await load_preset(request, preset_id)
        return ok(preset, headers=version_headers(preset.version))

    @put("/{preset_id:str}")
    async def update_preset(
        self, request: Request[Any, Any, Any], preset_id: str, data: UpdatePresetBody
    ) -> Response[bytes]:
        changes: dict[str, Any] = msgspec.to_builtins(data)
        expected = commands.expected_version(request, changes)
        reply = await commands.send(
            request, "presets", "update", {"id": preset_id, "changes": changes, "expected_version": expected}
        )
        return commands.written(reply)

    @delete("/{preset_id:str}", status_code=200)
    async def delete_preset(self, request: Request[Any, Any, Any], preset_id: str) -> Response[bytes]:
        reply = await commands.send(
            request, "presets", "delete", {"id": preset_id, "expected_version": commands.if_match(request)}
        )
        return commands.written(reply)

    @post("/{preset_id:str}/set-default", status_code=200)
    async def set_default(self, request: Request[Any, Any, Any], preset_id: str) -> Response[bytes]:
        reply = await commands.send(request, "presets", "set_default", {"id": preset_id})
        return commands.written(reply)

    @post("/{preset_id:str}/copy", status_code=201)
    async def copy_preset(
        self, request: Request[Any, Any, Any], preset_id: str, data: CopyPresetBody
    ) -> Response[bytes]:
        reply = await commands.send(
            request, "presets", "copy", {"id": preset_id, "new_id": data.new_id, "new_name": data.new_name}
        )
        return commands.written(reply, status=201)

    @get("/{preset_id:str}/export")
    async def export_preset(
        self,
        request: Request[Any, Any, Any],
        preset_id: str,
        format_: Annotated[Literal["json", "yaml"], Parameter(query="format")] = "json",
    ) -> Response[bytes]:
        doc = msgspec.to_builtins(await load_preset(request, preset_id))
        for key in _EXPORT_DROP:
            doc.pop(key, None)
        disposition = {"Content-Disposition": f'attachment; filename="{preset_id}.{format_}"'}
        if format_ == "yaml":
            body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()
            return Response(content=body, media_type="application/x-yaml", headers=disposition)
        return ok(doc, headers=disposition)

    @post("/import", status_code=200)
    async def import_presets(self, request: Request[Any, Any, Any], overwrite: bool = False) -> Response[bytes]:
        documents = await read_import(request)
        reply = await commands.send(request, "presets", "import", {"presets": documents, "overwrite": overwrite})
        return commands.written(reply)


async def read_import(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """A preset file (JSON or YAML, raw body or multipart `file`) -> a list of preset documents."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError("VALIDATION_ERROR", "multipart import needs a `file` field")
        raw = await upload.read(MAX_IMPORT_BYTES + 1)
        is_yaml = (upload.filename or "").lower().endswith((".yaml", ".yml"))
    else:
        raw = await request.body()
        is_yaml = "yaml" in content_type
    try:
        # Off the event loop: even a bounded YAML parse is CPU work the other requests should not wait on.
        return await asyncio.to_thread(parse_import, raw, is_yaml=is_yaml)
    except DomainError as exc:
        raise ApiError(exc.code, exc.message, status=exc.status) from exc
