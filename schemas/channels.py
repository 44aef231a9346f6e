"""Channels = LLM providers (API.md §5): bodies, the read model, commands and events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

ChannelId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+\Z")]
AdapterType = Literal["openai", "claude", "gemini"]
ChannelStatus = Literal["idle", "active", "error", "cooldown", "disabled"]
Url = Annotated[str, Meta(min_length=1, max_length=500, pattern=r"^https?://\S+\Z")]
Secret = Annotated[str, Meta(min_length=1, max_length=500)]
Model = Annotated[str, Meta(min_length=1, max_length=200)]


class ApiKey(msgspec.Struct, forbid_unknown_fields=True):
    key: Secret
    name: Annotated[str, Meta(max_length=100)] = ""
    enabled: bool = True
    weight: Annotated[int, Meta(ge=1, le=100)] = 1


class Timeout(msgspec.Struct, forbid_unknown_fields=True):
    connect: Annotated[int, Meta(ge=100, le=120_000)] = 10_000
    read: Annotated[int, Meta(ge=100, le=600_000)] = 120_000


class Retry(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    max_attempts: Annotated[int, Meta(ge=1, le=10)] = 1


class Advanced(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=128_000)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None


Headers = Annotated[
    dict[Annotated[str, Meta(max_length=100)], Annotated[str, Meta(max_length=2000)]], Meta(max_length=50)
]


class ChannelFields(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    adapter_type: AdapterType = "openai"
    base_url: Url
    api_key: Secret | None = None
    api_keys: Annotated[list[ApiKey], Meta(max_length=100)] = []
    models: Annotated[list[Model], Meta(max_length=500)] = []
    priority: Annotated[int, Meta(ge=0, le=10_000)] = 100
    weight: Annotated[int, Meta(ge=1, le=100)] = 1
    enabled: bool = True
    timeout: Timeout = msgspec.field(default_factory=Timeout)
    retry: Retry = msgspec.field(default_factory=Retry)
    advanced: Advanced = msgspec.field(default_factory=Advanced)
    custom_headers: Headers = {}
    proxy: Annotated[str, Meta(max_length=500, pattern=r"^(https?|socks5h?)://\S+\Z")] | None = None


class CreateChannelBody(ChannelFields, kw_only=True):
    id: ChannelId | None = None


class UpdateChannelBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    adapter_type: AdapterType | UnsetType = UNSET
    base_url: Url | UnsetType = UNSET
    api_key: Secret | UnsetType | None = UNSET
    api_keys: Annotated[list[ApiKey], Meta(max_length=100)] | UnsetType = UNSET
    models: Annotated[list[Model], Meta(max_length=500)] | UnsetType = UNSET
    priority: Annotated[int, Meta(ge=0, le=10_000)] | UnsetType = UNSET
    weight: Annotated[int, Meta(ge=1, le=100)] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    timeout: Timeout | UnsetType = UNSET
    retry: Retry | UnsetType = UNSET
    advanced: Advanced | UnsetType = UNSET
    custom_headers: Headers | UnsetType = UNSET
    proxy: Annotated[str, Meta(max_length=500, pattern=r"^(https?|socks5h?)://\S+\Z")] | UnsetType | None = UNSET
    expected_version: Annotated[int, Meta(ge=0)] | UnsetType = UNSET


class ProviderBody(msgspec.Struct, kw_only=True):
    """NekoBot's `POST /api/llm/providers` shape."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]
    type: AdapterType = "openai"
    api_key: Secret | None = None
    base_url: Url
    model: Model | None = None
    enabled: bool = True
    id: ChannelId | None = None


class Channel(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    name: str
    adapter_type: AdapterType
    base_url: str
    api_key: str | None
    api_keys: list[dict[str, Any]]
    models: list[str]
    priority: int
    weight: int
    enabled: bool
    timeout: dict[str, Any]
    retry: dict[str, Any]
    advanced: dict[str, Any]
    custom_headers: dict[str, str]
    proxy: str | None
    status: str
    last_error: str | None
    tested_at: datetime | None
    cooldown_until: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


# ---- commands (cmd.channels.*) ----


class CreateChannel(msgspec.Struct, kw_only=True):
    id: str
    fields: dict[str, Any]


class UpdateChannel(msgspec.Struct, kw_only=True):
    id: str
    changes: dict[str, Any]
    expected_version: int | None = None


class DeleteChannel(msgspec.Struct, kw_only=True):
    id: str


class ResealChannel(msgspec.Struct, kw_only=True):
    """`chatbus secrets rotate`: seal the channel's secrets again under the current key."""

    id: str


class RecordChannelHealth(msgspec.Struct, kw_only=True):
    """After a test or a call: success clears errors; failures may cool the channel down or mark it."""

    id: str
    ok: bool
    error: str | None = None
    retry_after: float | None = None
    tested: bool = False


# ---- events ----


class ChannelCreated(msgspec.Struct, kw_only=True):
    id: str
    fields: dict[str, Any]


class ChannelUpdated(msgspec.Struct, kw_only=True):
    changes: dict[str, Any]


class ChannelDeleted(msgspec.Struct, kw_only=True):
    id: str


class ChannelStatusChanged(msgspec.Struct, kw_only=True):
    status: ChannelStatus
    last_error: str | None = None
    cooldown_until: float | None = None
    tested_at: float | None = None
    consecutive_failures: int = 0


ChannelEvent = ChannelCreated | ChannelUpdated | ChannelDeleted | ChannelStatusChanged
