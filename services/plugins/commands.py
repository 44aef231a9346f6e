"""The command registry (API.md §9 "Commands"), pure: built-in commands, the commands of enabled
plugins (in the order they were enabled) and the admin's overrides make one list of handlers; a word
claimed by two enabled handlers is a conflict, and the first claimant wins it (built-in before plugin,
earlier-enabled plugin before later). Every instance computes the same answer from the same rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.errors import DomainError
from schemas.plugins import CommandRenamed, CommandToggled, ConflictResolved, PluginsEvent
from services.pipeline.commands import BUILTIN

BUILTIN_PLUGIN = "builtin"
_BUILTIN_PERMISSION = {"everyone": "member", "group_admin": "admin", "master": "master"}


@dataclass(frozen=True)
class Handler:
    handler_full_name: str
    plugin: str
    name: str  # as its plugin (or chatbus) calls it
    aliases: tuple[str, ...]
    permission: str  # member | admin | master
    description: str
    tool: str | None  # the plugin's tool (registry name); None for a built-in
    effective: str
    enabled: bool

    @property
    def words(self) -> tuple[str, ...]:
        return (self.effective, *self.aliases)

    def view(self, conflicted: set[str]) -> dict[str, Any]:
        return {
            "handler_full_name": self.handler_full_name,
            "handler_name": self.name,
            "plugin": self.plugin,
            "description": self.description,
            "type": "command",
            "original_command": self.name,
            "effective_command": self.effective,
            "aliases": list(self.aliases),
            "permission": self.permission,
            "enabled": self.enabled,
            "has_conflict": self.handler_full_name in conflicted,
        }


@dataclass(frozen=True)
class PluginCommands:
    """An enabled plugin as the registry needs it (rows of the `plugins` read table)."""

    name: str
    manifest: dict[str, Any]


def handlers(plugins: Sequence[PluginCommands], overrides: dict[str, dict[str, Any]], tool_name: Any) -> list[Handler]:
    """Every handler in precedence order. `overrides`: handler -> {enabled, new_name, aliases}."""
    raw: list[tuple[str, str, str, tuple[str, ...], str, str, str | None]] = [
        (
            f"{BUILTIN_PLUGIN}.{c.name}",
            BUILTIN_PLUGIN,
            c.name,
            c.aliases,
            _BUILTIN_PERMISSION[c.permission],
            c.description,
            None,
        )
        for c in BUILTIN
    ]
    for plugin in plugins:
        for c in plugin.manifest.get("commands", []):
            raw.append(
                (
                    f"{plugin.name}.{c['name']}",
                    plugin.name,
                    c["name"],
                    tuple(c.get("aliases", ())),
                    c.get("permission", "member"),
                    c.get("description", ""),
                    tool_name(plugin.name, c["tool"]),
                )
            )
    out = []
    for full, plugin_name, name, aliases, permission, description, tool in raw:
        o = overrides.get(full, {})
        enabled = o.get("enabled")
        out.append(
            Handler(
                full,
                plugin_name,
                name,
                tuple(o["aliases"]) if o.get("aliases") is not None else aliases,
                permission,
                description,
                tool,
                o.get("new_name") or name,
                True if enabled is None else bool(enabled),
            )
        )
    return out


def conflicts(all_handlers: Iterable[Handler]) -> dict[str, list[Handler]]:
    """word -> the enabled handlers that claim it, when more than one does (in precedence order)."""
    claims: dict[str, list[Handler]] = {}
    for h in all_handlers:
        if h.enabled:
            for word in dict.fromkeys(h.words):
                claims.setdefault(word, []).append(h)
    return {word: hs for word, hs in claims.items() if len(hs) > 1}


def resolve(all_handlers: Iterable[Handler], word: str) -> Handler | None:
    for h in all_handlers:
        if h.enabled and word in h.words:
            return h
    return None


def summary(all_handlers: Sequence[Handler]) -> dict[str, Any]:
    clashes = conflicts(all_handlers)
    conflicted = {h.handler_full_name for hs in clashes.values() for h in hs}
    return {
        "items": [h.view(conflicted) for h in all_handlers],
        "summary": {
            "total": len(all_handlers),
            "disabled": sum(1 for h in all_handlers if not h.enabled),
            "conflicts": len(clashes),
        },
    }


def conflict_list(all_handlers: Sequence[Handler]) -> list[dict[str, Any]]:
    return [
        {
            "conflict_key": word,
            "handlers": [
                {"handler_full_name": h.handler_full_name, "plugin": h.plugin, "current_name": h.effective} for h in hs
            ],
        }
        for word, hs in sorted(conflicts(all_handlers).items())
    ]


def _find(all_handlers: Sequence[Handler], full_name: str) -> Handler:
    for h in all_handlers:
        if h.handler_full_name == full_name:
            return h
    raise DomainError("NOT_FOUND", f"command handler '{full_name}' not found")


def decide_toggle(all_handlers: Sequence[Handler], full_name: str, enabled: bool) -> list[PluginsEvent]:
    h = _find(all_handlers, full_name)
    return [] if h.enabled == enabled else [CommandToggled(handler_full_name=full_name, enabled=enabled)]


def _word(value: str, field: str) -> str:
    value = value.strip()
    if not value or len(value) > 32 or any(ch.isspace() for ch in value):
        raise DomainError("VALIDATION_ERROR", f"{field}: a command is 1..32 characters without spaces")
    return value


def decide_rename(
    all_handlers: Sequence[Handler], full_name: str, new_name: str, aliases: list[str] | None
) -> list[PluginsEvent]:
    h = _find(all_handlers, full_name)
    new_name = _word(new_name, "new_name")
    words = [new_name, *(_word(a, "aliases") for a in (aliases if aliases is not None else h.aliases))]
    for other in all_handlers:
        if other.handler_full_name != full_name and other.enabled and set(words) & set(other.words):
            taken = sorted(set(words) & set(other.words))[0]
            raise DomainError("CONFLICT", f"command '{taken}' is taken by {other.handler_full_name}")
    return [CommandRenamed(handler_full_name=full_name, new_name=new_name, aliases=aliases)]


def decide_resolve(all_handlers: Sequence[Handler], key: str, strategy: str, keep: str | None) -> list[PluginsEvent]:
    """keep_*: the other claimants are disabled; alias_*: the named one is renamed `<word>_<plugin>`
    (and keeps no alias the others claim), so both stay usable."""
    claimants = conflicts(all_handlers).get(key)
    if not claimants:
        raise DomainError("NOT_FOUND", f"no conflict on '{key}'")
    first, second = claimants[0], claimants[1]
    events: list[PluginsEvent] = []
    if strategy.startswith("keep_"):
        kept = first if strategy == "keep_first" else second
        if keep is not None:
            kept = next((h for h in claimants if h.handler_full_name == keep), None) or _find(claimants, keep)
        for h in claimants:
            if h is not kept:
                events.append(CommandToggled(handler_full_name=h.handler_full_name, enabled=False))
    else:
        moved = first if strategy == "alias_first" else second
        kept = second if moved is first else first
        taken = {w for h in all_handlers if h is not moved and h.enabled for w in h.words}
        new_name = f"{moved.effective}_{moved.plugin}" if moved.effective in taken else moved.effective
        aliases = [a for a in moved.aliases if a not in taken]
        events.append(CommandRenamed(handler_full_name=moved.handler_full_name, new_name=new_name, aliases=aliases))
    events.append(ConflictResolved(conflict_key=key, strategy=strategy, kept=kept.handler_full_name))
    return events
