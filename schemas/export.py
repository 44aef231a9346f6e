"""JSON Schemas of what outside subscribers receive on `events.<domain>.<EventType>`."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.envelope import EventMessage
from schemas.events import EVENT_TYPES
from schemas.secrets import HIDDEN_KEYS


def event_schemas() -> dict[str, Any]:
    """`EventMessage` (the envelope of every published event) and the `data` of each event type,
    keyed by name, with the subject each is published on."""
    docs: dict[str, Any] = {"EventMessage": msgspec.json.schema(EventMessage)}
    for name, (domain, struct) in sorted(EVENT_TYPES.items()):
        schema = msgspec.json.schema(struct)
        definition = schema.get("$defs", {}).get(name)
        if definition is not None:
            for secret in HIDDEN_KEYS:
                definition.get("properties", {}).pop(secret, None)
                if secret in definition.get("required", []):
                    definition["required"].remove(secret)
        schema["x-subject"] = f"events.{domain}.{name}"
        docs[name] = schema
    return docs
