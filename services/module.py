"""The domain kit's descriptor: what one domain package contributes to the system.

Each `services/<name>/__init__.py` exports `MODULE = DomainModule(...)`; `services/registry.py`
lists the modules, and the worker handlers, inline projections, event catalog (relay subjects,
`chatbus schemas`) and the read tables `replay` rebuilds are all derived from that list."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bus.events import EventCatalog
from bus.eventstore import EventStore, Handler
from bus.projections import Projection, read_tables
from bus.worker import CommandFn

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from services.channels.providers.registry import HttpClients
    from services.config.cache import ConfigCache


class Background(Protocol):
    """Something a domain runs beside its handlers for the worker's lifetime (MCP servers, plugins)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class WorkerContext:
    """What a worker process gives its domains."""

    store: EventStore
    nc: NATS
    config: ConfigCache
    http: HttpClients
    # What a domain started with its handlers (MCP sessions) and must stop with the process.
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def run_with_worker(self, runtime: Background, name: str) -> None:
        """Start `runtime` in the background (a worker does not wait for its servers or plugins to come
        up before it takes commands) and stop it with the worker, after its start has settled."""
        starting = asyncio.get_running_loop().create_task(runtime.start(), name=name)

        async def stop() -> None:
            with contextlib.suppress(Exception):
                await starting
            await runtime.stop()

        self.on_stop.append(stop)


HandlerFactory = Callable[[WorkerContext], Mapping[str, CommandFn]]


def transactional(handlers: Mapping[str, Handler]) -> HandlerFactory:
    """Handlers that decide inside one event-store transaction each (the common case)."""

    def factory(ctx: WorkerContext) -> dict[str, CommandFn]:
        def bind(handler: Handler) -> CommandFn:
            return lambda envelope: ctx.store.execute(envelope, handler)

        return {action: bind(h) for action, h in handlers.items()}

    return factory


def combined(*factories: HandlerFactory) -> HandlerFactory:
    """One domain served by several handler sets (transactional writes plus an adapter's commands)."""
    return lambda ctx: {action: fn for f in factories for action, fn in f(ctx).items()}


@dataclass(frozen=True)
class DomainModule:
    """`name` is the domain's one bus name: `cmd.<name>.*`, `events.<name>.*`, `workers.<name>`."""

    name: str
    events: EventCatalog
    handlers: HandlerFactory
    projections: tuple[Projection, ...] = ()

    def __post_init__(self) -> None:
        strangers = [t.name for t in self.events if t.domain != self.name]
        if strangers:
            raise ValueError(f"module {self.name} declares events of another domain: {strangers}")

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(read_tables(self.projections))
