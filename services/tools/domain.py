"""The tools domain, pure: the admin's settings (one stream) and the record of each call."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bus.events import EventCatalog
from schemas.mcp import McpServerAdded, McpServerRemoved, McpServerUpdated
from schemas.tools import (
    SetDangerous,
    ToolCalled,
    ToolCategoryToggled,
    ToolDangerousSet,
    ToolsEvent,
    ToolToggled,
)

EVENTS = EventCatalog.of(
    "tools",
    ToolToggled,
    ToolCategoryToggled,
    ToolDangerousSet,
    ToolCalled,
    McpServerAdded,
    McpServerUpdated,
    McpServerRemoved,
)
SETTINGS_STREAM = "tools-settings"
CALL_PREFIX = "toolcall-"


def call_stream(command_id: str) -> str:
    return f"{CALL_PREFIX}{command_id}"


@dataclass(frozen=True)
class SettingsState:
    version: int = 0
    enabled: dict[str, bool] = field(default_factory=dict)
    categories: dict[str, bool] = field(default_factory=dict)
    dangerous: dict[str, bool] = field(default_factory=dict)


def evolve(state: SettingsState, event: ToolsEvent) -> SettingsState:
    version = state.version + 1
    if isinstance(event, ToolToggled):
        return replace(state, version=version, enabled={**state.enabled, event.name: event.enabled})
    if isinstance(event, ToolCategoryToggled):
        return replace(state, version=version, categories={**state.categories, event.category: event.enabled})
    if isinstance(event, ToolDangerousSet):
        return replace(state, version=version, dangerous={**state.dangerous, event.name: event.dangerous})
    return replace(state, version=version)


def decide_toggle(state: SettingsState, name: str, enabled: bool | None) -> list[ToolsEvent]:
    """`enabled=None` flips; setting what is already set records nothing."""
    current = state.enabled.get(name, True)
    target = (not current) if enabled is None else enabled
    return [] if target == current and name in state.enabled else [ToolToggled(name=name, enabled=target)]


def decide_toggle_category(state: SettingsState, category: str, enabled: bool | None) -> list[ToolsEvent]:
    current = state.categories.get(category, True)
    target = (not current) if enabled is None else enabled
    if target == current and category in state.categories:
        return []
    return [ToolCategoryToggled(category=category, enabled=target)]


def decide_set_all(state: SettingsState, names: list[str], enabled: bool) -> list[ToolsEvent]:
    return [ToolToggled(name=n, enabled=enabled) for n in names if state.enabled.get(n, True) != enabled]


def decide_dangerous(state: SettingsState, cmd: SetDangerous, defaults: dict[str, bool]) -> list[ToolsEvent]:
    """One tool's flag, or (`tools`) exactly that set dangerous among the known tools and the flagged ones."""

    def current(name: str) -> bool:
        return state.dangerous.get(name, defaults.get(name, False))

    if cmd.tools is None:
        if not cmd.name:
            return []
        return [] if current(cmd.name) == cmd.dangerous else [ToolDangerousSet(name=cmd.name, dangerous=cmd.dangerous)]
    wanted = set(cmd.tools)
    names = sorted(set(defaults) | set(state.dangerous) | wanted)
    return [ToolDangerousSet(name=n, dangerous=n in wanted) for n in names if current(n) != (n in wanted)]


def call_record(
    *, name: str, arguments: dict[str, Any], result: Any, error: str | None, duration_ms: float, **who: Any
) -> ToolCalled:
    return ToolCalled(
        tool_name=name,
        arguments=arguments,
        result=result,
        success=error is None,
        error=error,
        duration_ms=round(duration_ms, 2),
        **who,
    )
