"""A fake NapCat: a OneBot v11 reverse-WebSocket client on `websockets`, sending what NapCat sends
(RESEARCH.md: `X-Self-ID`, `Authorization: Bearer <token>` even with an empty token, `x-client-role`,
a lifecycle `connect` on open, heartbeats, message events as segment arrays, `message_sent` for the
bot's own messages) and answering API calls as NapCat does
(`{status, retcode, data:{message_id}, message, wording, echo}`, retcode 1404 for an unknown action)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection

from tests.waiting import wait_until

_ids = itertools.count(1_000_000)


@dataclass
class Call:
    action: str
    params: dict[str, Any]
    echo: Any


@dataclass
class FakeNapCat:
    url: str  # ws://host:port/onebot/v11/ws
    self_id: str = "10001"
    token: str = ""
    heartbeat_ms: int = 30_000
    fail_actions: dict[str, int] = field(default_factory=dict)  # action -> retcode to answer with
    calls: list[Call] = field(default_factory=list)
    ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _beat: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def headers(self) -> dict[str, str]:
        return {
            "X-Self-ID": self.self_id,
            "Authorization": f"Bearer {self.token}",  # NapCat sends "Bearer " when no token is set
            "x-client-role": "Universal",
            "User-Agent": "OneBot/11",
        }

    async def connect(self, *, heartbeats: bool = False, headers: dict[str, str] | None = None) -> None:
        self.closed.clear()
        self.ws = await websockets.connect(self.url, additional_headers=headers or self.headers(), open_timeout=5)
        await self.send_frame(
            {
                "time": int(time.time()),
                "self_id": int(self.self_id),
                "post_type": "meta_event",
                "meta_event_type": "lifecycle",
                "sub_type": "connect",
            }
        )
        self._reader = asyncio.create_task(self._read())
        if heartbeats:
            self._beat = asyncio.create_task(self._heartbeats())

    async def close(self) -> None:
        for task in (self._beat, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self.ws is not None:
            await self.ws.close()

    async def send_frame(self, frame: dict[str, Any] | str) -> None:
        assert self.ws is not None
        await self.ws.send(frame if isinstance(frame, str) else msgspec.json.encode(frame).decode())

    async def heartbeat(self) -> None:
        await self.send_frame(
            {
                "time": int(time.time()),
                "self_id": int(self.self_id),
                "post_type": "meta_event",
                "meta_event_type": "heartbeat",
                "status": {"online": True, "good": True},
                "interval": self.heartbeat_ms,
            }
        )

    async def _heartbeats(self) -> None:
        while True:
            await self.heartbeat()
            await asyncio.sleep(self.heartbeat_ms / 1000)

    async def private(self, user_id: str, text: str, *, message_id: int | None = None, nickname: str = "u") -> int:
        mid = message_id if message_id is not None else next(_ids)
        await self.send_frame(
            {
                "self_id": int(self.self_id),
                "user_id": int(user_id),
                "time": int(time.time()),
                "message_id": mid,
                "message_seq": mid,
                "real_id": mid,
                "message_type": "private",
                "sub_type": "friend",
                "sender": {"user_id": int(user_id), "nickname": nickname, "card": ""},
                "raw_message": text,
                "font": 14,
                "message": [{"type": "text", "data": {"text": text}}],
                "message_format": "array",
                "post_type": "message",
            }
        )
        return mid

    async def group(
        self,
        group_id: str,
        user_id: str,
        message: list[dict[str, Any]] | str,
        *,
        role: str = "member",
        message_id: int | None = None,
    ) -> int:
        mid = message_id if message_id is not None else next(_ids)
        await self.send_frame(
            {
                "self_id": int(self.self_id),
                "user_id": int(user_id),
                "time": int(time.time()),
                "message_id": mid,
                "message_seq": mid,
                "real_id": mid,
                "message_type": "group",
                "sub_type": "normal",
                "sender": {"user_id": int(user_id), "nickname": "n", "card": "", "role": role},
                "raw_message": message if isinstance(message, str) else "",
                "font": 14,
                "message": message,
                "message_format": "array" if isinstance(message, list) else "string",
                "post_type": "message",
                "group_id": int(group_id),
            }
        )
        return mid

    def at_me(self, text: str) -> list[dict[str, Any]]:
        return [{"type": "at", "data": {"qq": self.self_id, "name": "bot"}}, {"type": "text", "data": {"text": text}}]

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = msgspec.json.decode(raw)
                if isinstance(frame, dict) and "action" in frame:
                    await self._answer(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def _answer(self, frame: dict[str, Any]) -> None:
        action, params, echo = frame["action"], frame.get("params") or {}, frame.get("echo")
        self.calls.append(Call(action, params, echo))
        if action in self.fail_actions:
            answer = {
                "status": "failed",
                "retcode": self.fail_actions[action],
                "data": None,
                "message": "failed",
                "wording": "failed",
                "echo": echo,
            }
        elif action in ("send_private_msg", "send_group_msg", "send_msg"):
            answer = {
                "status": "ok",
                "retcode": 0,
                "data": {"message_id": next(_ids)},
                "message": "",
                "wording": "",
                "echo": echo,
            }
        elif action == "get_login_info":
            answer = {
                "status": "ok",
                "retcode": 0,
                "data": {"user_id": int(self.self_id), "nickname": "bot"},
                "message": "",
                "wording": "",
                "echo": echo,
            }
        else:
            answer = {
                "status": "failed",
                "retcode": 1404,
                "data": None,
                "message": "不支持的Api",
                "wording": "不支持的Api",
                "echo": echo,
            }
        assert self.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(msgspec.json.encode(answer).decode())

    def sent(self) -> list[Call]:
        return [c for c in self.calls if c.action.startswith("send_")]

    def texts(self) -> list[str]:
        """The text of every message the bot was asked to send."""
        out = []
        for call in self.sent():
            message = call.params.get("message")
            if isinstance(message, list):
                out.append("".join(s["data"].get("text", "") for s in message if s.get("type") == "text"))
            else:
                out.append(str(message))
        return out

    async def wait_sent(self, count: int, timeout: float = 15) -> list[Call]:
        await wait_until(
            lambda: len(self.sent()) >= count, timeout=timeout, message=f"{count} sends", state=lambda: self.calls
        )
        return self.sent()
