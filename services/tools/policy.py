"""Who may run which tool: a pure function of the tool, the admin's settings, the global config,
the preset, the group's overrides and the caller's scope (API.md §8 "Tools in chat").

Disabled anywhere is TOOL_DISABLED (403); a dangerous or admin-only tool asked for by a non-admin
caller is FORBIDDEN (403) unless the group (or, when the group says nothing, the global config)
allows dangerous tools."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.config import Tools as GlobalTools
from schemas.errors import DomainError
from schemas.presets import PresetTools
from services.tools.registry import ToolDef


@dataclass(frozen=True)
class ToolSettings:
    """The admin's toggles (the tools domain's read table): absent means the tool's default."""

    enabled: Mapping[str, bool] = field(default_factory=dict)
    categories: Mapping[str, bool] = field(default_factory=dict)
    dangerous: Mapping[str, bool] = field(default_factory=dict)

    def is_enabled(self, tool: ToolDef) -> bool:
        return self.enabled.get(tool.name, True) and self.categories.get(tool.category, True)

    def is_dangerous(self, tool: ToolDef) -> bool:
        return self.dangerous.get(tool.name, tool.dangerous)


def _disabled(name: str, why: str) -> DomainError:
    return DomainError("TOOL_DISABLED", f"tool '{name}' is disabled {why}")


def check(
    tool: ToolDef,
    settings: ToolSettings,
    config: GlobalTools,
    *,
    preset: PresetTools | None = None,
    group: Mapping[str, Any] | None = None,
    scope: str = "admin",
) -> None:
    """Raise the DomainError that refuses this call, or return when it may run."""
    name = tool.name
    if not config.enabled:
        raise _disabled(name, "(tools are turned off in the config)")
    if name in config.disabled_tools:
        raise _disabled(name, "in the config")
    if tool.source == "builtin" and not config.builtin_enabled:
        raise _disabled(name, "(built-in tools are turned off in the config)")
    if not settings.enabled.get(name, True):
        raise _disabled(name, "")
    if not settings.categories.get(tool.category, True):
        raise _disabled(name, f"(category '{tool.category}' is disabled)")
    if preset is not None:
        if tool.source == "builtin" and not preset.enable_builtin_tools:
            raise _disabled(name, "by the preset (built-in tools off)")
        if tool.source == "mcp" and not preset.enable_mcp_tools:
            raise _disabled(name, "by the preset (MCP tools off)")
        if preset.allowed_tools and name not in preset.allowed_tools:
            raise _disabled(name, "by the preset (not in allowedTools)")
        if name in preset.disabled_tools:
            raise _disabled(name, "by the preset")
    group = group or {}
    allowed = group.get("allowed") or []
    if name in (group.get("disabled") or []) or (allowed and name not in allowed):
        raise _disabled(name, "for this group")
    if scope == "admin":
        return
    if tool.permission == "admin":
        raise DomainError("FORBIDDEN", f"tool '{name}' is for admins only")
    if settings.is_dangerous(tool):
        group_allows = group.get("allowDangerous")
        allowed_dangerous = group_allows if isinstance(group_allows, bool) else config.allow_dangerous
        if not allowed_dangerous:
            raise DomainError("FORBIDDEN", f"tool '{name}' is dangerous: only an admin may run it here")


def permitted(
    tool: ToolDef,
    settings: ToolSettings,
    config: GlobalTools,
    *,
    preset: PresetTools | None = None,
    group: Mapping[str, Any] | None = None,
    scope: str = "admin",
) -> bool:
    try:
        check(tool, settings, config, preset=preset, group=group, scope=scope)
    except DomainError:
        return False
    return True
