"""Tools (API.md §8, DESIGN.md "Tools and MCP"): the registry view over every tool source, the
admin's settings, `cmd.tools.call` and the tool log."""

from services.module import DomainModule, WorkerContext, combined, transactional
from services.tools import domain, handlers, projection
from services.tools.builtin import BuiltinSource
from services.tools.registry import SOURCE_FACTORIES, ToolRegistry
from services.tools.service import ToolService


def build_registry(ctx: WorkerContext) -> ToolRegistry:
    """Built-ins first (never shadowed), then every registered source (MCP, plugins)."""
    registry = ToolRegistry([BuiltinSource(ctx.store.pool)])
    for factory in SOURCE_FACTORIES:
        registry.add_source(factory(ctx))
    return registry


MODULE = DomainModule(
    name="tools",
    events=domain.EVENTS,
    handlers=combined(
        transactional(handlers.HANDLERS),
        lambda ctx: ToolService(ctx.store, ctx.nc, ctx.config, build_registry(ctx)).handlers(),
    ),
    projections=(projection.PROJECTION,),
)
