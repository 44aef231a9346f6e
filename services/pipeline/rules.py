"""Who the bot answers, and where the turn goes: pure functions of one inbound message, the config
document (as builtins) and the group's effective config (API.md §9). Unit-tested without I/O."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from schemas.platforms import InboundMessage

Rng = Callable[[], float]
REPLY_CHUNK = 1500  # characters per QQ message: longer replies are split


@dataclass(frozen=True)
class Verdict:
    action: Literal["ignore", "command", "chat"]
    reason: str = ""
    text: str = ""  # the message as the model (or the command parser) sees it


def seeded_rng(dedup_id: str) -> Rng:
    """The random-rate draw of one message: the same on a redelivery, so a retry never flips it.
    Seeded only when drawn (a group with a random rate): seeding costs more than the rest of `decide`."""

    def draw() -> float:
        return random.Random(dedup_id).random()

    return draw


def conversation_id(msg: InboundMessage, isolation: dict[str, Any]) -> str:
    if msg.message_type == "private" or msg.group_id is None:
        return f"user:{msg.user_id}"
    if isolation.get("groupUserIsolation"):
        return f"group:{msg.group_id}:user:{msg.user_id}"
    return f"group:{msg.group_id}"


def _listed(value: str, names: list[str]) -> bool:
    return value in {str(n) for n in names}


def blocked(msg: InboundMessage, trigger: dict[str, Any], group: dict[str, Any] | None) -> str:
    """Why the lists refuse this sender ("" when they let it through). A group's own user lists
    replace the global ones (effective config); group lists are global only."""
    users_black = group["blacklistUsers"] if group else trigger["blacklistUsers"]
    users_white = group["whitelistUsers"] if group else trigger["whitelistUsers"]
    if _listed(msg.user_id, users_black):
        return "user blacklisted"
    if users_white and not _listed(msg.user_id, users_white):
        return "user not whitelisted"
    if msg.group_id is not None:
        if _listed(msg.group_id, trigger["blacklistGroups"]):
            return "group blacklisted"
        if trigger["whitelistGroups"] and not _listed(msg.group_id, trigger["whitelistGroups"]):
            return "group not whitelisted"
    return ""


def _strip_prefix(text: str, prefixes: list[str]) -> str | None:
    for prefix in sorted((p for p in prefixes if p), key=len, reverse=True):
        if text.startswith(prefix):
            return text[len(prefix) :].strip()
    return None


def decide(
    msg: InboundMessage,
    config: dict[str, Any],
    group: dict[str, Any] | None,
    rng: Rng,
) -> Verdict:
    """`config`: the config document; `group`: the group's effective config (None in private)."""
    text = msg.text
    command_prefix = config["basic"]["commandPrefix"]
    trigger = config["trigger"]
    reason = blocked(msg, trigger, group)
    if reason:
        return Verdict("ignore", reason)
    if text.startswith(command_prefix) and len(text) > len(command_prefix):
        return Verdict("command", text=text[len(command_prefix) :].strip())
    if msg.message_type == "private":
        private = trigger["private"]
        if not private["enabled"] or private["mode"] == "off":
            return Verdict("ignore", "private chat off")
        if private["mode"] == "prefix":
            stripped = _strip_prefix(text, trigger["group"]["prefixes"])
            return Verdict("chat", text=stripped) if stripped else Verdict("ignore", "no prefix")
        return Verdict("chat", text=text) if text else Verdict("ignore", "empty")
    assert group is not None
    if not trigger["group"]["enabled"] or not group["enabled"]:
        return Verdict("ignore", "group chat off")
    rules = group["trigger"]
    if rules["at"] and msg.at_me:
        return Verdict("chat", text=text) if text else Verdict("ignore", "empty")
    stripped = _strip_prefix(text, rules["prefixes"])
    if stripped:
        return Verdict("chat", text=stripped)
    if text and any(k and k in text for k in rules["keywords"]):
        return Verdict("chat", text=text)
    rate = float(rules["randomRate"])
    if text and rate > 0 and rng() < rate:
        return Verdict("chat", text=text)
    return Verdict("ignore", "not triggered")


def usage_keys(msg: InboundMessage, group: dict[str, Any] | None) -> list[tuple[str, int]]:
    """The daily counters this turn uses, with their limits (0 = none): the user's in the group first."""
    if group is None or msg.group_id is None:
        return []
    limit = group["usageLimit"]
    keys = []
    if limit.get("perUserPerDay"):
        keys.append((f"group:{msg.group_id}:user:{msg.user_id}", int(limit["perUserPerDay"])))
    if limit.get("perGroupPerDay"):
        keys.append((f"group:{msg.group_id}", int(limit["perGroupPerDay"])))
    return keys


def split_reply(text: str, limit: int = REPLY_CHUNK) -> list[str]:
    """A long reply in parts of at most `limit` characters, cut at a line break or space if one is near."""
    text = text.strip()
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        if cut < limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts or ["…"]
