"""The tool registry: one view over every tool source (built-in, MCP, plugins).

A source is anything with `kind`, `tools()` and `call()` (the `ToolSource` protocol); the MCP client
layer and plugins plug in by `ToolRegistry.add_source`. The first source that names a tool wins, so
the built-ins can never be shadowed; MCP tools are named `<server>__<tool>` (`mcp_tool_name`) so two
servers never shadow each other."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from schemas.tools import ToolSourceKind

if TYPE_CHECKING:
    from services.module import WorkerContext

MAX_TOOL_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def mcp_tool_name(server: str, tool: str) -> str:
    """`<server>__<tool>`, sanitised to `[A-Za-z0-9_-]` and at most 64 characters (what providers accept)."""
    return _UNSAFE.sub("_", f"{server}__{tool}")[:MAX_TOOL_NAME]


@dataclass(frozen=True)
class ToolDef:
    """A tool as its source defines it (the admin's enable/dangerous settings come on top)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    source: ToolSourceKind = "builtin"
    category: str = "basic"
    server_name: str | None = None
    dangerous: bool = False  # the source's default; an admin may change it
    permission: str = "member"


@dataclass(frozen=True)
class CallContext:
    """Who runs a tool, and where: a tool that reads history reads only the caller's own."""

    caller: str = ""
    scope: str = "admin"
    conversation_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None


class ToolError(Exception):
    """A tool refused its arguments or failed; the message is what the caller (and the model) sees."""


@runtime_checkable
class ToolSource(Protocol):
    kind: ToolSourceKind

    def tools(self) -> Sequence[ToolDef]: ...

    async def call(self, name: str, arguments: dict[str, Any], context: CallContext) -> Any: ...


@dataclass
class ToolRegistry:
    sources: list[ToolSource] = field(default_factory=list)

    def add_source(self, source: ToolSource) -> None:
        self.sources.append(source)

    def remove_source(self, source: ToolSource) -> None:
        self.sources = [s for s in self.sources if s is not source]

    def tools(self) -> list[ToolDef]:
        seen: dict[str, ToolDef] = {}
        for source in self.sources:
            for tool in source.tools():
                seen.setdefault(tool.name, tool)
        return list(seen.values())

    def find(self, name: str) -> tuple[ToolDef, ToolSource] | None:
        for source in self.sources:
            for tool in source.tools():
                if tool.name == name:
                    return tool, source
        return None


# Extra sources every tools worker builds (the MCP manager, plugins): a factory per source.
SourceFactory = Callable[["WorkerContext"], ToolSource]
SOURCE_FACTORIES: list[SourceFactory] = []


def register_source(factory: SourceFactory) -> SourceFactory:
    SOURCE_FACTORIES.append(factory)
    return factory
