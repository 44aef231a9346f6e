"""Plugins: pure rules. A plugin is an installed artifact (digest + manifest), enabled or not, with a
config its manifest's schema accepts; every change is an event on the stream `plugin-<name>`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from bus.events import EventCatalog
from schemas.errors import DomainError
from schemas.plugins import (
    CommandRenamed,
    CommandToggled,
    ConflictResolved,
    PluginConfigured,
    PluginDisabled,
    PluginEnabled,
    PluginInstalled,
    PluginReloaded,
    PluginRemoved,
    PluginsEvent,
)
from schemas.secrets import mask, mask_value, walk_secrets

EVENTS = EventCatalog.of(
    "plugins",
    PluginInstalled,
    PluginEnabled,
    PluginDisabled,
    PluginConfigured,
    PluginReloaded,
    PluginRemoved,
    CommandToggled,
    CommandRenamed,
    ConflictResolved,
)
MAX_CONFIG_CHARS = 7000  # it travels in one environment variable of the plugin process
COMMANDS_STREAM = "commands"  # every command-registry decision: one stream, so they serialise


def plugin_stream(name: str) -> str:
    return f"plugin-{name}"


@dataclass(frozen=True)
class PluginState:
    name: str
    exists: bool = False
    enabled: bool = False
    digest: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    revision: int = 0
    version: int = 0


def evolve(state: PluginState, event: PluginsEvent) -> PluginState:
    state = replace(state, version=state.version + 1)
    match event:
        case PluginInstalled(digest=digest, manifest=manifest):
            if not state.exists:
                return replace(state, exists=True, enabled=False, digest=digest, manifest=manifest, config={})
            return replace(state, digest=digest, manifest=manifest)
        case PluginEnabled():
            return replace(state, enabled=True)
        case PluginDisabled():
            return replace(state, enabled=False)
        case PluginConfigured(config=config):
            return replace(state, config=config)
        case PluginReloaded(revision=revision):
            return replace(state, revision=revision)
        case PluginRemoved():
            return PluginState(state.name, version=state.version)
    return state


def _found(state: PluginState) -> None:
    if not state.exists:
        raise DomainError("PLUGIN_NOT_FOUND", f"plugin '{state.name}' not found")


def decide_install(
    state: PluginState, digest: str, size: int, manifest: dict[str, Any], version: str, overwrite: bool
) -> list[PluginsEvent]:
    if state.exists and not overwrite:
        raise DomainError("CONFLICT", f"plugin '{state.name}' is installed; upload with ?overwrite=true to replace it")
    if state.exists and state.digest == digest:
        return []
    return [PluginInstalled(name=state.name, version=version, digest=digest, size=size, manifest=manifest)]


def decide_enable(state: PluginState, enabled: bool) -> list[PluginsEvent]:
    _found(state)
    if state.enabled == enabled:
        return []
    return [PluginEnabled(name=state.name) if enabled else PluginDisabled(name=state.name)]


def secret_paths(schema: Any, path: str = "") -> set[str]:
    """The dotted paths (under the config) of the properties `schema` marks `"writeOnly": true` or
    `"format": "password"`: sealed like a secret-named key, whatever their name."""
    out: set[str] = set()
    if not isinstance(schema, dict):
        return out
    if path and (schema.get("writeOnly") is True or schema.get("format") == "password"):
        out.add(path)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for key, sub in properties.items():
            out |= secret_paths(sub, f"{path}.{key}" if path else key)
    if isinstance(schema.get("items"), dict):
        out |= secret_paths(schema["items"], path)  # a list's items share its path
    return out


def shown_config(config: dict[str, Any], schema: Any) -> dict[str, Any]:
    """How a plugin's config reads back: every secret as its mask (a sealed value's hint)."""
    hinted = walk_secrets(config, lambda _p, v: str(mask_value(v)), secret_paths(schema))
    shown: dict[str, Any] = mask(hinted)
    return shown


def config_errors(schema: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every place `config` breaks `schema`, as {field, reason} (a JSON path under `config`)."""
    if not schema:
        return []
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(["config", *(str(p) for p in error.absolute_path)])
        out.append({"field": path, "reason": error.message[:300], "source": "body"})
    return out


def decide_configure(state: PluginState, config: dict[str, Any]) -> list[PluginsEvent]:
    _found(state)
    if len(json.dumps(config, ensure_ascii=False)) > MAX_CONFIG_CHARS:
        raise DomainError("VALIDATION_ERROR", f"config: at most {MAX_CONFIG_CHARS} characters of JSON")
    errors = config_errors(state.manifest.get("configSchema") or {}, config)
    if errors:
        first = errors[0]
        raise DomainError("VALIDATION_ERROR", f"{first['field']}: {first['reason']}", details=errors)
    if config == state.config:
        return []
    return [PluginConfigured(name=state.name, config=config)]


def decide_reload(state: PluginState) -> list[PluginsEvent]:
    _found(state)
    return [PluginReloaded(name=state.name, revision=state.revision + 1)]


def decide_remove(state: PluginState) -> list[PluginsEvent]:
    _found(state)
    return [PluginRemoved(name=state.name)]
