"""Resources one edge instance holds: NATS, the Postgres pool, the command client, the event hub."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from litestar.connection import ASGIConnection
from nats.aio.client import Client as NATS

from api.config import EdgeConfig
from api.hub import EventHub
from api.ratelimit import RateLimiter
from api.readcache import PageCache
from api.revocations import RevocationList
from bus.commands import CommandClient
from services.auth.tokens import TokenVerifier
from services.config.cache import ConfigCache


@dataclass
class Edge:
    config: EdgeConfig
    nc: NATS
    pool: asyncpg.Pool
    commands: CommandClient
    hub: EventHub
    revoked: RevocationList
    tokens: TokenVerifier
    limiter: RateLimiter
    config_cache: ConfigCache
    pages: PageCache = field(default_factory=PageCache)
    started_at: float = field(default_factory=time.time)


def edge_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Edge:
    edge: Edge = connection.app.state["edge"]
    return edge
