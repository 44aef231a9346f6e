"""Tools (API.md §8): the registry view, HTTP bodies, the commands of `cmd.tools.*` and the events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from schemas.mcp import McpServerAdded, McpServerRemoved, McpServerUpdated

ToolName = Annotated[str, Meta(min_length=1, max_length=200)]
CategoryKey = Annotated[str, Meta(min_length=1, max_length=100)]
ToolSourceKind = Literal["builtin", "mcp", "plugin"]


class ToolInfo(msgspec.Struct, rename="camel", kw_only=True):
    """One tool as the API shows it: its definition merged with the admin's settings."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = {}
    source: ToolSourceKind = "builtin"
    server_name: str | None = None
    category: str = "basic"
    enabled: bool = True
    dangerous: bool = False
    permission: Literal["member", "admin"] = "member"
    is_builtin: bool = True


# ---- HTTP bodies (every spelling of both seed clients) ----


class ToggleBody(msgspec.Struct, kw_only=True):
    enabled: bool | None = None  # absent: flip


class ToolToggleBody(msgspec.Struct, rename="camel", kw_only=True):
    tool_name: ToolName
    enabled: bool | None = None


class CategoryToggleBody(msgspec.Struct, kw_only=True):
    category: CategoryKey
    enabled: bool | None = None


class DangerousBody(msgspec.Struct, rename="camel", kw_only=True):
    tools: Annotated[list[ToolName], Meta(max_length=1000)] | None = None
    allow_dangerous: bool | None = None


class DangerousToggleBody(msgspec.Struct, rename="camel", kw_only=True):
    tool_name: ToolName
    is_dangerous: bool


class CallBody(msgspec.Struct, kw_only=True):
    """`POST /api/tools/call {name, args}`; `arguments` accepted too."""

    name: ToolName
    args: dict[str, Any] | None = None
    arguments: dict[str, Any] | None = None


class TestBody(msgspec.Struct, rename="camel", kw_only=True):
    """`POST /api/tools/test {toolName, arguments}`; `args` accepted too."""

    tool_name: ToolName
    arguments: dict[str, Any] | None = None
    args: dict[str, Any] | None = None


class SkillExecuteBody(msgspec.Struct, rename="camel", kw_only=True):
    """`POST /api/skills/execute {toolName, args, presetId?}`; `arguments` accepted too."""

    tool_name: ToolName
    args: dict[str, Any] | None = None
    arguments: dict[str, Any] | None = None
    preset_id: Annotated[str, Meta(max_length=200)] | None = None


# ---- commands (cmd.tools.*) ----


class Caller(msgspec.Struct, kw_only=True):
    subject: str = ""
    scope: str = "none"  # "admin" | "group:<id>"; absent: the command's actor, else no privilege


class CallTool(msgspec.Struct, kw_only=True):
    name: str
    arguments: dict[str, Any] = {}
    caller: Caller | None = None
    conversation_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    preset_id: str | None = None


class ListTools(msgspec.Struct, kw_only=True):
    """Every tool; with `usable_by`, only those the policy lets that caller run (for a chat turn)."""

    usable_by: CallTool | None = None


class ToggleTool(msgspec.Struct, kw_only=True):
    name: str
    enabled: bool | None = None  # None: flip


class ToggleCategory(msgspec.Struct, kw_only=True):
    category: str
    enabled: bool | None = None


class SetDangerous(msgspec.Struct, kw_only=True):
    """`name` + `dangerous` for one tool, or `tools`: exactly this set of tools is dangerous."""

    name: str | None = None
    dangerous: bool = True
    tools: list[str] | None = None
    allow_dangerous: bool | None = None  # the global config's `tools.allowDangerous`


class SetAllTools(msgspec.Struct, kw_only=True):
    enabled: bool


# ---- events ----
# Settings live on one stream, `tools-settings`; each call is its own stream `toolcall-<command id>`,
# so a retried call id can never be recorded twice.


class ToolToggled(msgspec.Struct, kw_only=True):
    name: str
    enabled: bool


class ToolCategoryToggled(msgspec.Struct, kw_only=True):
    category: str
    enabled: bool


class ToolDangerousSet(msgspec.Struct, kw_only=True):
    name: str
    dangerous: bool


class ToolCalled(msgspec.Struct, kw_only=True):
    tool_name: str
    arguments: dict[str, Any] = {}
    result: Any = None
    success: bool = True
    error: str | None = None
    duration_ms: float = 0.0
    source: str = "builtin"
    caller: str = ""
    caller_scope: str = ""
    user_id: str | None = None
    group_id: str | None = None
    conversation_id: str | None = None


ToolsEvent = (
    ToolToggled
    | ToolCategoryToggled
    | ToolDangerousSet
    | ToolCalled
    | McpServerAdded
    | McpServerUpdated
    | McpServerRemoved
)
