"""Presets (personalities): API bodies, the read model, commands and events (API.md §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

PresetId = Annotated[str, Meta(min_length=3, max_length=50, pattern=r"^[A-Za-z0-9_-]+\Z")]
PresetName = Annotated[str, Meta(min_length=1, max_length=100)]
SystemPrompt = Annotated[str, Meta(max_length=10000)]
Description = Annotated[str, Meta(max_length=2000)]
PresetType = Literal["system", "user"]


class ModelParams(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=128000)] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    stop: Annotated[list[Annotated[str, Meta(max_length=200)]], Meta(max_length=16)] | None = None


class Persona(msgspec.Struct, rename="camel", omit_defaults=True):
    name: Annotated[str, Meta(max_length=100)] = ""
    personality: Annotated[str, Meta(max_length=5000)] = ""
    speaking_style: Annotated[str, Meta(max_length=5000)] = ""
    traits: Annotated[list[Annotated[str, Meta(max_length=200)]], Meta(max_length=50)] = []


class PresetContext(msgspec.Struct, rename="camel", omit_defaults=True):
    max_messages: Annotated[int, Meta(ge=1, le=1000)] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=2_000_000)] | None = None
    isolate_context: bool = False


ToolNames = Annotated[list[Annotated[str, Meta(max_length=200)]], Meta(max_length=500)]


class PresetTools(msgspec.Struct, rename="camel", omit_defaults=True):
    enable_builtin_tools: bool = True
    enable_mcp_tools: bool = True
    allowed_tools: ToolNames = []
    disabled_tools: ToolNames = []


class PresetFields(msgspec.Struct, rename="camel", kw_only=True):
    """Everything a preset holds apart from identity and bookkeeping."""

    name: PresetName
    description: Description = ""
    category: Annotated[str, Meta(max_length=50)] = "general"
    system_prompt: SystemPrompt = ""
    model: Annotated[str, Meta(max_length=200)] = ""
    model_params: ModelParams = msgspec.field(default_factory=ModelParams)
    persona: Persona = msgspec.field(default_factory=Persona)
    context: PresetContext = msgspec.field(default_factory=PresetContext)
    tools: PresetTools = msgspec.field(default_factory=PresetTools)
    enabled: bool = True


class CreatePresetBody(PresetFields, kw_only=True):
    """POST /api/presets. Without `id`, one is derived. `type` is always `user` over HTTP."""

    id: PresetId | None = None


class UpdatePresetBody(msgspec.Struct, rename="camel", kw_only=True):
    """PUT /api/presets/{id}: a partial update; absent fields keep their value."""

    name: PresetName | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    category: Annotated[str, Meta(max_length=50)] | UnsetType = UNSET
    system_prompt: SystemPrompt | UnsetType = UNSET
    model: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    model_params: ModelParams | UnsetType = UNSET
    persona: Persona | UnsetType = UNSET
    context: PresetContext | UnsetType = UNSET
    tools: PresetTools | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    expected_version: Annotated[int, Meta(ge=0)] | UnsetType = UNSET


class CopyPresetBody(msgspec.Struct, rename="camel"):
    new_id: PresetId
    new_name: PresetName | None = None


class Preset(PresetFields, kw_only=True):
    """The read model returned by every preset route."""

    id: str
    type: PresetType
    is_default: bool
    created_at: datetime
    updated_at: datetime
    version: int


class Personality(msgspec.Struct):
    """NekoBot's view of a preset."""

    id: str
    name: str
    prompt: str
    description: str
    enabled: bool
    isDefault: bool


class PersonalityBody(msgspec.Struct):
    name: PresetName
    prompt: SystemPrompt = ""
    description: Description = ""
    enabled: bool = True
    id: PresetId | None = None


class SetDefaultPersonalityBody(msgspec.Struct):
    id: PresetId


# ---- commands (payloads of cmd.presets.*) ----


class CreatePreset(msgspec.Struct, kw_only=True):
    id: str
    fields: dict[str, Any]
    type: PresetType = "user"


class UpdatePreset(msgspec.Struct, kw_only=True):
    id: str
    changes: dict[str, Any]
    expected_version: int | None = None


class DeletePreset(msgspec.Struct, kw_only=True):
    id: str
    expected_version: int | None = None


class SetDefaultPreset(msgspec.Struct, kw_only=True):
    id: str


class CopyPreset(msgspec.Struct, kw_only=True):
    id: str
    new_id: str
    new_name: str | None = None


class ImportPresets(msgspec.Struct, kw_only=True):
    presets: list[dict[str, Any]]
    overwrite: bool = False


# ---- events ----


class PresetCreated(msgspec.Struct, kw_only=True):
    id: str
    type: PresetType
    fields: dict[str, Any]


class PresetUpdated(msgspec.Struct, kw_only=True):
    changes: dict[str, Any]


class PresetDeleted(msgspec.Struct, kw_only=True):
    id: str


class PresetDefaultChanged(msgspec.Struct, kw_only=True):
    """On a preset's own stream: it became, or stopped being, the default."""

    is_default: bool


class DefaultPresetChanged(msgspec.Struct, kw_only=True):
    """On the singleton `presetdefault-global` stream: which preset is the default."""

    preset_id: str
    previous_id: str | None = None


PresetEvent = PresetCreated | PresetUpdated | PresetDeleted | PresetDefaultChanged | DefaultPresetChanged
