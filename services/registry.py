"""Every domain, listed once. Worker handlers, inline projections, the event catalog (relay
subjects, `chatbus schemas`) and the read tables that `replay` rebuilds all derive from MODULES."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from bus.events import EventCatalog
from bus.eventstore import EventStore
from bus.projections import Projection
from services import auth, channels, chat, config, group_admin, platforms, plugins, presets, tools
from services.module import DomainModule, HandlerFactory, WorkerContext

MODULES: tuple[DomainModule, ...] = (
    presets.MODULE,
    auth.MODULE,
    config.MODULE,
    group_admin.MODULE,
    channels.MODULE,
    chat.MODULE,
    tools.MODULE,
    platforms.MODULE,
    plugins.MODULE,
)

CATALOG: EventCatalog = EventCatalog().merge(*(m.events for m in MODULES))
PROJECTIONS: tuple[Projection, ...] = tuple(p for m in MODULES for p in m.projections)
DOMAINS: dict[str, HandlerFactory] = {m.name: m.handlers for m in MODULES}

__all__ = ["CATALOG", "DOMAINS", "MODULES", "PROJECTIONS", "WorkerContext", "make_store"]


def make_store(pool: asyncpg.Pool, on_commit: Callable[[], None] | None = None) -> EventStore:
    return EventStore(pool, [p.apply for p in PROJECTIONS], on_commit=on_commit, catalog=CATALOG)
