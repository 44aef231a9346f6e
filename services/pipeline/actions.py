"""What the built-in bot commands do (API.md §9); parsing and permissions are `commands.py`'s.
Each command goes to its domain with an id derived from the message, so a redelivery repeats none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from schemas.envelope import CommandReply
from schemas.platforms import InboundMessage
from services.auth import tokens
from services.pipeline import commands, registry_commands, store
from services.presets import queries as preset_queries

SendCommand = Callable[[InboundMessage, str, str, dict[str, Any]], Awaitable[CommandReply]]


@dataclass(frozen=True)
class Outgoing:
    message_type: str  # private | group
    target: str  # user id or group id
    text: str
    quote: bool = True


def public_base(config: dict[str, Any]) -> str:
    """The panel's address as users reach it: `web.publicUrl`, else the local port."""
    return str(config["web"]["publicUrl"] or f"http://127.0.0.1:{config['web']['port']}").rstrip("/")


class Actions:
    def __init__(self, pool: asyncpg.Pool, send: SendCommand, jwt_secret: str) -> None:
        self.pool = pool
        self.send = send
        self.jwt_secret = jwt_secret

    async def run(
        self, msg: InboundMessage, text: str, conversation: str, config: dict[str, Any]
    ) -> list[Outgoing] | None:
        found = await registry_commands.lookup(self.pool, text) if text.strip() else None
        if found is None:
            return None
        here = msg.group_id if msg.message_type == "group" and msg.group_id else msg.user_id

        def answer(reply: str) -> list[Outgoing]:
            return [Outgoing(msg.message_type, here, reply)]

        if not found.builtin:  # a plugin's command: its tool answers
            refused = registry_commands.refusal(found.handler, msg, config)
            return answer(refused or await registry_commands.run_plugin(self.send, msg, found))
        parsed = commands.Parsed(found.handler.name, found.args)

        refusal = commands.check(parsed, msg, config)
        if refusal is not None:
            return answer(refusal.message)
        match parsed.name:
            case "ai管理面板":
                return self._privately(msg, await self._login_link(msg, "永久" in parsed.args, config))
            case "群管理面板":
                return self._privately(msg, await self._group_code(msg, config))
            case "结束对话":
                reply = await self.send(msg, "chat", "clear", {"conversation_id": conversation})
                ok = reply.ok or (reply.error is not None and reply.error.code == "CONVERSATION_NOT_FOUND")
                return answer("对话已重置。" if ok else "重置失败，请稍后再试。")
            case "切换预设":
                preset_id = parsed.args[0]
                preset = await preset_queries.get_preset(self.pool, preset_id)
                if preset is None or not preset.enabled:
                    return answer(f"没有预设 {preset_id}。")
                await store.choose_preset(self.pool, conversation, preset_id)
                return answer(f"已切换到预设 {preset.name}。")
        return answer(commands.help_text(config["basic"]["commandPrefix"], config))

    @staticmethod
    def _privately(msg: InboundMessage, text: str) -> list[Outgoing]:
        out = [Outgoing("private", msg.user_id, text, quote=False)]
        if msg.message_type == "group" and msg.group_id:
            out.append(Outgoing("group", msg.group_id, "已私聊发送，请查收。"))
        return out

    async def _login_link(self, msg: InboundMessage, permanent: bool, config: dict[str, Any]) -> str:
        """The same link POST /api/auth/links makes, for the admin account."""
        username = await store.admin_username(self.pool)
        if username is None:
            return "没有管理员账号。"
        reply = await self.send(msg, "auth", "create_link", {"username": username, "permanent": permanent})
        if not reply.ok or not reply.result:
            return "无法生成登录链接，请稍后再试。"
        link = reply.result
        token, _ = tokens.issue(
            self.jwt_secret,
            username,
            "admin",
            audience=tokens.LINK_AUDIENCE,
            permanent=permanent,
            pwv=int(link["pwv"]),
            jti=str(link["jti"]),
            expires_at=int(link["expires_at"]),
        )
        kind = "永久登录链接" if permanent else "登录链接（5分钟内有效，仅能使用一次）"
        return f"管理面板{kind}：\n{public_base(config)}/login/token?token={token}"

    async def _group_code(self, msg: InboundMessage, config: dict[str, Any]) -> str:
        assert msg.group_id is not None
        payload = {"group_id": msg.group_id, "issued_by": f"{msg.platform}:{msg.user_id}"}
        reply = await self.send(msg, "group_admin", "issue_code", payload)
        if not reply.ok or not reply.result:
            return "无法生成登录码，请稍后再试。"
        return (
            f"群 {msg.group_id} 的管理登录码：{reply.result['code']}\n"
            f"10分钟内有效，仅能使用一次。登录：{public_base(config)}/"
        )
