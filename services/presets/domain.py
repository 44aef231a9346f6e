"""Presets: pure state, evolve and decide. No I/O here; every rule of API.md §7 that is not a
field constraint lives in this module."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from bus.events import EventCatalog
from schemas.errors import DomainError
from schemas.presets import (
    DefaultPresetChanged,
    PresetCreated,
    PresetDefaultChanged,
    PresetDeleted,
    PresetEvent,
    PresetFields,
    PresetType,
    PresetUpdated,
)
from services.rules import require_version

DEFAULT_STREAM = "presetdefault-global"
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,50}")


def stream_id(preset_id: str) -> str:
    return f"preset-{preset_id}"


@dataclass(frozen=True)
class PresetState:
    id: str
    exists: bool = False
    type: str = "user"
    is_default: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True)
class DefaultState:
    preset_id: str | None = None
    version: int = 0


EVENTS = EventCatalog.of(
    "presets", PresetCreated, PresetUpdated, PresetDeleted, PresetDefaultChanged, DefaultPresetChanged
)


def evolve(state: PresetState, event: PresetEvent) -> PresetState:
    version = state.version + 1
    match event:
        case PresetCreated(type=type_, fields=fields):
            return PresetState(state.id, True, type_, False, dict(fields), version)
        case PresetUpdated(changes=changes):
            return replace(state, fields={**state.fields, **changes}, version=version)
        case PresetDeleted():
            return PresetState(state.id, version=version)
        case PresetDefaultChanged(is_default=is_default):
            return replace(state, is_default=is_default, version=version)
    return replace(state, version=version)


def evolve_default(state: DefaultState, event: PresetEvent) -> DefaultState:
    if isinstance(event, DefaultPresetChanged):
        return DefaultState(event.preset_id, state.version + 1)
    return replace(state, version=state.version + 1)


def validate_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """Full validation of a preset's fields; returns the normalised camelCase document."""
    try:
        fields = msgspec.convert(raw, PresetFields)
    except msgspec.ValidationError as exc:
        raise DomainError("VALIDATION_ERROR", f"invalid preset: {exc}", details=[str(exc)]) from exc
    builtins: dict[str, Any] = msgspec.to_builtins(fields)
    return builtins


def derive_id(name: str) -> str:
    """An id for a preset created without one: a slug of the name if it is valid, else random."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name.strip()).strip("-")[:40]
    suffix = uuid.uuid4().hex[:8]
    return f"{slug}-{suffix}" if len(slug) >= 3 else f"preset-{suffix}"


def _require(state: PresetState) -> None:
    if not state.exists:
        raise DomainError("PRESET_NOT_FOUND", f"preset '{state.id}' not found")


def decide_create(state: PresetState, fields: dict[str, Any], type_: PresetType) -> list[PresetEvent]:
    if not ID_PATTERN.fullmatch(state.id):
        raise DomainError("VALIDATION_ERROR", "id must be 3..50 characters of [A-Za-z0-9_-]")
    if state.exists:
        raise DomainError("PRESET_EXISTS", f"preset '{state.id}' already exists")
    return [PresetCreated(id=state.id, type=type_, fields=validate_fields(fields))]


def decide_update(state: PresetState, changes: dict[str, Any], expected: int | None) -> list[PresetEvent]:
    _require(state)
    require_version(f"preset '{state.id}'", state.version, expected)
    merged = validate_fields({**state.fields, **changes})
    effective = {k: merged[k] for k in changes if k in merged and state.fields.get(k) != merged[k]}
    return [PresetUpdated(changes=effective)] if effective else []


def decide_delete(state: PresetState, expected: int | None) -> list[PresetEvent]:
    _require(state)
    require_version(f"preset '{state.id}'", state.version, expected)
    if state.type == "system":
        raise DomainError("SYSTEM_PRESET", f"'{state.id}' is a system preset and cannot be deleted")
    if state.is_default:
        raise DomainError("SYSTEM_PRESET", f"'{state.id}' is the default preset; set another default first")
    return [PresetDeleted(id=state.id)]


def decide_set_default(
    default: DefaultState, target: PresetState, previous: PresetState | None
) -> dict[str, list[PresetEvent]]:
    """Events per stream id. Moving the default touches the old default's stream too, so a
    concurrent delete of either preset conflicts instead of leaving two defaults or none."""
    _require(target)
    if not target.fields.get("enabled", True):
        raise DomainError("VALIDATION_ERROR", f"preset '{target.id}' is disabled and cannot be the default")
    if default.preset_id == target.id and target.is_default:
        return {}
    out: dict[str, list[PresetEvent]] = {
        DEFAULT_STREAM: [DefaultPresetChanged(preset_id=target.id, previous_id=default.preset_id)],
        stream_id(target.id): [PresetDefaultChanged(is_default=True)],
    }
    if previous is not None and previous.exists and previous.id != target.id:
        out[stream_id(previous.id)] = [PresetDefaultChanged(is_default=False)]
    return out


def copy_fields(source: PresetState, new_name: str | None) -> dict[str, Any]:
    _require(source)
    fields = dict(source.fields)
    fields["name"] = new_name or f"{fields.get('name', source.id)} (copy)"[:100]
    return fields
