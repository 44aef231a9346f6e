"""Plugins and the command registry (API.md §9, DESIGN.md "Plugins"): the manifest a plugin zip
carries, the commands of `cmd.plugins.*`, and the events of the `plugins` domain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

PluginName = Annotated[str, Meta(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*\Z")]
# A command word: no whitespace (the first word of a message is the command).
CommandWord = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^\S+\Z")]
Digest = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]
CommandPermission = Literal["member", "admin", "master"]
MANIFEST_FILE = "chatbus-plugin.json"


class ManifestCommand(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: CommandWord
    tool: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+\Z")]
    aliases: Annotated[list[CommandWord], Meta(max_length=10)] = []
    permission: CommandPermission = "member"
    description: Annotated[str, Meta(max_length=200)] = ""


class Manifest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename={"config_schema": "configSchema"}):
    """`chatbus-plugin.json`. `entry` is the argv of the MCP stdio server, run in the plugin's folder;
    `python` as its first word means chatbus's own interpreter. `timeout` bounds one tool call (s)."""

    name: PluginName
    version: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._+-]+\Z")]
    entry: Annotated[list[Annotated[str, Meta(min_length=1, max_length=500)]], Meta(min_length=1, max_length=20)]
    description: Annotated[str, Meta(max_length=500)] = ""
    author: Annotated[str, Meta(max_length=100)] = ""
    commands: Annotated[list[ManifestCommand], Meta(max_length=50)] = []
    config_schema: dict[str, Any] = {}
    timeout: Annotated[float, Meta(gt=0, le=300)] = 30.0


# ---- commands (cmd.plugins.*) ----


class InstallPlugin(msgspec.Struct, kw_only=True):
    """The edge checked the zip and stored its bytes under `digest`; the manifest is the zip's."""

    digest: Digest
    size: int
    manifest: dict[str, Any]
    overwrite: bool = False


class PluginRef(msgspec.Struct, kw_only=True):
    name: str


class ConfigurePlugin(msgspec.Struct, kw_only=True):
    name: str
    config: dict[str, Any]


class ToggleCommand(msgspec.Struct, kw_only=True):
    handler_full_name: str
    enabled: bool


class RenameCommand(msgspec.Struct, kw_only=True):
    handler_full_name: str
    new_name: str
    aliases: list[str] | None = None


class ResolveConflict(msgspec.Struct, kw_only=True):
    conflict_key: str
    resolution_strategy: Literal["keep_first", "keep_second", "alias_first", "alias_second"]
    keep_handler_full_name: str | None = None


# ---- events ----


class PluginInstalled(msgspec.Struct, kw_only=True):
    name: str
    version: str
    digest: str
    size: int
    manifest: dict[str, Any]


class PluginEnabled(msgspec.Struct, kw_only=True):
    name: str


class PluginDisabled(msgspec.Struct, kw_only=True):
    name: str


class PluginConfigured(msgspec.Struct, kw_only=True):
    name: str
    config: dict[str, Any]


class PluginReloaded(msgspec.Struct, kw_only=True):
    name: str
    revision: int  # bumped per reload: the runtime restarts a plugin whose revision changed


class PluginRemoved(msgspec.Struct, kw_only=True):
    name: str


class CommandToggled(msgspec.Struct, kw_only=True):
    handler_full_name: str
    enabled: bool


class CommandRenamed(msgspec.Struct, kw_only=True):
    handler_full_name: str
    new_name: str
    aliases: list[str] | None = None


class ConflictResolved(msgspec.Struct, kw_only=True):
    conflict_key: str
    strategy: str
    kept: str  # the handler that keeps the word; the others were disabled or renamed alongside


PluginsEvent = (
    PluginInstalled
    | PluginEnabled
    | PluginDisabled
    | PluginConfigured
    | PluginReloaded
    | PluginRemoved
    | CommandToggled
    | CommandRenamed
    | ConflictResolved
)
