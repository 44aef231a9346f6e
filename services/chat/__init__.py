"""Conversations and chat turns (API.md §6)."""

from services.chat import domain, handlers, projection
from services.chat.engine import ChatEngine
from services.module import DomainModule, combined, transactional
from services.worker_reads import worker_reads

MODULE = DomainModule(
    name="chat",
    events=domain.EVENTS,
    handlers=combined(
        transactional(handlers.HANDLERS),
        lambda ctx: ChatEngine(ctx.store, ctx.nc, ctx.config, ctx.http, worker_reads(ctx)).handlers(),
    ),
    projections=(projection.PROJECTION,),
)
