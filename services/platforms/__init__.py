"""Platforms: chat platform connections (API.md §9). The OneBot socket itself lives on the edge
(api/routes/onebot.py); the message pipeline is services/pipeline."""

from services.module import DomainModule, transactional
from services.platforms import domain, handlers, projection

MODULE = DomainModule(
    name="platforms",
    events=domain.EVENTS,
    handlers=transactional(handlers.HANDLERS),
    projections=(projection.PROJECTION,),
)
