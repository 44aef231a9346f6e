"""The Litestar edge, assembled in one place."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins import PluginProtocol
from litestar.plugins.core import MsgspecDIPlugin
from litestar.static_files import create_static_files_router
from litestar.types import Message, Scope

from api.bodycheck import check_request_body
from api.config import EdgeConfig
from api.envelope import (
    ApiError,
    error_response,
    handle_api_error,
    handle_http_exception,
    handle_unexpected,
    request_id_from_headers,
)
from api.hub import EventHub
from api.logging_context import request_context_middleware
from api.loghub import LogHub
from api.mcp_board import BOARD_KEY, McpStatusBoard
from api.middleware import RESPONSE_HEADERS, rate_limit_middleware
from api.onebot import OneBotGateway
from api.ratelimit import RateLimiter
from api.revocations import RevocationList
from api.routes.audit import AuditController
from api.routes.auth import AuthController, PublicAuthController
from api.routes.channels import ChannelController, ChannelProbeController, ProviderController
from api.routes.chat import ChatController, NekoChatController
from api.routes.config import ConfigController
from api.routes.group_admin import GroupAdminController, group_login
from api.routes.logs import list_logs
from api.routes.mcp import McpController
from api.routes.onebot import onebot_ws
from api.routes.panel import panel_asset, panel_index
from api.routes.personalities import PersonalityController
from api.routes.platforms import PlatformController, platform_stats
from api.routes.plugins import CommandController, PluginController
from api.routes.presets import PresetController
from api.routes.skills import SkillsController
from api.routes.streams import events_sse, ws_endpoint
from api.routes.system import VERSION, health, system_stats, system_status
from api.routes.tools import ToolController
from api.security import require_admin
from api.state import Edge
from bus import db, nats_conn
from bus.commands import CommandClient
from bus.gcpolicy import freeze_startup_heap
from bus.heartbeat import Heartbeat
from bus.logs import LogPublisher, install_log_publisher
from schemas.errors import ERROR_STATUS
from services.auth.tokens import TokenVerifier
from services.config.cache import ConfigCache

log = logging.getLogger("chatbus.edge")


DESCRIPTION = (
    "chatbus management API: a superset of the ChatAI Plugin and NekoBot APIs.\n\n"
    "Every JSON response is an envelope: `{success, status, data}` or "
    "`{success:false, status:'error', error, message, code, details?}`.\n\n"
    "Error codes and their HTTP status:\n\n"
    + "\n".join(f"- `{code}`: {status}" for code, status in sorted(ERROR_STATUS.items()))
)


DOCS_ASSETS = "/schema-assets"  # outside /schema, whose sub-paths belong to the OpenAPI router
# The docs UI loads its script and style from this edge, never from a CDN: it works on a machine offline.
DOCS_UI = SwaggerRenderPlugin(
    path=["/", "/swagger"],
    js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
    css_url=f"{DOCS_ASSETS}/swagger-ui.css",
    standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
    favicon="",
)


def handle_bad_data(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Input Postgres cannot hold, e.g. a NUL character in a search string."""
    return error_response("VALIDATION_ERROR", f"invalid input: {exc}", 400)


