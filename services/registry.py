"""Every domain the workers serve, and every projection applied inline: one place to add a domain."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from bus.eventstore import EventStore, Handler
from bus.projections import Projection
from bus.worker import CommandFn
from services.auth import projection as auth_projection
from services.auth.handlers import AuthCommands
from services.channels import handlers as channel_handlers
from services.channels import projection as channel_projection
from services.config import handlers as config_handlers
from services.config import projection as config_projection
from services.group_admin import handlers as group_handlers
from services.group_admin import projection as group_projection
from services.presets import handlers as preset_handlers
from services.presets import projection as preset_projection

PROJECTIONS: tuple[Projection, ...] = (
    preset_projection.PROJECTION,
    auth_projection.PROJECTION,
    config_projection.PROJECTION,
    group_projection.PROJECTION,
    channel_projection.PROJECTION,
)


def _transactional(store: EventStore, handlers: dict[str, Handler]) -> dict[str, CommandFn]:
    def bind(handler: Handler) -> CommandFn:
        return lambda envelope: store.execute(envelope, handler)

    return {action: bind(h) for action, h in handlers.items()}


DOMAINS: dict[str, Callable[[EventStore], dict[str, CommandFn]]] = {
    "presets": lambda store: _transactional(store, preset_handlers.HANDLERS),
    "auth": lambda store: AuthCommands(store).handlers(),
    "config": lambda store: _transactional(store, config_handlers.HANDLERS),
    "groupadmin": lambda store: _transactional(store, group_handlers.HANDLERS),
    "channels": lambda store: _transactional(store, channel_handlers.HANDLERS),
}


def make_store(pool: asyncpg.Pool, on_commit: Callable[[], None] | None = None) -> EventStore:
    return EventStore(pool, [p.apply for p in PROJECTIONS], on_commit=on_commit)
