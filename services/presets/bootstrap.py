"""Built-in system presets, created once on first start (idempotent by deterministic command ids)."""

from __future__ import annotations

import uuid
from typing import Any

from bus.eventstore import EventStore
from schemas.envelope import Actor, CommandEnvelope
from services.presets import handlers

SYSTEM_ACTOR = Actor(subject="system", scope="admin")
_NAMESPACE = uuid.UUID("5f0c7b2e-8d7a-4e55-9c55-2b0f3f0f6a10")

SYSTEM_PRESETS: list[dict[str, Any]] = [
    {
        "id": "default",
        "name": "Default assistant",
        "description": "A helpful, concise assistant.",
        "category": "general",
        "systemPrompt": "You are a helpful assistant. Answer concisely and accurately.",
    },
    {
        "id": "catgirl",
        "name": "Neko",
        "description": "A playful cat-girl persona.",
        "category": "roleplay",
        "systemPrompt": "You are Neko, a cheerful cat-girl who ends sentences with 'nya'.",
        "persona": {"name": "Neko", "personality": "cheerful, curious", "traits": ["playful"]},
    },
]


async def ensure_system_presets(store: EventStore) -> None:
    for preset in SYSTEM_PRESETS:
        fields = {k: v for k, v in preset.items() if k != "id"}
        await store.execute(
            CommandEnvelope(
                command_id=uuid.uuid5(_NAMESPACE, f"create:{preset['id']}"),
                type="presets.create",
                actor=SYSTEM_ACTOR,
                payload={"id": preset["id"], "fields": fields, "type": "system"},
            ),
            handlers.create,
        )
    await store.execute(
        CommandEnvelope(
            command_id=uuid.uuid5(_NAMESPACE, "set_default:default"),
            type="presets.set_default",
            actor=SYSTEM_ACTOR,
            payload={"id": "default"},
        ),
        handlers.set_default,
    )
