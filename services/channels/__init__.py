"""Channels (LLM providers): CRUD, health, tests and model lists (API.md §5)."""

from services.channels import domain, handlers, projection
from services.channels.probe import ChannelProbe
from services.module import DomainModule, combined, transactional

MODULE = DomainModule(
    name="channels",
    events=domain.EVENTS,
    handlers=combined(transactional(handlers.HANDLERS), lambda ctx: ChannelProbe(ctx.store, ctx.http).handlers()),
    projections=(projection.PROJECTION,),
)
