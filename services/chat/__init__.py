"""Conversations and chat turns (API.md §6)."""

from bus.worker import CommandFn
from services.chat import domain, handlers, projection
from services.module import DomainModule, WorkerContext, combined, transactional


def engine_handlers(ctx: WorkerContext) -> dict[str, CommandFn]:
    # Imported here: the engine brings the LLM clients, which a worker needs and an edge (that imports
    # this package for its queries) does not.
    from services.chat.engine import ChatEngine
    from services.worker_reads import worker_reads

    reads = worker_reads(ctx)
    engine = ChatEngine(ctx.store, ctx.nc, ctx.config, ctx.http, reads)
    reads.local["chat.send"] = engine.send  # the pipeline's turns, when it runs in this process
    return engine.handlers()


MODULE = DomainModule(
    name="chat",
    events=domain.EVENTS,
    handlers=combined(
        transactional(handlers.HANDLERS),
        engine_handlers,
    ),
    projections=(projection.PROJECTION,),
)
