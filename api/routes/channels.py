"""Channels (API.md §5): ChatAI `/api/channels` and NekoBot `/api/llm/providers` over one aggregate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import Parameter

from api import commands
from api.envelope import ApiError, ok
from api.pagination import Order, PageNumber, PageSize, page
from api.state import edge_of
from schemas.channels import CreateChannelBody, ProviderBody, UpdateChannelBody
from schemas.secrets import mask
from services.channels import queries
from services.channels.domain import derive_id
from services.chat import queries as chat_queries

ChannelSort = Literal["priority", "name", "createdAt", "id"]
PROBE_TIMEOUT = 130.0


def masked(channel: Any) -> dict[str, Any]:
    view: dict[str, Any] = mask(queries.to_builtins(channel))
    return view


def provider_view(channel: dict[str, Any]) -> dict[str, Any]:
    """NekoBot's provider shape over a (masked) channel."""
    return {
        "id": channel["id"],
        "name": channel["name"],
        "type": channel["adapterType"],
        "api_key": channel.get("apiKey"),
        "base_url": channel["baseUrl"],
        "model": (channel.get("models") or [None])[0],
        "enabled": channel["enabled"],
    }


async def _load(request: Request[Any, Any, Any], channel_id: str) -> dict[str, Any]:
    channel = await queries.get_channel(edge_of(request).pool, channel_id)
    if channel is None:
        raise ApiError("CHANNEL_NOT_FOUND", f"channel '{channel_id}' not found")
    return masked(channel)


class ChannelController(Controller):
    path = "/api/channels"
    tags = ["channels"]

    @get("/")
    async def list_channels(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: PageSize = 20,
        sort_by: ChannelSort = "priority",
        order: Order = "asc",
        with_stats: Annotated[bool, Parameter(query="withStats")] = False,
    ) -> Response[bytes]:
        items, total = await queries.list_channels(
            edge_of(request).pool, sort_by=sort_by, order=order, page=page_number, page_size=page_size
        )
        out = [masked(c) for c in items]
        if with_stats:
            stats = await chat_queries.channel_stats(edge_of(request).pool)
            for item in out:
                item["stats"] = stats.get(item["id"], queries.EMPTY_STATS)
        return ok(page(out, total, page_number, page_size))

    @post("/")
    async def create_channel(self, request: Request[Any, Any, Any], data: CreateChannelBody) -> Response[bytes]:
        fields: dict[str, Any] = msgspec.to_builtins(data)
        channel_id = fields.pop("id", None) or derive_id(data.name)
        reply = await commands.send(request, "channels", "create", {"id": channel_id, "fields": fields})
        return commands.written(reply, status=201)

    @get("/{channel_id:str}")
    async def get_channel(self, request: Request[Any, Any, Any], channel_id: str) -> Response[bytes]:
        channel = await _load(request, channel_id)
        return ok(channel, headers={"ETag": f'"{channel["version"]}"'})

    @put("/{channel_id:str}")
    async def update_channel(
        self, request: Request[Any, Any, Any], channel_id: str, data: UpdateChannelBody
    ) -> Response[bytes]:
        changes: dict[str, Any] = msgspec.to_builtins(data)
        expected = commands.expected_version(request, changes)
        payload = {"id": channel_id, "changes": changes, "expected_version": expected}
        reply = await commands.send(request, "channels", "update", payload)
        return commands.written(reply)

    @delete("/{channel_id:str}", status_code=200)
    async def delete_channel(self, request: Request[Any, Any, Any], channel_id: str) -> Response[bytes]:
        reply = await commands.send(request, "channels", "delete", {"id": channel_id})
        return commands.written(reply)


class ChannelTestBody(msgspec.Struct):
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class UnsavedChannelBody(CreateChannelBody, kw_only=True):
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class FetchModelsBody(UnsavedChannelBody, kw_only=True):
    """Listing a provider's models needs its address and key, not a name for a channel never saved."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "unsaved"


def _unsaved_fields(data: UnsavedChannelBody) -> dict[str, Any]:
    fields: dict[str, Any] = msgspec.to_builtins(data)
    fields.pop("id", None)
    fields.pop("model", None)
    return fields


class ChannelProbeController(Controller):
    """Real calls to a provider: bounded by the channel's own timeouts, so they get a long command timeout."""

    path = "/api/channels"
    tags = ["channels"]

    @post("/{channel_id:str}/test", status_code=200)
    async def test_channel(
        self, request: Request[Any, Any, Any], channel_id: str, data: ChannelTestBody | None = None
    ) -> Response[bytes]:
        payload = {"id": channel_id, "model": data.model if data else None}
        reply = await commands.send(request, "channels", "test", payload, timeout=PROBE_TIMEOUT)
        return commands.written(reply)

    @post("/test", status_code=200)
    async def test_unsaved(self, request: Request[Any, Any, Any], data: UnsavedChannelBody) -> Response[bytes]:
        payload = {"fields": _unsaved_fields(data), "model": data.model}
        reply = await commands.send(request, "channels", "test", payload, timeout=PROBE_TIMEOUT)
        return commands.written(reply)

    @get("/{channel_id:str}/models")
    async def channel_models(self, request: Request[Any, Any, Any], channel_id: str) -> Response[bytes]:
        reply = await commands.send(request, "channels", "models", {"id": channel_id}, timeout=PROBE_TIMEOUT)
        return commands.written(reply)

    @post("/fetch-models", status_code=200)
    async def fetch_models(self, request: Request[Any, Any, Any], data: FetchModelsBody) -> Response[bytes]:
        reply = await commands.send(
            request, "channels", "models", {"fields": _unsaved_fields(data)}, timeout=PROBE_TIMEOUT
        )
        return commands.written(reply)


class ProviderController(Controller):
    path = "/api/llm/providers"
    tags = ["channels"]

    @get("/")
    async def list_providers(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: PageSize = 20,
        sort_by: ChannelSort = "priority",
        order: Order = "asc",
    ) -> Response[bytes]:
        items, total = await queries.list_channels(
            edge_of(request).pool, sort_by=sort_by, order=order, page=page_number, page_size=page_size
        )
        return ok(page([provider_view(masked(c)) for c in items], total, page_number, page_size))

    @post("/")
    async def create_provider(self, request: Request[Any, Any, Any], data: ProviderBody) -> Response[bytes]:
        fields: dict[str, Any] = {
            "name": data.name,
            "adapterType": data.type,
            "baseUrl": data.base_url,
            "enabled": data.enabled,
            "models": [data.model] if data.model else [],
        }
        if data.api_key:
            fields["apiKey"] = data.api_key
        channel_id = data.id or derive_id(data.name)
        reply = await commands.send(request, "channels", "create", {"id": channel_id, "fields": fields})
        return ok(provider_view(reply.result), status=201)

    @delete("/{channel_id:str}", status_code=200)
    async def delete_provider(self, request: Request[Any, Any, Any], channel_id: str) -> Response[bytes]:
        reply = await commands.send(request, "channels", "delete", {"id": channel_id})
        return commands.written(reply)
