"""The config document (API.md §4): its schema, bodies and events. Unknown keys are refused, so a
typo is an error with its path rather than a setting silently ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Name = Annotated[str, Meta(max_length=200)]
Names = Annotated[list[Name], Meta(max_length=10_000)]


class _Section(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=False):
    pass


class Basic(_Section):
    command_prefix: Annotated[str, Meta(min_length=1, max_length=10)] = "#"
    debug: bool = False


class Admin(_Section):
    master_users: Names = []
    login_notify_private: bool = True


class Fallback(_Section):
    enabled: bool = True
    max_retries: Annotated[int, Meta(ge=0, le=10)] = 2


class Llm(_Section):
    default_model: Name = ""
    default_channel_id: Name = ""
    fallback: Fallback = msgspec.field(default_factory=Fallback)


class Presets(_Section):
    default_id: Name = "default"
    allow_user_switch: bool = True


class PrivateTrigger(_Section):
    enabled: bool = True
    mode: Literal["always", "prefix", "off"] = "always"


class GroupTrigger(_Section):
    enabled: bool = True
    at: bool = True
    prefixes: Names = []
    keywords: Names = []
    random_rate: Annotated[float, Meta(ge=0, le=1)] = 0.0


class Trigger(_Section):
    private: PrivateTrigger = msgspec.field(default_factory=PrivateTrigger)
    group: GroupTrigger = msgspec.field(default_factory=GroupTrigger)
    blacklist_users: Names = []
    whitelist_users: Names = []
    blacklist_groups: Names = []
    whitelist_groups: Names = []


class Isolation(_Section):
    group_user_isolation: bool = False
    private_isolation: bool = True


class Context(_Section):
    max_messages: Annotated[int, Meta(ge=1, le=1000)] = 20
    max_tokens: Annotated[int, Meta(ge=1, le=2_000_000)] = 8000
    isolation: Isolation = msgspec.field(default_factory=Isolation)


class Tools(_Section):
    enabled: bool = True
    builtin_enabled: bool = True
    allow_dangerous: bool = False
    disabled_tools: Names = []
    timeout_ms: Annotated[int, Meta(ge=100, le=600_000)] = 30_000
    max_rounds: Annotated[int, Meta(ge=0, le=20)] = 5


class Mcp(_Section):
    stdio_allowed_commands: Names = []


class RateLimit(_Section):
    # 0 turns the limiter off.
    requests_per_minute: Annotated[int, Meta(ge=0, le=1_000_000)] = 60


class Web(_Section):
    public_url: Annotated[str, Meta(max_length=500)] = ""
    port: Annotated[int, Meta(ge=1, le=65535)] = 6285


class Notifications(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool = True
    types: Names = []


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    theme: Literal["light", "dark", "auto"] = "auto"
    language: Annotated[str, Meta(max_length=20)] = "zh-CN"
    notifications: Notifications = msgspec.field(default_factory=Notifications)
    auto_restart: bool = False


class ConfigDocument(_Section):
    basic: Basic = msgspec.field(default_factory=Basic)
    admin: Admin = msgspec.field(default_factory=Admin)
    llm: Llm = msgspec.field(default_factory=Llm)
    presets: Presets = msgspec.field(default_factory=Presets)
    trigger: Trigger = msgspec.field(default_factory=Trigger)
    context: Context = msgspec.field(default_factory=Context)
    tools: Tools = msgspec.field(default_factory=Tools)
    mcp: Mcp = msgspec.field(default_factory=Mcp)
    rate_limit: RateLimit = msgspec.field(default_factory=RateLimit)
    web: Web = msgspec.field(default_factory=Web)
    # NekoBot's bot config is free-form: its keys belong to the bot, not to chatbus.
    bot: dict[str, Any] = msgspec.field(default_factory=dict)
    settings: Settings = msgspec.field(default_factory=Settings)


SECTIONS = tuple(ConfigDocument.__struct_encode_fields__)


class PathValueBody(msgspec.Struct):
    path: Annotated[str, Meta(min_length=1, max_length=300, pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\Z")]
    value: Any


class RollbackBody(msgspec.Struct):
    version: Annotated[int, Meta(ge=0)]


# ---- commands (cmd.config.*) ----


class UpdateConfig(msgspec.Struct, kw_only=True):
    patch: dict[str, Any]
    expected_version: int | None = None


class RollbackConfig(msgspec.Struct, kw_only=True):
    version: int


# ---- events (stream `config-global`; each carries the whole document, so history and rollback
# need no folding) ----


class ConfigChanged(msgspec.Struct, kw_only=True):
    document: dict[str, Any]
    paths: list[str]


class ConfigRolledBack(msgspec.Struct, kw_only=True):
    document: dict[str, Any]
    paths: list[str]
    to_version: int


ConfigEvent = ConfigChanged | ConfigRolledBack
