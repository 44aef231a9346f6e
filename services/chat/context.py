"""What the model sees in a turn: the preset (caller's, the group's, else the default), the
conversation's recent history trimmed to the context budget, the model and its parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from schemas.channels import Channel
from schemas.chat import SendChat
from schemas.config import ConfigDocument
from schemas.errors import DomainError
from schemas.llm import ChatMessage, ChatRequest
from schemas.presets import Preset
from services.chat import queries
from services.worker_reads import WorkerReads

CHARS_PER_TOKEN = 4  # a rough, provider-neutral budget for trimming context


@dataclass(frozen=True)
class TurnPlan:
    """Everything a turn takes from settings (group, preset, config, channels), before its history."""

    preset: Preset | None
    overrides: dict[str, Any]
    max_messages: int
    max_tokens: int
    channels: list[Channel]
    pinned: str | None


async def plan_turn(reads: WorkerReads, config: ConfigDocument, cmd: SendChat) -> TurnPlan:
    """The preset (caller's, the group's, else the default), the context budget, the enabled channels
    and the channel the turn is pinned to (by the caller or the group), if any: the worker's cached
    reads, no Postgres round trip once they are warm."""
    group = await reads.group(cmd.group_id) if cmd.group_id else None
    overrides = group["overrides"] if group else {}
    preset_id = cmd.preset_id or overrides.get("presetId") or config.presets.default_id
    preset = await reads.preset(preset_id) if preset_id else None
    if preset is None:
        if cmd.preset_id:
            raise DomainError("PRESET_NOT_FOUND", f"preset '{cmd.preset_id}' not found")
        preset = await reads.default_preset()
    max_messages = (
        preset.context.max_messages if preset and preset.context.max_messages else None
    ) or config.context.max_messages
    max_tokens = (
        preset.context.max_tokens if preset and preset.context.max_tokens else None
    ) or config.context.max_tokens
    pinned = cmd.channel_id or overrides.get("channelId") or None
    channels = await reads.enabled_channels()
    if pinned and not any(c.id == pinned for c in channels):
        raise DomainError("CHANNEL_NOT_FOUND", f"channel '{pinned}' not found or disabled")
    return TurnPlan(preset, overrides, max_messages, max_tokens, channels, pinned)


async def recent_history(pool: asyncpg.Pool, cmd: SendChat, plan: TurnPlan) -> list[dict[str, Any]]:
    """The newest `maxMessages` messages the model may see (one more than a new turn keeps, so this
    read need not wait to learn whether the turn's own message is already stored)."""
    if not plan.max_messages:
        return []
    return await queries.context_messages(pool, cmd.conversation_id, plan.max_messages)


def build_request(
    config: ConfigDocument, cmd: SendChat, plan: TurnPlan, history: list[dict[str, Any]], *, include_current: bool
) -> ChatRequest:
    """The request for the LLM: system prompt, the history trimmed to the context budget (ending with
    this turn's message), model and parameters."""
    preset, overrides = plan.preset, plan.overrides
    # `maxMessages` counts the new message too.
    limit = max(0, plan.max_messages - 1) if include_current else plan.max_messages
    history = history[max(0, len(history) - limit) :] if limit else []
    messages = [
        ChatMessage(role=m["role"], content=m["content"]) for m in history if m["role"] in ("user", "assistant")
    ]
    if include_current:
        messages.append(ChatMessage(role="user", content=cmd.message))
    budget = plan.max_tokens * CHARS_PER_TOKEN
    while len(messages) > 1 and sum(len(m.content) for m in messages) > budget:
        messages.pop(0)
    system = system_prompt(preset) if preset else ""
    if system:
        messages.insert(0, ChatMessage(role="system", content=system))
    model = cmd.model or (preset.model if preset else "") or overrides.get("model") or config.llm.default_model or None
    params = preset.model_params if preset else None
    return ChatRequest(
        model=model or "",
        messages=messages,
        temperature=params.temperature if params else None,
        top_p=params.top_p if params else None,
        max_tokens=params.max_tokens if params else None,
        stop=params.stop if params else None,
        presence_penalty=params.presence_penalty if params else None,
        frequency_penalty=params.frequency_penalty if params else None,
    )


def system_prompt(preset: Any) -> str:
    """The preset's system prompt with its persona (name, personality, speaking style, traits)."""
    persona = preset.persona
    lines = [preset.system_prompt] if preset.system_prompt else []
    if persona.name:
        lines.append(f"你的名字是{persona.name}。")
    if persona.personality:
        lines.append(f"性格：{persona.personality}")
    if persona.speaking_style:
        lines.append(f"说话风格：{persona.speaking_style}")
    if persona.traits:
        lines.append("特点：" + "、".join(persona.traits))
    return "\n".join(lines)
