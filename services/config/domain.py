"""The config document: pure merge, path updates, validation, diffs and masking."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bus.events import EventCatalog
from schemas.config import SECTIONS, ConfigChanged, ConfigDocument, ConfigEvent, ConfigRolledBack
from schemas.errors import DomainError
from schemas.secrets import keep_masked
from services.rules import require_version

STREAM = "config-global"
STDIO_ALLOW_PATH = "mcp.stdioAllowedCommands"
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`")


def defaults() -> dict[str, Any]:
    document: dict[str, Any] = msgspec.to_builtins(ConfigDocument())
    return document


@dataclass(frozen=True)
class ConfigState:
    document: dict[str, Any] = field(default_factory=defaults)
    version: int = 0


EVENTS = EventCatalog.of("config", ConfigChanged, ConfigRolledBack)


def evolve(state: ConfigState, event: ConfigEvent) -> ConfigState:
    return ConfigState(event.document, state.version + 1)


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Objects merge; arrays and scalars replace."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def patch_for_path(path: str, value: Any) -> dict[str, Any]:
    """`a.b.c` = v  ->  {"a": {"b": {"c": v}}}"""
    *parents, leaf = path.split(".")
    patch: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        patch = {part: patch}
    return patch


def validate(document: dict[str, Any]) -> dict[str, Any]:
    """The document normalised by the schema, or INVALID_CONFIG naming the failing path."""
    unknown = [k for k in document if k not in SECTIONS]
    if unknown:
        raise DomainError("SECTION_NOT_FOUND", f"unknown config section '{unknown[0]}'", details=[{"path": unknown[0]}])
    try:
        normalised: dict[str, Any] = msgspec.to_builtins(msgspec.convert(document, ConfigDocument))
        return normalised
    except msgspec.ValidationError as exc:
        message = str(exc)
        at = _AT_PATH.search(message)
        path = at.group(1) if at else ""
        reason = _AT_PATH.sub("", message)
        raise DomainError(
            "INVALID_CONFIG", f"invalid config at '{path}': {reason}", details=[{"path": path, "reason": reason}]
        ) from exc


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        paths: list[str] = []
        for key in sorted(set(before) | set(after)):
            sub = f"{prefix}.{key}" if prefix else key
            if key not in before or key not in after:
                paths.append(sub)
            else:
                paths.extend(changed_paths(before[key], after[key], sub))
        return paths
    return [] if before == after else [prefix]


def decide_update(state: ConfigState, patch: dict[str, Any], expected: int | None) -> list[ConfigEvent]:
    require_version("config", state.version, expected)
    if not patch:
        raise DomainError("INVALID_CONFIG", "empty config update")
    unknown = [k for k in patch if k not in SECTIONS]
    if unknown:
        raise DomainError("SECTION_NOT_FOUND", f"unknown config section '{unknown[0]}'", details=[{"path": unknown[0]}])
    document = validate(deep_merge(state.document, keep_masked(state.document, patch)))
    paths = changed_paths(state.document, document)
    if any(p == STDIO_ALLOW_PATH or p.startswith(f"{STDIO_ALLOW_PATH}.") for p in paths):
        # An admin token must not equal arbitrary command execution: the operator sets it on the host.
        raise DomainError(
            "INVALID_CONFIG",
            f"invalid config at '{STDIO_ALLOW_PATH}': it is not set through the config API; set"
            " CHATBUS_MCP_STDIO_ALLOW or the file `mcp-stdio-allow.txt` in the data directory",
            details=[
                {"path": STDIO_ALLOW_PATH, "reason": "set by CHATBUS_MCP_STDIO_ALLOW or <data dir>/mcp-stdio-allow.txt"}
            ],
        )
    return [ConfigChanged(document=document, paths=paths)] if paths else []


def decide_rollback(state: ConfigState, target: ConfigState) -> list[ConfigEvent]:
    document = validate(target.document)
    paths = changed_paths(state.document, document)
    return [ConfigRolledBack(document=document, paths=paths, to_version=target.version)] if paths else []
