"""The config document: sections, history, rollback (API.md §4)."""

from services.config import domain, handlers, projection
from services.module import DomainModule, transactional

MODULE = DomainModule(
    name="config",
    events=domain.EVENTS,
    handlers=transactional(handlers.HANDLERS),
    projections=(projection.PROJECTION,),
)
