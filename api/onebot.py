"""The OneBot v11 gateway of one edge: the bot sockets it holds, their API calls (string echo,
timeout), ownership in KV `platforms`, and `platform.<id>.send` for the pipeline's replies.

Any edge can hold any bot; the one that accepts a connection writes itself as owner and tells the
others (`platform.<id>.takeover`), which close their socket for that bot: a reconnect replaces, it is
never refused. Only the holder answers a send request, so a stale subscriber stays silent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

from api.hub import HubEvent
from bus import subjects
from schemas.platforms import SendReply, SendRequest
from services.platforms import onebot, owners
from services.platforms.onebot import OneBotError

log = logging.getLogger("chatbus.onebot")
WATCH_TICK = 1.0  # seconds between heartbeat checks at most
_encode = msgspec.json.Encoder().encode
_send_request = msgspec.json.Decoder(SendRequest).decode
MAX_CALL_TIMEOUT = 60.0


@dataclass(eq=False)
class BotConnection:
    platform_id: str
    self_id: str
    send_text: Callable[[str], Awaitable[None]]
    close: Callable[[int, str], Awaitable[None]]
    connected_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    heartbeat_ms: int = owners.DEFAULT_HEARTBEAT_MS
    pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    closed: bool = False

    def fail_pending(self, reason: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(OneBotError("UNAVAILABLE", reason))
        self.pending.clear()

    async def call(self, action: str, params: dict[str, Any], timeout: float) -> Any:
        if self.closed:
            raise OneBotError("UNAVAILABLE", "the bot is not connected")
        echo = uuid.uuid4().hex
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[echo] = future
        try:
            await self.send_text(_encode(onebot.call_frame(action, params, echo)).decode())
            response = await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise OneBotError("TIMEOUT", f"{action} got no answer in {timeout:g}s") from exc
        except OneBotError:
            raise
        except Exception as exc:  # the socket broke while sending
            raise OneBotError("UNAVAILABLE", f"{action}: {exc}") from exc
        finally:
            self.pending.pop(echo, None)
        return onebot.call_result(response)

    def answered(self, frame: dict[str, Any]) -> bool:
        echo = frame.get("echo")
        if not isinstance(echo, str) or ("retcode" not in frame and "status" not in frame):
            return False
        future = self.pending.get(echo)
        if future is not None and not future.done():
            future.set_result(frame)
        return True


class OneBotGateway:
    def __init__(self, nc: NATS, instance_id: str) -> None:
        self.nc = nc
        self.instance_id = instance_id
        self.js = nc.jetstream()
        self.kv: KeyValue | None = None
        self.bots: dict[str, BotConnection] = {}
        self._subs: dict[str, Subscription] = {}
        self._takeover: Subscription | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self.kv = await owners.bucket(self.nc)
        self._takeover = await self.nc.subscribe(subjects.platform_takeover("*"), cb=self._on_takeover)

    async def stop(self) -> None:
        for bot in list(self.bots.values()):
            await self.drop(bot, "edge shutting down")
        if self._takeover is not None:
            with contextlib.suppress(Exception):
                await self._takeover.unsubscribe()

    # ---- connections ----

    async def hold(self, bot: BotConnection) -> None:
        """`bot` is now the connection for its platform: the previous one, here or elsewhere, goes."""
        old = self.bots.get(bot.platform_id)
        self.bots[bot.platform_id] = bot
        if old is not None:
            await self._close_old(old, "replaced by a new connection")
        else:
            self._subs[bot.platform_id] = await self.nc.subscribe(
                subjects.platform_send(bot.platform_id), cb=self._spawn_send
            )
        await self.nc.publish(subjects.platform_takeover(bot.platform_id), _encode({"instanceId": self.instance_id}))
        await self._record(bot)

    async def _close_old(self, old: BotConnection, reason: str) -> None:
        old.closed = True
        old.fail_pending(reason)
        with contextlib.suppress(Exception):
            await old.close(1000, reason)

    async def drop(self, bot: BotConnection, reason: str) -> None:
        """The socket of `bot` ended: forget it, unless a newer connection replaced it already."""
        bot.closed = True
        bot.fail_pending(reason)
        if self.bots.get(bot.platform_id) is not bot:
            return
        del self.bots[bot.platform_id]
        sub = self._subs.pop(bot.platform_id, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if self.kv is not None:
            with contextlib.suppress(Exception):
                await owners.release(self.kv, bot.platform_id, self.instance_id)

    async def _record(self, bot: BotConnection) -> None:
        if self.kv is None:
            return
        owner = owners.Owner(
            platform_id=bot.platform_id,
            self_id=bot.self_id,
            instance_id=self.instance_id,
            connected_at=bot.connected_at,
            last_seen_at=bot.last_seen,
            heartbeat_ms=bot.heartbeat_ms,
        )
        try:
            await owners.put(self.kv, owner)
        except Exception as exc:  # KV down: the socket still works, the status shows late
            log.warning("cannot record the owner of platform %s: %r", bot.platform_id, exc)

    async def _on_takeover(self, msg: Msg) -> None:
        platform_id = msg.subject.split(".")[1]
        try:
            instance = msgspec.json.decode(msg.data).get("instanceId")
        except (msgspec.DecodeError, AttributeError):
            return
        bot = self.bots.get(platform_id)
        if bot is not None and instance != self.instance_id:
            log.info("platform %s reconnected to edge %s: closing the socket here", platform_id, instance)
            await self.drop(bot, "the bot reconnected to another edge")
            with contextlib.suppress(Exception):
                await bot.close(1000, "replaced by a connection to another edge")

    async def refused(self, platform_id: str, self_id: str, reason: str) -> None:
        if self.kv is None:
            return
        try:
            await owners.refused(self.kv, platform_id, self_id, self.instance_id, reason)
        except Exception as exc:  # KV down: the refusal stands, only the status shows it late
            log.warning("cannot record the refusal of platform %s: %r", platform_id, exc)

    def on_event(self, event: HubEvent) -> None:
        """A relayed platform event: the bot of a platform deleted, disabled, or given another token,
        self id or type is closed here (on whichever edge holds it); its reconnect is checked afresh."""
        if event.type not in ("PlatformUpdated", "PlatformDeleted"):
            return
        try:
            data = msgspec.json.decode(event.body)["data"]
            platform_id = data["id"]
        except (msgspec.DecodeError, KeyError, TypeError):
            return
        bot = self.bots.get(platform_id) if isinstance(platform_id, str) else None
        if bot is None:
            return
        if event.type == "PlatformUpdated":
            changes = data.get("changes") or {}
            config = changes.get("config") or {}
            if (
                changes.get("enabled") is not False
                and "type" not in changes
                and not {"accessToken", "selfId"} & set(config)
            ):
                return
            reason = "the platform was changed"
        else:
            reason = "the platform was deleted"
        task = asyncio.create_task(self._evict(bot, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _evict(self, bot: BotConnection, reason: str) -> None:
        log.info("platform %s: closing its bot, %s", bot.platform_id, reason)
        await self.drop(bot, reason)
        with contextlib.suppress(Exception):
            await bot.close(1000, reason)

    # ---- frames ----

    async def on_frame(self, bot: BotConnection, text: str | bytes) -> None:
        """One frame from the bot. A frame that is no JSON object is ignored, never fatal."""
        try:
            frame = msgspec.json.decode(text)
        except msgspec.DecodeError:
            log.debug("platform %s sent a frame that is not JSON", bot.platform_id)
            return
        if not isinstance(frame, dict) or bot.answered(frame):
            return
        bot.last_seen = time.time()
        interval = onebot.heartbeat_interval(frame)
        if interval is not None:
            bot.heartbeat_ms = interval
            await self._record(bot)
            return
        message = onebot.inbound(frame, bot.platform_id, bot.self_id)
        if message is None:
            return
        try:
            await self.js.publish(
                subjects.inbound(message.platform, message.platform_id),
                _encode(message),
                headers={"Nats-Msg-Id": message.dedup_id},
            )
        except Exception as exc:  # NapCat does not resend: this message is lost, say so
            log.warning("platform %s: message %s not queued: %r", bot.platform_id, message.message_id, exc)

    async def watch(self, bot: BotConnection) -> None:
        """Close a socket whose bot missed two heartbeats (a half-open TCP connection looks alive)."""
        while not bot.closed:
            # Short ticks, re-reading the interval: the bot announces it only with its first heartbeat,
            # after this loop started with the default (one long sleep would check far too late).
            await asyncio.sleep(min(max(bot.heartbeat_ms / 1000 / 2, 0.05), WATCH_TICK))
            if (time.time() - bot.last_seen) * 1000 > 2 * bot.heartbeat_ms:
                log.warning("platform %s missed two heartbeats: closing", bot.platform_id)
                await self.drop(bot, "missed two heartbeats")
                with contextlib.suppress(Exception):
                    await bot.close(1001, "heartbeat timeout")
                return

    # ---- platform.<id>.send ----

    async def _spawn_send(self, msg: Msg) -> None:
        # A subscription callback runs one message at a time: each send gets its own task.
        task = asyncio.create_task(self._serve_send(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_send(self, msg: Msg) -> None:
        platform_id = msg.subject.split(".")[1]
        bot = self.bots.get(platform_id)
        if bot is None or bot.closed:
            return  # another edge holds it now; silence lets that one answer
        try:
            request = _send_request(msg.data)
        except msgspec.DecodeError as exc:
            await msg.respond(_encode(SendReply(ok=False, code="INVALID_ARGS", message=str(exc))))
            return
        try:
            data = await bot.call(request.action, request.params, min(request.timeout, MAX_CALL_TIMEOUT))
            reply = SendReply(ok=True, data=data)
        except OneBotError as exc:
            reply = SendReply(ok=False, code=exc.code, message=exc.message)
        with contextlib.suppress(Exception):
            await msg.respond(_encode(reply))
