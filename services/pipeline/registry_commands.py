"""Commands through the one registry (services/plugins/commands.py): the first word of a command
message resolves to a built-in (carried out by actions.py) or to a plugin's tool, run through
`cmd.tools.call` with {text, userId, groupId, platform} and answered with the tool's text. Every
pipeline worker resolves from the same read tables, so every instance answers the same way."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from schemas.envelope import CommandReply
from schemas.platforms import InboundMessage
from services.plugins import commands as registry
from services.plugins import queries
from services.plugins.commands import BUILTIN_PLUGIN, Handler

log = logging.getLogger("chatbus.pipeline")

SendCommand = Callable[[InboundMessage, str, str, dict[str, Any]], Awaitable[CommandReply]]
MAX_REPLY = 4000


@dataclass(frozen=True)
class Found:
    handler: Handler
    args: list[str]
    rest: str  # the text after the command word, as typed

    @property
    def builtin(self) -> bool:
        return self.handler.plugin == BUILTIN_PLUGIN


async def lookup(pool: asyncpg.Pool, text: str) -> Found | None:
    head, *args = text.split()
    handler = registry.resolve(await queries.command_handlers(pool), head)
    if handler is None:
        return None
    return Found(handler, args, text[text.index(head) + len(head) :].strip())


def refusal(handler: Handler, msg: InboundMessage, config: dict[str, Any]) -> str | None:
    """A plugin command's permission: member (anyone), admin (group owner/admin or master), master."""
    is_master = msg.user_id in {str(u) for u in config["admin"]["masterUsers"]}
    if handler.permission == "master" and not is_master:
        return "只有主人可以使用这个命令。"
    if handler.permission == "admin" and not is_master and msg.sender.role not in ("owner", "admin"):
        return "只有群主、管理员或主人可以使用这个命令。"
    return None


async def run_plugin(send: SendCommand, msg: InboundMessage, found: Found) -> str:
    assert found.handler.tool is not None
    arguments = {"text": found.rest, "userId": msg.user_id, "groupId": msg.group_id, "platform": msg.platform}
    payload = {"name": found.handler.tool, "arguments": arguments, "user_id": msg.user_id, "group_id": msg.group_id}
    reply = await send(msg, "tools", "call", payload)
    if not reply.ok:
        error = reply.error
        log.info("plugin command %s refused: %s", found.handler.handler_full_name, error)
        return f"命令失败：{error.message if error else '未知错误'}"[:MAX_REPLY]
    result = reply.result or {}
    if not result.get("success"):
        return f"插件出错：{result.get('error') or '未知错误'}"[:MAX_REPLY]
    text = result.get("result")
    return (text if isinstance(text, str) else str(text))[:MAX_REPLY] or "…"
