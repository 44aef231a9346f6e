"""Channels (LLM providers): CRUD, health, tests and model lists (API.md §5)."""

from bus.worker import CommandFn
from services.channels import domain, handlers, projection
from services.module import DomainModule, WorkerContext, combined, transactional


def probe_handlers(ctx: WorkerContext) -> dict[str, CommandFn]:
    # Imported here: the probe brings the LLM clients, which a worker needs and an edge does not.
    from services.channels.probe import ChannelProbe

    return ChannelProbe(ctx.store, ctx.http).handlers()


MODULE = DomainModule(
    name="channels",
    events=domain.EVENTS,
    handlers=combined(transactional(handlers.HANDLERS), probe_handlers),
    projections=(projection.PROJECTION,),
)
