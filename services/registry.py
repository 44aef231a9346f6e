"""Every domain the workers serve, and every projection applied inline: one place to add a domain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from nats.aio.client import Client as NATS

from bus.eventstore import EventStore, Handler
from bus.projections import Projection
from bus.worker import CommandFn
from services.auth import projection as auth_projection
from services.auth.handlers import AuthCommands
from services.channels import handlers as channel_handlers
from services.channels import projection as channel_projection
from services.channels.probe import ChannelProbe
from services.channels.providers.registry import HttpClients
from services.chat import projection as chat_projection
from services.chat.engine import ChatCommands
from services.config import handlers as config_handlers
from services.config import projection as config_projection
from services.config.cache import ConfigCache
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
    chat_projection.PROJECTION,
)


def _transactional(store: EventStore, handlers: dict[str, Handler]) -> dict[str, CommandFn]:
    def bind(handler: Handler) -> CommandFn:
        return lambda envelope: store.execute(envelope, handler)

    return {action: bind(h) for action, h in handlers.items()}


@dataclass(frozen=True)
class WorkerContext:
    """What a worker process gives its domains."""

    store: EventStore
    nc: NATS
    config: ConfigCache
    http: HttpClients


DOMAINS: dict[str, Callable[[WorkerContext], dict[str, CommandFn]]] = {
    "presets": lambda ctx: _transactional(ctx.store, preset_handlers.HANDLERS),
    "auth": lambda ctx: AuthCommands(ctx.store).handlers(),
    "config": lambda ctx: _transactional(ctx.store, config_handlers.HANDLERS),
    "groupadmin": lambda ctx: _transactional(ctx.store, group_handlers.HANDLERS),
    "channels": lambda ctx: {
        **_transactional(ctx.store, channel_handlers.HANDLERS),
        **ChannelProbe(ctx.store, ctx.http).handlers(),
    },
    "chat": lambda ctx: ChatCommands(ctx.store, ctx.nc, ctx.config, ctx.http).handlers(),
}


def make_store(pool: asyncpg.Pool, on_commit: Callable[[], None] | None = None) -> EventStore:
    return EventStore(pool, [p.apply for p in PROJECTIONS], on_commit=on_commit)
