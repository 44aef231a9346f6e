"""Built-in bot commands (API.md §9, prefix `basic.commandPrefix`): parsing and who may run what.
Pure; the pipeline worker carries them out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from schemas.platforms import InboundMessage

Permission = Literal["everyone", "master", "group_admin"]


@dataclass(frozen=True)
class BuiltinCommand:
    name: str
    aliases: tuple[str, ...]
    description: str
    permission: Permission


BUILTIN: tuple[BuiltinCommand, ...] = (
    BuiltinCommand("ai管理面板", (), "管理面板登录链接（私聊发送；加“永久”得到永久链接）", "master"),
    BuiltinCommand("群管理面板", (), "本群的管理面板登录码（私聊发送，群主和管理员）", "group_admin"),
    BuiltinCommand("结束对话", ("重置对话",), "清除当前对话的上下文", "everyone"),
    BuiltinCommand("切换预设", (), "切换当前对话使用的预设：切换预设 <id>", "everyone"),
    BuiltinCommand("帮助", (), "列出可用的命令", "everyone"),
)


@dataclass(frozen=True)
class Parsed:
    name: str  # the canonical name
    args: list[str]


@dataclass(frozen=True)
class Refusal:
    message: str


def parse(text: str) -> Parsed | None:
    """`ai管理面板 永久` -> Parsed("ai管理面板", ["永久"]); an unknown command -> None (a plain chat)."""
    head, *args = text.split()
    for command in BUILTIN:
        if head == command.name or head in command.aliases:
            return Parsed(command.name, args)
    return None


def check(parsed: Parsed, msg: InboundMessage, config: dict[str, Any]) -> Refusal | None:
    """Why the sender may not run this command here, or None."""
    masters = {str(u) for u in config["admin"]["masterUsers"]}
    is_master = msg.user_id in masters
    if parsed.name == "ai管理面板" and not is_master:
        return Refusal("只有主人可以使用这个命令。")
    if parsed.name == "群管理面板":
        if msg.group_id is None:
            return Refusal("请在群里发送这个命令。")
        if msg.sender.role not in ("owner", "admin") and not is_master:
            return Refusal("只有群主和管理员可以使用这个命令。")
    if parsed.name == "切换预设":
        if not config["presets"]["allowUserSwitch"]:
            return Refusal("不允许切换预设。")
        if len(parsed.args) != 1:
            return Refusal("用法：切换预设 <预设id>")
    return None


def help_text(prefix: str, config: dict[str, Any]) -> str:
    lines = ["可用命令："]
    for command in BUILTIN:
        if command.name == "切换预设" and not config["presets"]["allowUserSwitch"]:
            continue
        names = " / ".join(prefix + n for n in (command.name, *command.aliases))
        lines.append(f"{names}：{command.description}")
    return "\n".join(lines)