def handle_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.warning("dependency unavailable on %s: %r", request.url.path, exc)
    return error_response("UNAVAILABLE", "a backing service (database or bus) is unavailable", 503)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The edge pool's reset on release. asyncpg's default sends `RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()` after every query: a second round trip per read. The edge only reads:
    it never sets a session variable, listens, holds a cursor or a session lock, so nothing needs
    resetting; an open transaction is still rolled back by asyncpg itself before this runs."""


async def _before_send(message: Message, scope: Scope) -> None:
    if message["type"] == "http.response.start":
        state = scope.get("state", {})
        rid = state.get("request_id") or request_id_from_headers(scope.get("headers", ()))
        headers = list(message.get("headers", []))
        headers.append((b"x-request-id", str(rid).encode()))
        headers.extend(state.get(RESPONSE_HEADERS, ()))  # the rate limit's (api/middleware.py)
        message["headers"] = headers


class _App(Litestar):
    """Litestar without the pydantic and attrs plugins it adds whenever those libraries are installed
    (the MCP SDK brings pydantic): no route takes or returns their models (msgspec throughout), and
    with them the edge imported pydantic and held ~25 MiB more at rest (issue 13)."""

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        return [*plugins, MsgspecDIPlugin()]


def create_app(config: EdgeConfig) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await nats_conn.connect(config.nats_url, name=config.instance_id)
        publisher: LogPublisher | None = None
        if config.publish_logs:
            publisher = install_log_publisher(nc, "edge", config.instance_id)
        pool = await db.create_pool(config.database_url, max_size=config.db_pool_size, reset=_keep_session)
        await nats_conn.ensure_streams(nc)
        hub = EventHub(nc)
        loghub = app.state["loghub"] = LogHub(nc)
        revoked = RevocationList(nc, pool, hub)
        await revoked.start()
        await hub.start()
        config_cache = ConfigCache(pool, nc)
        await config_cache.start()
        commands = CommandClient(nc, timeout=config.command_timeout)
        limiter = RateLimiter(nc)
        await limiter.start()
        app.state["edge"] = Edge(
            config, nc, pool, commands, hub, revoked, TokenVerifier(config.jwt_secret), limiter, config_cache
        )
        onebot = app.state["onebot"] = OneBotGateway(nc, config.instance_id)
        await onebot.start()
        hub.on_event(onebot.on_event)  # a platform disabled or deleted closes its bot on this edge
        pages = app.state["edge"].pages
        hub.on_event(lambda event: pages.invalidate(event.domain))  # a write through any edge
        mcp_board = app.state[BOARD_KEY] = McpStatusBoard(nc)
        await mcp_board.start()
        heartbeat = app.state["heartbeat"] = Heartbeat(nc, "edge", instance_id=config.instance_id)
        await heartbeat.start()
        freeze_startup_heap()  # serving now: full collections skip the start-up heap (bus/gcpolicy.py)
        try:
            yield
        finally:
            await heartbeat.stop()
            await mcp_board.stop()
            await onebot.stop()
            await limiter.stop()  # what this edge's leases did not spend goes back to the other edges
            await config_cache.stop()
            await revoked.stop()
            await hub.stop()
            await loghub.stop()
            if publisher is not None:
                await publisher.close()
            with contextlib.suppress(Exception):
                await nc.drain()
            await pool.close()

    class AdminPresets(PresetController):
        guards = [require_admin]

    class AdminPersonalities(PersonalityController):
        guards = [require_admin]

    class AdminConfig(ConfigController):
        guards = [require_admin]

    class AdminChannels(ChannelController):
        guards = [require_admin]

    class AdminProviders(ProviderController):
        guards = [require_admin]

    class AdminChannelProbes(ChannelProbeController):
        guards = [require_admin]

    class AdminChat(ChatController):
        guards = [require_admin]

    class AdminNekoChat(NekoChatController):
        guards = [require_admin]

    class AdminTools(ToolController):
        guards = [require_admin]

    class AdminMcp(McpController):
        guards = [require_admin]

    class AdminSkills(SkillsController):
        guards = [require_admin]

    return _App(
        route_handlers=[
            health,
            PublicAuthController,
            AuthController,
            AdminPresets,
            AdminPersonalities,
            AuditController,
            AdminConfig,
            AdminChannels,
            AdminProviders,
            AdminChannelProbes,
            AdminChat,
            AdminNekoChat,
            AdminTools,
            AdminMcp,
            AdminSkills,
            GroupAdminController,
            group_login,
            PlatformController,
            platform_stats,
            PluginController,
            CommandController,
            onebot_ws,
            system_status,
            system_stats,
            list_logs,
            ws_endpoint,
            events_sse,
            panel_index,
            panel_asset,
            create_static_files_router(
                DOCS_ASSETS, directories=[Path(__file__).parent / "static" / "swagger-ui"], include_in_schema=False
            ),
        ],
        lifespan=[lifespan],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            asyncpg.DataError: handle_bad_data,
            OSError: handle_unavailable,
            asyncpg.InterfaceError: handle_unavailable,
            asyncpg.PostgresConnectionError: handle_unavailable,
            asyncpg.CannotConnectNowError: handle_unavailable,
            asyncpg.InternalClientError: handle_unavailable,
            Exception: handle_unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="chatbus",
            version=VERSION,
            description=DESCRIPTION,
            path="/schema",
            render_plugins=[DOCS_UI],
        ),
        before_send=[_before_send],
        before_request=check_request_body,
        middleware=[request_context_middleware, rate_limit_middleware],
        request_max_body_size=4 * 1024 * 1024,
        debug=False,
        logging_config=None,  # keep the process's logging (bus/logs.py): one console format, its level
    )
