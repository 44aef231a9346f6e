"""JSON Schemas of what outside subscribers receive on `events.<domain>.<EventType>`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from schemas.envelope import EventMessage
from schemas.secrets import HIDDEN_KEYS


def event_schemas(event_types: Iterable[tuple[str, type[msgspec.Struct]]]) -> dict[str, Any]:
    """`EventMessage` (the envelope of every published event) and the `data` of each event type
    (given as `(domain, Struct)`), keyed by name, with the subject each is published on."""
    docs: dict[str, Any] = {"EventMessage": msgspec.json.schema(EventMessage)}
    for domain, struct in sorted(event_types, key=lambda t: t[1].__name__):
        name = struct.__name__
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
