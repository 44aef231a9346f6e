"""Conversations and chat turns (API.md §6)."""

from services.chat import projection
from services.chat.engine import ChatCommands
from services.module import DomainModule

MODULE = DomainModule(
    name="chat",
    events=projection.EVENTS,
    handlers=lambda ctx: ChatCommands(ctx.store, ctx.nc, ctx.config, ctx.http).handlers(),
    projections=(projection.PROJECTION,),
)
