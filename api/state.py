"""Resources one edge instance holds: NATS, the Postgres pool, the command client, the event hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from litestar.connection import ASGIConnection
from nats.aio.client import Client as NATS

from api.config import EdgeConfig
from api.hub import EventHub
from api.revocations import RevocationList
from bus.commands import CommandClient
from services.auth.tokens import TokenVerifier


@dataclass
class Edge:
    config: EdgeConfig
    nc: NATS
    pool: asyncpg.Pool
    commands: CommandClient
    hub: EventHub
    revoked: RevocationList
    tokens: TokenVerifier


def edge_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Edge:
    return connection.app.state["edge"]
