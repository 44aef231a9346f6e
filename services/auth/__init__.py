"""Auth: users, passwords, tokens and login links (API.md §3)."""

from services.auth import domain, handlers, projection
from services.module import DomainModule, combined, transactional

MODULE = DomainModule(
    name="auth",
    events=domain.EVENTS,
    handlers=combined(transactional(handlers.HANDLERS), lambda ctx: handlers.login_handlers(ctx.store)),
    projections=(projection.PROJECTION,),
)
