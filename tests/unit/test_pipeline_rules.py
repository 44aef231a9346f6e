"""The pipeline's pure rules: triggers, lists, isolation, usage keys, splitting, commands."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.config import ConfigDocument
from schemas.platforms import InboundMessage, Sender
from services.group_admin.domain import effective_config
from services.pipeline import commands, rules


def config(**patch: Any) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(ConfigDocument())
    for path, value in patch.items():
        node = doc
        *head, last = path.split("__")
        for key in head:
            node = node[key]
        node[last] = value
    return doc


def msg(text: str, *, group: str | None = None, user: str = "7", at_me: bool = False, role: str = "") -> InboundMessage:
    return InboundMessage(
        platform="onebot",
        platform_id="p",
        self_id="42",
        message_type="group" if group else "private",
        message_id="1",
        user_id=user,
        group_id=group,
        text=text,
        at_me=at_me,
        sender=Sender(role=role),
    )


def verdict(
    m: InboundMessage, cfg: dict[str, Any], overrides: dict[str, Any] | None = None, draw: float = 0.5
) -> rules.Verdict:
    group = effective_config(m.group_id, overrides or {}, cfg) if m.group_id else None
    return rules.decide(m, cfg, group, lambda: draw)


def test_private_modes() -> None:
    assert verdict(msg("hi"), config()).action == "chat"
    assert verdict(msg("hi"), config(trigger__private__mode="off")).action == "ignore"
    cfg = config(trigger__private__mode="prefix", trigger__group__prefixes=["bot"])
    assert verdict(msg("hi"), cfg).action == "ignore"
    assert verdict(msg("bot hi"), cfg) == rules.Verdict("chat", text="hi")
    assert verdict(msg("#帮助"), config()) == rules.Verdict("command", text="帮助")


def test_group_triggers() -> None:
    cfg = config(trigger__group__prefixes=["ai"], trigger__group__keywords=["猫"], trigger__group__randomRate=0.1)
    assert verdict(msg("hello", group="9"), cfg).action == "ignore"
    assert verdict(msg("hello", group="9", at_me=True), cfg) == rules.Verdict("chat", text="hello")
    assert verdict(msg("hello", group="9", at_me=True), cfg, {"trigger": {"at": False}}).action == "ignore"
    assert verdict(msg("ai hello", group="9"), cfg) == rules.Verdict("chat", text="hello")
    assert verdict(msg("小猫", group="9"), cfg).action == "chat"
    assert verdict(msg("hello", group="9"), cfg, draw=0.05).action == "chat"
    assert verdict(msg("hello", group="9", at_me=True), cfg, {"enabled": False}).action == "ignore"
    assert verdict(msg("hello", group="9", at_me=True), config(trigger__group__enabled=False)).action == "ignore"


def test_lists() -> None:
    assert verdict(msg("hi"), config(trigger__blacklistUsers=["7"])).reason == "user blacklisted"
    assert verdict(msg("hi"), config(trigger__whitelistUsers=["8"])).reason == "user not whitelisted"
    at = msg("hi", group="9", at_me=True)
    assert verdict(at, config(trigger__blacklistGroups=["9"])).reason == "group blacklisted"
    assert verdict(at, config(trigger__whitelistGroups=["1"])).reason == "group not whitelisted"
    assert verdict(at, config(), {"blacklistUsers": ["7"]}).reason == "user blacklisted"
    # A blacklisted user cannot run commands either.
    assert verdict(msg("#帮助"), config(trigger__blacklistUsers=["7"])).action == "ignore"


def test_conversation_ids_and_usage_keys() -> None:
    assert rules.conversation_id(msg("x"), {"groupUserIsolation": True}) == "user:7"
    assert rules.conversation_id(msg("x", group="9"), {"groupUserIsolation": False}) == "group:9"
    assert rules.conversation_id(msg("x", group="9"), {"groupUserIsolation": True}) == "group:9:user:7"
    group = effective_config("9", {"usageLimit": {"perUserPerDay": 3, "perGroupPerDay": 10}}, config())
    assert rules.usage_keys(msg("x", group="9"), group) == [("group:9:user:7", 3), ("group:9", 10)]
    assert rules.usage_keys(msg("x"), None) == []


def test_seeded_draw_is_stable_and_split() -> None:
    assert rules.seeded_rng("onebot:1:2")() == rules.seeded_rng("onebot:1:2")()
    parts = rules.split_reply("word " * 1000, limit=100)
    assert all(len(p) <= 100 for p in parts) and " ".join(parts).split() == ["word"] * 1000
    assert rules.split_reply("x" * 250, limit=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_commands_parse_and_permissions() -> None:
    assert commands.parse("ai管理面板 永久") == commands.Parsed("ai管理面板", ["永久"])
    assert commands.parse("重置对话") == commands.Parsed("结束对话", [])
    assert commands.parse("unknown") is None
    cfg = config(admin__masterUsers=["7"])
    assert commands.check(commands.Parsed("ai管理面板", []), msg("x"), cfg) is None
    assert commands.check(commands.Parsed("ai管理面板", []), msg("x", user="8"), cfg) is not None
    group_cmd = commands.Parsed("群管理面板", [])
    assert commands.check(group_cmd, msg("x", group="9", user="8", role="member"), cfg) is not None
    assert commands.check(group_cmd, msg("x", group="9", user="8", role="admin"), cfg) is None
    assert commands.check(group_cmd, msg("x", user="8"), cfg) is not None
    switch = commands.Parsed("切换预设", ["p"])
    assert commands.check(switch, msg("x"), config(presets__allowUserSwitch=False)) is not None
    assert "#帮助" in commands.help_text("#", config())
