"""Presets (personalities): API.md §7."""

from services.module import DomainModule, transactional
from services.presets import domain, handlers, projection

MODULE = DomainModule(
    name="presets",
    events=domain.EVENTS,
    handlers=transactional(handlers.HANDLERS),
    projections=(projection.PROJECTION,),
)
