"""Config and settings (API.md §4): the whole document, its history and rollback, and the
`bot` (NekoBot) and `settings` sections as views of the same document."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post, put

from api import commands
from api.bodycheck import json_object_body
from api.envelope import ApiError, ok
from api.pagination import PageNumber, PageSize, page
from api.state import edge_of
from schemas.config import SECTIONS, PathValueBody, RollbackBody
from schemas.secrets import mask
from services.config import domain, queries

MAX_CONFIG_BYTES = 256 * 1024


def _to_patch(body: dict[str, Any]) -> dict[str, Any]:
    """A partial document, or `{path: "a.b.c", value}`."""
    if set(body) == {"path", "value"}:
        try:
            pv = msgspec.convert(body, PathValueBody)
        except msgspec.ValidationError as exc:
            raise ApiError(
                "VALIDATION_ERROR", f"invalid path: {exc}", details=[{"field": "path", "reason": str(exc)}]
            ) from exc
        return domain.patch_for_path(pv.path, pv.value)
    body.pop("expectedVersion", None)
    return body


async def _update(request: Request[Any, Any, Any], patch: dict[str, Any], expected: int | None) -> dict[str, Any]:
    reply = await commands.send(request, "config", "update", {"patch": patch, "expected_version": expected})
    result: dict[str, Any] = reply.result
    return result


class ConfigController(Controller):
    path = "/api"
    tags = ["config"]

    @get("/config")
    async def get_config(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        state = await queries.current(edge_of(request).pool)
        return ok({"config": mask(state.document), "version": state.version}, headers={"ETag": f'"{state.version}"'})

    @put("/config")
    async def put_config(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await json_object_body(request, max_bytes=MAX_CONFIG_BYTES)
        expected = commands.expected_version(request, body)
        return ok(await _update(request, _to_patch(body), expected))

    @get("/config/history")
    async def config_history(
        self, request: Request[Any, Any, Any], page_number: PageNumber = 1, page_size: PageSize = 20
    ) -> Response[bytes]:
        items, total = await queries.history(edge_of(request).pool, page=page_number, page_size=page_size)
        return ok(page(items, total, page_number, page_size))

    @post("/config/rollback", status_code=200)
    async def rollback(self, request: Request[Any, Any, Any], data: RollbackBody) -> Response[bytes]:
        reply = await commands.send(request, "config", "rollback", {"version": data.version})
        return commands.written(reply)

    @get(["/bot/config", "/settings"])
    async def get_section(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        section = _section_of(request)
        state = await queries.current(edge_of(request).pool)
        return ok(mask(state.document[section]), headers={"ETag": f'"{state.version}"'})

    @put(["/bot/config", "/settings"])
    async def put_section(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        section = _section_of(request)
        body = await json_object_body(request, max_bytes=MAX_CONFIG_BYTES)
        # The bot section is free-form (NekoBot's): its body's keys are all data, so only If-Match counts.
        expected = commands.expected_version(request, body) if section != "bot" else commands.if_match(request)
        result = await _update(request, {section: body}, expected)
        return ok({section: result["config"][section], "version": result["version"], "updated": result["updated"]})


def _section_of(request: Request[Any, Any, Any]) -> str:
    section = "bot" if request.url.path.startswith("/api/bot/") else "settings"
    assert section in SECTIONS
    return section
