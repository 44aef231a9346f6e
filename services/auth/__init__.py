"""Auth: users, passwords, tokens and login links (API.md §3)."""

from services.auth import domain, projection
from services.auth.handlers import AuthCommands
from services.module import DomainModule

MODULE = DomainModule(
    name="auth",
    events=domain.EVENTS,
    handlers=lambda ctx: AuthCommands(ctx.store).handlers(),
    projections=(projection.PROJECTION,),
)
