"""Group admin: per-group overrides and group-scoped logins (API.md §9)."""

from services.group_admin import domain, handlers, projection
from services.module import DomainModule, transactional

MODULE = DomainModule(
    name="group_admin",
    events=domain.EVENTS,
    handlers=transactional(handlers.HANDLERS),
    projections=(projection.PROJECTION,),
)
