"""Plugins (API.md §9, DESIGN.md "Plugins"): uploaded artifacts, their lifecycle as events, the
command registry; the plugin processes run in the tools workers as the `plugin` tool source."""

from __future__ import annotations

from services.module import DomainModule, WorkerContext, transactional
from services.plugins import domain, handlers, projection
from services.tools.registry import ToolSource, register_source


@register_source
def plugin_source(ctx: WorkerContext) -> ToolSource:
    """Every tools worker runs the enabled plugins, started now and stopped with the worker."""
    from services.plugins.runtime import PluginRuntime  # the worker's side: an edge never runs plugins

    runtime = PluginRuntime(ctx.store.pool, ctx.nc)
    ctx.run_with_worker(runtime, "plugins-start")
    return runtime


MODULE = DomainModule(
    name="plugins",
    events=domain.EVENTS,
    handlers=transactional(handlers.HANDLERS),
    projections=(projection.PROJECTION,),
)
