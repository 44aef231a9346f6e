"""Plugins and commands (API.md §9) in NekoBot's shapes; every route needs an admin token.

The upload is checked here (services/plugins/artifact: the bytes, never run) and stored by digest
before the install command names that digest; the live status comes from the tools workers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import UploadFile

from api import commands
from api.bodycheck import json_object_body
from api.envelope import ApiError, ok
from api.security import require_admin
from api.state import edge_of
from bus import subjects
from schemas.errors import DomainError
from services.plugins import artifact, domain, queries
from services.plugins import commands as registry

MAX_BODY_BYTES = 64 * 1024
STATUS_WAIT = 1.0
STRAGGLERS = 0.05


async def _live(request: Request[Any, Any, Any]) -> dict[str, dict[str, Any]] | None:
    """The plugins as the tools workers run them, merged (None: no worker answered): a plugin is
    `running` only where every instance runs it; `instances` counts the instances that have it."""
    nc = edge_of(request).nc
    inbox = nc.new_inbox()
    answers: list[dict[str, Any]] = []
    first = asyncio.Event()

    async def collect(msg: Any) -> None:
        with contextlib.suppress(msgspec.DecodeError):
            answers.append(msgspec.json.decode(msg.data))
        first.set()

    sub = await nc.subscribe(inbox, cb=collect)
    try:
        await nc.publish(subjects.PLUGINS_STATUS, b"", reply=inbox)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), STATUS_WAIT)
            await asyncio.sleep(STRAGGLERS)  # the other instances answer within a few milliseconds
    finally:
        await sub.unsubscribe()
    if not answers:
        return None
    merged: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for name, state in answer.items():
            seen = merged.setdefault(name, {**state, "instances": 0})
            seen["instances"] += 1
            if state["status"] != "running" and seen["status"] == "running":
                seen.update(status=state["status"], error=state["error"])
    return merged


def _view(row: dict[str, Any], live: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    manifest = row["manifest"]
    state = (live or {}).get(row["name"])
    if not row["enabled"]:
        status, error = "stopped", None
    elif state is None:
        status, error = ("stopped", None) if live is not None else ("error", "no tools worker answered")
    else:
        status, error = state["status"], state["error"]
    return {
        "name": row["name"],
        "version": row["version"],
        "description": row["description"],
        "author": row["author"],
        "enabled": row["enabled"],
        "status": status,
        "error": error,
        "digest": row["digest"],
        "commands": [c["name"] for c in manifest.get("commands", [])],
        "tools": state["tools"] if state else [],
        "instances": state["instances"] if state else 0,
        "config": domain.shown_config(row["config"], manifest.get("configSchema")),
        "is_official": False,
        "installedAt": row["installed_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
    }


async def _one(request: Request[Any, Any, Any], name: str) -> dict[str, Any]:
    row = await queries.get_plugin(edge_of(request).pool, name)
    if row is None:
        raise ApiError("PLUGIN_NOT_FOUND", f"plugin '{name}' not found")
    return _view(row, await _live(request))


async def _name(request: Request[Any, Any, Any]) -> str:
    body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError("VALIDATION_ERROR", "`name` is required", details=[{"field": "name", "reason": "required"}])
    return name


class PluginController(Controller):
    path = "/api/plugins"
    tags = ["plugins"]
    guards = [require_admin]

    @get("/")
    async def page(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        live = await _live(request)
        items = [_view(r, live) for r in await queries.list_plugins(edge_of(request).pool)]
        return ok({"items": items, "total": len(items), "page": 1, "page_size": max(len(items), 1)})

    @get("/list")
    async def by_name(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        live = await _live(request)
        return ok({r["name"]: _view(r, live) for r in await queries.list_plugins(edge_of(request).pool)})

    @post("/upload", status_code=201)
    async def upload(self, request: Request[Any, Any, Any], overwrite: bool = False) -> Response[bytes]:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
            raise ApiError("UNSUPPORTED_MEDIA_TYPE", "upload a zip as multipart field `file`", status=415)
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError("VALIDATION_ERROR", "multipart upload needs a `file` field")
        data = await upload.read(artifact.MAX_ZIP_BYTES + 1)
        try:
            checked = await asyncio.to_thread(artifact.inspect, data)
        except DomainError as exc:
            raise ApiError(exc.code, exc.message, status=exc.status, details=exc.details) from exc
        await queries.put_blob(edge_of(request).pool, checked.digest, data)
        manifest = msgspec.to_builtins(checked.manifest)
        payload = {"digest": checked.digest, "size": checked.size, "manifest": manifest, "overwrite": overwrite}
        await commands.send(request, "plugins", "install", payload)
        return ok(await _one(request, checked.manifest.name), status=201)

    @post("/enable", status_code=200)
    async def enable(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        name = await _name(request)
        await commands.send(request, "plugins", "enable", {"name": name})
        return ok(await _one(request, name))

    @post("/disable", status_code=200)
    async def disable(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        name = await _name(request)
        await commands.send(request, "plugins", "disable", {"name": name})
        return ok(await _one(request, name))

    @post("/reload", status_code=200)
    async def reload(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        name = await _name(request)
        await commands.send(request, "plugins", "reload", {"name": name})
        return ok(await _one(request, name))

    @delete("/delete", status_code=200)
    async def delete_by_query(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        return commands.written(await commands.send(request, "plugins", "remove", {"name": name}))

    @post("/delete", status_code=200)
    async def delete_by_body(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        name = await _name(request)
        return commands.written(await commands.send(request, "plugins", "remove", {"name": name}))

    @get("/config")
    async def get_config(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        row = await queries.get_plugin(edge_of(request).pool, name)
        if row is None:
            raise ApiError("PLUGIN_NOT_FOUND", f"plugin '{name}' not found")
        schema = row["manifest"].get("configSchema") or {}
        return ok({"config": domain.shown_config(row["config"], schema), "schema": schema})

    async def _configure(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
        name, config = body.get("name"), body.get("config")
        if not isinstance(name, str) or not isinstance(config, dict):
            raise ApiError("VALIDATION_ERROR", "the body is {name, config: {...}}")
        reply = await commands.send(request, "plugins", "configure", {"name": name, "config": config})
        row = reply.result if isinstance(reply.result, dict) and "config" in reply.result else None
        if row is None:
            row = await queries.get_plugin(edge_of(request).pool, name)
        if row is None:
            raise ApiError("PLUGIN_NOT_FOUND", f"plugin '{name}' not found")
        # What was stored, masked: never the plaintext the client sent.
        return ok({"name": name, "config": domain.shown_config(row["config"], row["manifest"].get("configSchema"))})

    @put("/config")
    async def put_config(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await self._configure(request)

    @post("/config", status_code=200)
    async def post_config(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await self._configure(request)


class CommandController(Controller):
    path = "/api/commands"
    tags = ["commands"]
    guards = [require_admin]

    @get("/")
    async def list_commands(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return ok(registry.summary(await queries.command_handlers(edge_of(request).pool)))

    @get("/conflicts")
    async def conflicts(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return ok(registry.conflict_list(await queries.command_handlers(edge_of(request).pool)))

    @post("/toggle", status_code=200)
    async def toggle(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
        return commands.written(await commands.send(request, "plugins", "toggle_command", body))

    @post("/rename", status_code=200)
    async def rename(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
        return commands.written(await commands.send(request, "plugins", "rename_command", body))

    @post("/conflicts/{key:str}/resolve", status_code=200)
    async def resolve(self, request: Request[Any, Any, Any], key: str) -> Response[bytes]:
        body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
        payload = {**body, "conflict_key": key}
        return commands.written(await commands.send(request, "plugins", "resolve_conflict", payload))
