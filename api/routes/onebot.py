"""The OneBot v11 reverse WebSocket (API.md §9): `/onebot/v11/ws` (and `/ws` with `X-Self-ID`).

Not under the JWT guard: a bot has no user token. It is never reachable without the platform's access
token either: the token (`Authorization: Bearer|Token <t>` or `?access_token=`) is checked by the
platforms worker, in constant time, before the socket is accepted; a refusal closes the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from litestar import WebSocket, websocket
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import WebSocketDisconnect

from api.onebot import BotConnection, OneBotGateway
from api.state import edge_of
from schemas.envelope import Actor, CommandEnvelope

log = logging.getLogger("chatbus.onebot")
POLICY_VIOLATION = 1008
AUTH_TIMEOUT = 5.0


def is_bot(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """A OneBot client on `/ws`: it names its account in `X-Self-ID` (a panel never does)."""
    return connection.scope["type"] == ScopeType.WEBSOCKET and bool(connection.headers.get("x-self-id"))


def bot_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return value.strip()
    return str(connection.query_params.get("access_token", ""))


def gateway_of(connection: ASGIConnection[Any, Any, Any, Any]) -> OneBotGateway:
    gateway: OneBotGateway = connection.app.state["onebot"]
    return gateway


async def _authenticate(socket: WebSocket[Any, Any, Any], self_id: str) -> tuple[str | None, str | None]:
    """(the platform the bot connects as, else the platform naming it that refused its token)."""
    edge = edge_of(socket)
    envelope = CommandEnvelope(
        command_id=uuid.uuid4(),
        type="platforms.authenticate",
        actor=Actor(f"edge:{edge.config.instance_id}", "platform"),
        payload={"self_id": self_id, "token": bot_token(socket)},
    )
    try:
        reply = await edge.commands.send("platforms", "authenticate", envelope, timeout=AUTH_TIMEOUT)
    except Exception as exc:  # bus or workers down: the bot retries in 5 s
        log.warning("cannot authenticate bot %s: %r", self_id, exc)
        return None, None
    if reply.ok and reply.result:
        return str(reply.result["platformId"]), None
    details = reply.error.details if reply.error is not None and reply.error.details else [{}]
    named = details[0].get("platformId") if isinstance(details[0], dict) else None
    return None, str(named) if named else None


async def serve_bot(socket: WebSocket[Any, Any, Any]) -> None:
    self_id = socket.headers.get("x-self-id", "").strip()
    if not self_id.isdigit() or len(self_id) > 32:
        await socket.close(code=POLICY_VIOLATION, reason="X-Self-ID required")
        return
    platform_id, refused_by = await _authenticate(socket, self_id)
    if platform_id is None:
        log.warning("OneBot connection for %s refused: no platform accepts its token", self_id)
        if refused_by is not None:
            await gateway_of(socket).refused(refused_by, self_id, "invalid access token")
        await socket.close(code=POLICY_VIOLATION, reason="invalid access token")
        return
    await socket.accept()
    gateway = gateway_of(socket)
    lock = asyncio.Lock()

    async def send_text(text: str) -> None:
        async with lock:
            await socket.send_text(text)

    async def close(code: int, reason: str) -> None:
        await socket.close(code=code, reason=reason)

    bot = BotConnection(platform_id, self_id, send_text, close)
    watchdog = asyncio.create_task(gateway.watch(bot))
    try:
        await gateway.hold(bot)
        log.info("bot %s connected as platform %s", self_id, platform_id)
        while not bot.closed:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("text") if message.get("text") is not None else message.get("bytes")
            if isinstance(data, str | bytes):
                await gateway.on_frame(bot, data)
    except (WebSocketDisconnect, RuntimeError):
        pass
    except Exception:
        log.exception("OneBot connection of platform %s failed", platform_id)
    finally:
        watchdog.cancel()
        await gateway.drop(bot, "the bot disconnected")
        log.info("bot %s (platform %s) disconnected", self_id, platform_id)
        with contextlib.suppress(Exception):
            await socket.close()


@websocket(["/onebot/v11/ws", "/onebot/v11/ws/"], include_in_schema=False)
async def onebot_ws(socket: WebSocket[Any, Any, Any]) -> None:
    await serve_bot(socket)
