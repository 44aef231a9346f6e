"""What an edge process needs to start, apart from chatbus.runtime: that module brings every domain's
worker code (the registry, the LLM clients, the MCP runtime), ~2 MiB of RSS an edge would carry for
nothing. chatbus.runtime re-exports these for tests and `chatbus up`."""

from __future__ import annotations

import secrets
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bus import db
from bus.heartbeat import instance_id

if TYPE_CHECKING:
    import uvicorn

    from api.config import EdgeConfig


async def shared_jwt_secret(dsn: str, configured: str = "") -> str:
    """The signing key every edge shares: CHATBUS_JWT_SECRET, else one generated once and kept in Postgres."""
    if configured:
        return configured
    conn = await db.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO instance_secrets (name, value) VALUES ('jwt', $1) ON CONFLICT (name) DO NOTHING",
            secrets.token_urlsafe(48),
        )
        return str(await conn.fetchval("SELECT value FROM instance_secrets WHERE name = 'jwt'"))
    finally:
        await conn.close()


def edge_config(nats_url: str, dsn: str, jwt_secret: str, **kwargs: Any) -> EdgeConfig:
    from api.config import EdgeConfig

    return EdgeConfig(
        nats_url=nats_url,
        database_url=dsn,
        jwt_secret=jwt_secret,
        instance_id=instance_id("edge"),
        **kwargs,
    )


def load_uvicorn() -> ModuleType:
    """uvicorn, without watchfiles (a Rust extension, ~0.8 MiB RSS) that its reload supervisor loads
    when installed; an edge never reloads. Refused while uvicorn loads, then allowed again (uvicorn
    falls back to StatReload, which it never uses here either)."""
    if "uvicorn" not in sys.modules and "watchfiles" not in sys.modules:
        sys.modules["watchfiles"] = None  # type: ignore[assignment]
        try:
            import uvicorn
        finally:
            del sys.modules["watchfiles"]
    import uvicorn

    return uvicorn


def uvicorn_config(config: EdgeConfig, host: str, port: int, **kwargs: Any) -> uvicorn.Config:
    load_uvicorn()
    import uvicorn

    from api.app import create_app

    return uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        # uvicorn's own logging config would give its loggers their own handlers and format; without
        # it they propagate to the root handler (bus/logs.py), one format for every process of `up`.
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        timeout_graceful_shutdown=5,
        # The client address is ours to decide (api.security.client_ip trusts X-Forwarded-For only from
        # CHATBUS_TRUSTED_PROXIES); uvicorn's own handling would rewrite it from any local peer first.
        proxy_headers=False,
        **kwargs,
    )
