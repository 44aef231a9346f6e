"""Tools (API.md §8, DESIGN.md "Tools and MCP"): the registry view over every tool source, the
admin's settings, `cmd.tools.call`, the tool log, and the MCP servers (configs as events, one
`McpManager` per tools worker offered to the registry as the `mcp` source)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from bus.worker import CommandFn
from services.module import DomainModule, WorkerContext, transactional
from services.tools import domain, handlers, projection
from services.tools.mcp import store as mcp_store
from services.tools.registry import SOURCE_FACTORIES, ToolRegistry

# The worker's side (the MCP runtime, the tool service, the read caches) is imported in the functions
# that build it: an edge imports this package for its queries and carries none of it.
if TYPE_CHECKING:
    from services.tools.mcp.runtime import McpRuntime


def build_registry(ctx: WorkerContext, *extra: McpRuntime) -> ToolRegistry:
    """Built-ins first (never shadowed), then this worker's MCP servers, then every registered source."""
    from services.tools.builtin import BuiltinSource

    registry = ToolRegistry([BuiltinSource(ctx.store.pool)])
    for source in extra:
        registry.add_source(source)
    for factory in SOURCE_FACTORIES:
        registry.add_source(factory(ctx))
    return registry


def start_mcp(ctx: WorkerContext) -> McpRuntime:
    """The worker's MCP runtime, started now (the handler factory runs in the worker's event loop) and
    stopped with the worker process (its stdio servers are child processes)."""
    from services.tools.mcp.runtime import McpRuntime

    runtime = McpRuntime(ctx.store.pool, ctx.nc)
    ctx.run_with_worker(runtime, "mcp-start")
    return runtime


def worker_handlers(ctx: WorkerContext) -> Mapping[str, CommandFn]:
    from services.tools.mcp.commands import McpCommands
    from services.tools.service import ToolService
    from services.worker_reads import worker_reads

    mcp = start_mcp(ctx)
    reads = worker_reads(ctx)
    service = ToolService(ctx.store, ctx.nc, ctx.config, build_registry(ctx, mcp), reads)
    reads.local.update({"tools.list": service.list, "tools.call": service.call})  # a chat turn's shortcut
    return {
        **transactional(handlers.HANDLERS)(ctx),
        **service.handlers(),
        **McpCommands(ctx.store, mcp).handlers(),
    }


MODULE = DomainModule(
    name="tools",
    events=domain.EVENTS,
    handlers=worker_handlers,
    projections=(projection.PROJECTION, mcp_store.PROJECTION),
)
